#include "transport/http/worker_faults.h"

namespace kvmock {

FaultSettings WorkerFaults::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

Result<FaultSettings> WorkerFaults::update(std::string_view patch) {
  std::lock_guard lock(mutex_);
  auto merged = merge_fault_settings(settings_, patch);
  if (!merged) return merged;
  settings_ = *merged;
  if (listener_) listener_(settings_);
  return merged;
}

void WorkerFaults::set_listener(std::function<void(const FaultSettings&)> listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
  if (listener_) listener_(settings_);
}

std::optional<FaultType> WorkerFaults::draw() {
  const uint64_t sequence = requests_.fetch_add(1);
  return pick_fault(settings(), seed_, worker_id_, sequence);
}

}  // namespace kvmock
