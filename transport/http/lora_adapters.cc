#include "transport/http/lora_adapters.h"

#include <algorithm>

namespace kvmock {

Result<LoraAdapter> LoraAdapters::load(const std::string& name, const std::string& path,
                                       const std::string& parent) {
  // vLLM's messages (serving_models.py), so clients that match on them keep working.
  if (name.empty() || path.empty()) {
    return make_error("bad_request", "Both 'lora_name' and 'lora_path' must be provided.");
  }
  std::lock_guard lock(mutex_);
  const bool loaded = std::any_of(adapters_.begin(), adapters_.end(),
                                  [&](const LoraAdapter& a) { return a.name == name; });
  if (loaded) {
    return make_error("bad_request", "The lora adapter '" + name + "' has already been loaded.");
  }
  LoraAdapter adapter{name, parent.empty() ? default_parent_ : parent, path, next_id_++};
  adapters_.push_back(adapter);
  return adapter;
}

Result<LoraAdapter> LoraAdapters::unload(const std::string& name) {
  if (name.empty()) {
    return make_error("bad_request", "'lora_name' needs to be provided to unload a LoRA adapter.");
  }
  std::lock_guard lock(mutex_);
  auto it = std::find_if(adapters_.begin(), adapters_.end(),
                         [&](const LoraAdapter& a) { return a.name == name; });
  if (it == adapters_.end()) {
    return make_error("not_found", "The lora adapter '" + name + "' cannot be found.");
  }
  LoraAdapter removed = std::move(*it);
  adapters_.erase(it);
  return removed;
}

std::optional<LoraAdapter> LoraAdapters::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  for (const LoraAdapter& a : adapters_) {
    if (a.name == name) return a;
  }
  return std::nullopt;
}

std::vector<LoraAdapter> LoraAdapters::list() const {
  std::lock_guard lock(mutex_);
  return adapters_;
}

}  // namespace kvmock
