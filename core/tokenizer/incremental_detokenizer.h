// Turns a stream of generated ids into a stream of text pieces the way vLLM does it, so a
// streamed answer never splits a UTF-8 character or a word's spacing across chunks: the
// text of the ids seen so far is decoded against a short window of earlier ids, and a piece
// is released only when it is longer than the window's own text and does not end in an
// incomplete character (U+FFFD); otherwise it waits for the next id.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/tokenizer/text_codec.h"

namespace kvmock {

class IncrementalDetokenizer {
 public:
  // `codec` must outlive this object. The last codec.detokenize_context() ids of `prompt`
  // are decoded as context but never emitted.
  IncrementalDetokenizer(const TextCodec& codec, std::span<const TokenId> prompt);

  // Appends `ids` and returns the text they complete (may be empty while a character is
  // incomplete).
  std::string push(std::span<const TokenId> ids);

  // The text still held back at the end of generation (an incomplete character at the very
  // end is released as the codec decodes it, U+FFFD included, as vLLM's final decode does).
  std::string finish();

 private:
  // Decodes the window and everything after it, and releases the text past the window's
  // unless it is no longer or - before the end - ends in an incomplete character; releasing
  // moves the window up to the ids just released.
  std::string release(bool at_end);

  const TextCodec& codec_;
  std::vector<TokenId> ids_;  // context and output ids
  size_t prefix_offset_ = 0;  // the window's first id
  size_t read_offset_ = 0;    // ids before it have been released as text
};

}  // namespace kvmock
