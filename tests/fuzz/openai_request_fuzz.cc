// Feeds arbitrary bytes to both OpenAI request parsers: they must return a value or an
// Error, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "transport/http/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto completion = kvmock::parse_completion_request(body);
  if (completion) {
    if (completion->prompt.empty() || completion->max_tokens == 0) __builtin_trap();
  } else {
    (void)kvmock::openai_error_param(completion.error().reason);
  }
  auto chat = kvmock::parse_chat_request(body);
  if (chat && (chat->prompt.empty() || chat->max_tokens == 0)) __builtin_trap();
  return 0;
}
