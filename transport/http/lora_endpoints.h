// vLLM's runtime LoRA endpoints on a worker's port (docs/wire-formats.md#lora-adapters):
// POST /v1/load_lora_adapter {"lora_name","lora_path"} and POST /v1/unload_lora_adapter
// {"lora_name"}; 200 with vLLM's plain-text "Success: ..." line, else OpenAI's error JSON
// with vLLM's message (400 bad body or already loaded, 404 unknown adapter).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/common/result.h"
#include "transport/http/http_server.h"
#include "transport/http/lora_adapters.h"

namespace kvmock {

inline constexpr std::string_view kLoadLoraAdapterPath = "/v1/load_lora_adapter";
inline constexpr std::string_view kUnloadLoraAdapterPath = "/v1/unload_lora_adapter";

// The fields of a load or unload body; missing ones are empty. Errors ("bad_request"): not a
// JSON object, or a field that is not a string.
struct LoraAdapterBody {
  std::string lora_name;
  std::string lora_path;
};
Result<LoraAdapterBody> parse_lora_adapter_body(std::string_view body);

// Answers a POST to one of the two paths above on `adapters`.
void serve_lora_endpoint(HttpExchange& exchange, LoraAdapters& adapters,
                         const std::map<std::string, std::string>& headers);

}  // namespace kvmock
