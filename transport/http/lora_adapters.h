// The LoRA adapters one worker serves, as vLLM's OpenAI layer keeps them
// (docs/wire-formats.md#lora-adapters): each is a served model name with a parent model,
// added by config or POST /v1/load_lora_adapter and removed by /v1/unload_lora_adapter.
// Requests already running on an adapter finish after it is unloaded, as in vLLM, where
// unloading only removes the name from the served list. Safe from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct LoraAdapter {
  std::string name;    // what requests put in `model`
  std::string parent;  // the served model it adapts
  std::string path;    // as given at load time (vLLM's lora_path); /v1/models reports it as root
  uint32_t id = 0;     // vLLM's lora_int_id: 1, 2, ... in load order, never reused
};

class LoraAdapters {
 public:
  explicit LoraAdapters(std::string default_parent) : default_parent_(std::move(default_parent)) {}

  // Errors: "bad_request" (empty name or path, or a name already loaded; vLLM's message).
  // An empty `parent` means the default one.
  Result<LoraAdapter> load(const std::string& name, const std::string& path,
                           const std::string& parent = {});
  // Errors: "bad_request" (empty name), "not_found" (no adapter of that name).
  Result<LoraAdapter> unload(const std::string& name);
  std::optional<LoraAdapter> find(std::string_view name) const;
  // In load order.
  std::vector<LoraAdapter> list() const;

 private:
  const std::string default_parent_;
  mutable std::mutex mutex_;
  std::vector<LoraAdapter> adapters_;
  uint32_t next_id_ = 1;
};

}  // namespace kvmock
