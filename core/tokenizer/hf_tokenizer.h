// A Hugging Face tokenizer built from a model's tokenizer.json, so a mock worker turns text
// into the same token ids as the real model (and a router that tokenizes the same text
// computes the same block hashes). See docs/tokenizers.md for what is supported.
//
// Parsing and encoding are pure functions of their input bytes (no file I/O here: the
// caller reads the files); every unsupported construct is an error naming it, never a
// silent approximation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/tokens/block_hash.h"

namespace kvmock {

class HfTokenizer {
 public:
  // Builds the tokenizer described by the JSON text of a tokenizer.json. Errors:
  // "bad_json" (not JSON, or not an object), "unsupported" (a model, normalizer, pre-tokenizer,
  // post-processor or decoder type, or an option, this code does not implement: the
  // message names it), "bad_tokenizer" (a required field missing or of the wrong type).
  static Result<std::unique_ptr<HfTokenizer>> from_json(std::string_view tokenizer_json);

  ~HfTokenizer();
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  // The ids of `text` (UTF-8), as the reference library's encode(text, add_special_tokens)
  // gives them: added tokens matched first, then normalizer, pre-tokenizer, model, and -
  // when `add_special_tokens` - the post-processor's template (e.g. BOS). Error
  // "bad_utf8" when `text` is not valid UTF-8.
  Result<std::vector<TokenId>> encode(std::string_view text, bool add_special_tokens) const;

  // The text of `ids` as the reference decode(ids, skip_special_tokens) gives it, through
  // the file's decoder. Ids outside the vocabulary are skipped. May end in an incomplete
  // UTF-8 sequence rendered as U+FFFD, as the reference does.
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const;

  // The id of a token's exact string in the vocabulary or the added tokens.
  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The string of an id (vocabulary or added token), or nullopt outside both.
  std::optional<std::string> id_to_token(TokenId id) const;
  // True for added tokens marked "special".
  bool is_special(TokenId id) const;
  // One past the largest id of the vocabulary and the added tokens.
  uint32_t vocab_size() const;

 private:
  struct Impl;
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvmock
