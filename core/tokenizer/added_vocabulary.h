// The added tokens of a Hugging Face tokenizer ("added_tokens" in tokenizer.json): strings
// such as <|im_start|> that are found in the text before anything else runs and become
// one id each. Matching is leftmost-longest over all tokens, then each token's flags apply:
// single_word (only between non-word characters), lstrip/rstrip (swallow the whitespace
// beside it). Tokens marked normalized are searched in normalized text, the others in the
// raw input, which is why the tokenizer asks this class twice.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer/unicode_regex.h"
#include "core/tokens/block_hash.h"

namespace kvmock::tokenizer {

struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A part of a text: [start, end) and, when it is an added token, its id.
struct TextSegment {
  size_t start;
  size_t end;
  std::optional<TokenId> id;
};

// Finds one group of added tokens (the normalized ones, or the others) in a text.
class AddedTokenMatcher {
 public:
  // `patterns` are (text to look for, token); empty texts are ignored.
  void build(std::vector<std::pair<std::string, const AddedToken*>> patterns);
  bool empty() const { return nodes_.size() <= 1; }

  // Cuts valid UTF-8 `text` into segments covering it, in order (no segment for empty text).
  void split(std::string_view text, std::vector<TextSegment>& out) const;

 private:
  // A byte trie: the longest token starting at a position is found by walking it once.
  struct Node {
    std::unordered_map<uint8_t, uint32_t> children;
    const AddedToken* token = nullptr;
  };
  // Longest token starting at `pos` and its byte length, or nullptr.
  const AddedToken* longest_at(std::string_view text, size_t pos, size_t& length) const;

  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_bytes_{};
  // One word character (the Rust regex crate's \w), for single_word tokens.
  std::optional<UnicodeRegex> word_char_;
};

}  // namespace kvmock::tokenizer
