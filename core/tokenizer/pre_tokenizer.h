// The pre-tokenizer stage of a Hugging Face tokenizer: cuts normalized text into the
// pieces ("words") the model encodes one at a time, and may rewrite them (ByteLevel maps
// bytes to printable characters, Metaspace marks spaces). Built from the "pre_tokenizer"
// object of tokenizer.json; unimplemented types and options are refused by name.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/tokenizer/unicode_regex.h"

namespace kvmock::tokenizer {

struct Piece {
  std::string text;
  // Whether the piece begins at byte 0 of the caller's input: Metaspace's "first" prepend
  // scheme marks only such a piece.
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their sub-pieces, in order. Empty pieces are dropped.
  virtual Result<bool> pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// Errors: "unsupported" (type or option), "bad_tokenizer" (missing or mistyped field).
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& spec);

// How the matches of a split pattern become pieces (the reference's names).
enum class SplitBehavior : uint8_t {
  kRemoved,             // matches are dropped
  kIsolated,            // each match is a piece of its own
  kMergedWithPrevious,  // a match joins the piece before it
  kMergedWithNext,      // a match joins the piece after it
  kContiguous,          // adjacent matches form one piece
};

// Appends to `out` the pieces of `piece` given the successive matches of a pattern in it
// (`invert` swaps which parts count as matches).
void split_by_matches(const Piece& piece, const std::vector<MatchSpan>& matches,
                      SplitBehavior behavior, bool invert, std::vector<Piece>& out);

// GPT-2's byte-to-character mapping: printable Latin-1 bytes map to themselves, the other
// bytes to U+0100 onwards in byte order, so any byte string becomes printable text.
const std::string& byte_level_char(uint8_t byte);
// The inverse for the decoder: the byte a character stands for, or -1.
int byte_level_byte(char32_t code_point);

}  // namespace kvmock::tokenizer
