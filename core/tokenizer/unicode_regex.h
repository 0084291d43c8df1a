// A compiled PCRE2 pattern with the match semantics the reference tokenizer library gets
// from Oniguruma: Unicode-aware classes, leftmost-first alternation, and the same walk over
// successive matches (an empty match right where the previous match ended is skipped).
//
// Patterns in tokenizer files are written for Oniguruma, whose Unicode \s also covers
// U+0085 (NEL) while PCRE2's does not, so \s and \S are widened before compiling. Matching
// is const and thread-safe: the compiled code is shared read-only and each thread keeps
// its own match data.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock::tokenizer {

struct MatchSpan {
  size_t start;
  size_t end;
};

class UnicodeRegex {
 public:
  // Compiles `pattern` as a regular expression, or as a literal string when `literal`.
  // Error "unsupported" when PCRE2 rejects it (the message carries PCRE2's reason).
  static Result<UnicodeRegex> compile(std::string_view pattern, bool literal);

  // Appends the successive non-overlapping matches in valid UTF-8 `text`. Error
  // "regex_limit" when PCRE2 gives up (match or heap limit).
  Result<bool> find_all(std::string_view text, std::vector<MatchSpan>& matches) const;

  // `text` with every match replaced by `replacement`.
  Result<std::string> replace_all(std::string_view text, std::string_view replacement) const;

 private:
  struct Code;
  explicit UnicodeRegex(std::shared_ptr<const Code> code) : code_(std::move(code)) {}
  std::shared_ptr<const Code> code_;
};

// The Rust regex crate's \w, spelled with properties PCRE2 knows (PCRE2's own \w differs
// on numbers other than digits and on some marks).
inline constexpr std::string_view kWordClass =
    R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])";

// The pattern with every \s and \S widened to Oniguruma's whitespace set (adds U+0085).
std::string widen_whitespace_classes(std::string_view pattern);

}  // namespace kvmock::tokenizer
