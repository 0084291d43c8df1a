// Feeds arbitrary bytes to the OpenAI and vLLM request parsers (completions, chat,
// /tokenize, /detokenize, the LoRA load/unload bodies, the fault settings patch) with the mock
// codec: they must return a value or an Error, never crash, hang or read out of bounds. The real
// tokenizer and template are fuzzed on their own (tokenizer_fuzz, chat_template_fuzz).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/faults/fault_settings.h"
#include "core/tokenizer/text_codec.h"
#include "transport/http/lora_endpoints.h"
#include "transport/http/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const kvmock::TextCodec& codec = *kvmock::make_mock_text_codec();
  auto completion = kvmock::parse_completion_request(body, codec);
  if (completion) {
    if (completion->prompt.empty() || completion->max_tokens == 0) __builtin_trap();
    // vLLM's cross-field rule holds for every request that parsed.
    if (completion->max_tokens && completion->min_tokens > *completion->max_tokens) {
      __builtin_trap();
    }
    // One engine request per sequence: the count stays capped, and a stream returns them all.
    if (completion->n < 1 || completion->best_of < completion->n ||
        completion->best_of > kvmock::kMaxChoices ||
        (completion->stream && completion->best_of != completion->n)) {
      __builtin_trap();
    }
  } else {
    (void)kvmock::openai_error_param(completion.error().reason);
  }
  auto chat = kvmock::parse_chat_request(body, codec, "2026-12-06T00:00");
  if (chat && (chat->prompt.empty() || chat->max_tokens == 0)) __builtin_trap();
  // Chat has no best_of: every sequence is a returned choice.
  if (chat && (chat->n < 1 || chat->n > kvmock::kMaxChoices || chat->best_of != chat->n)) {
    __builtin_trap();
  }
  (void)kvmock::parse_tokenize_request(body, codec, "2026-12-06T00:00");
  auto lora = kvmock::parse_lora_adapter_body(body);
  if (!lora && lora.error().reason != "bad_request") __builtin_trap();
  // The worker's POST /admin/config body.
  auto faults = kvmock::merge_fault_settings(kvmock::FaultSettings{}, body);
  if (faults && !(faults->failure_injection_rate >= 0 && faults->failure_injection_rate <= 100)) {
    __builtin_trap();
  }
  auto detokenize = kvmock::parse_detokenize_request(body);
  if (detokenize) (void)codec.decode(detokenize->tokens, false);
  return 0;
}
