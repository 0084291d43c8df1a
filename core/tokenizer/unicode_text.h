// UTF-8 and Unicode helpers shared by the Hugging Face tokenizer stages: validation,
// code-point iteration, Unicode normalization forms and lowercasing (through utf8proc, so
// no Unicode table is maintained here), the Rust notion of whitespace, and the lossy
// UTF-8 repair the reference applies when decoded bytes do not form valid text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvmock::tokenizer {

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool is_valid_utf8(std::string_view text);

// The code point starting at `text[pos]` of valid UTF-8 and its byte length.
struct CodePoint {
  char32_t value;
  size_t length;
};
CodePoint code_point_at(std::string_view text, size_t pos);

void append_utf8(std::string& out, char32_t code_point);

// Rust's char::is_whitespace: the Unicode White_Space property, which is exactly the
// separators (Zs, Zl, Zp) plus the controls U+0009..U+000D and U+0085.
bool is_unicode_whitespace(char32_t code_point);

enum class NormalForm : uint8_t { kNfc, kNfd, kNfkc, kNfkd };
// `text` (valid UTF-8) in the given normalization form.
std::string normalize_form(std::string_view text, NormalForm form);

// Lowercases each code point on its own, as Rust's char::to_lowercase does (no
// context-dependent rules such as the final sigma).
std::string lowercase(std::string_view text);

// Accepts bytes that may not be UTF-8 and replaces every maximal invalid subsequence
// with U+FFFD, the way Rust's String::from_utf8_lossy does.
std::string utf8_lossy(std::string_view bytes);

}  // namespace kvmock::tokenizer
