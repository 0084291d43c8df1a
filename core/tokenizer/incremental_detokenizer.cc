#include "core/tokenizer/incremental_detokenizer.h"

#include <algorithm>

namespace kvmock {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

bool ends_incomplete(std::string_view text) {
  return text.size() >= kReplacementCharacter.size() &&
         text.substr(text.size() - kReplacementCharacter.size()) == kReplacementCharacter;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const TextCodec& codec,
                                               std::span<const TokenId> prompt)
    : codec_(codec) {
  const size_t context = std::min(prompt.size(), codec.detokenize_context());
  ids_.assign(prompt.end() - static_cast<std::ptrdiff_t>(context), prompt.end());
  read_offset_ = ids_.size();
}

std::string IncrementalDetokenizer::push(std::span<const TokenId> ids) {
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  return release(/*at_end=*/false);
}

std::string IncrementalDetokenizer::finish() {
  if (read_offset_ == ids_.size()) return {};
  return release(/*at_end=*/true);
}

std::string IncrementalDetokenizer::release(bool at_end) {
  const std::span<const TokenId> all(ids_);
  const std::string window =
      codec_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), true);
  const std::string text = codec_.decode(all.subspan(prefix_offset_), true);
  if (text.size() <= window.size() || (!at_end && ends_incomplete(text))) return {};
  // The window's text is a prefix of the longer decode for every decoder this codec
  // supports; compare defensively and release only what follows it.
  const size_t shared = text.compare(0, window.size(), window) == 0 ? window.size() : 0;
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return text.substr(shared);
}

}  // namespace kvmock
