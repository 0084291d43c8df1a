// One worker's fault settings at runtime (docs/faults.md): read and merged by the admin
// config endpoints, consulted for every generation request, and counted per fault type for
// kvmock_faults_injected_total. Safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

#include "core/common/result.h"
#include "core/faults/fault_settings.h"

namespace kvmock {

class WorkerFaults {
 public:
  // `seed` (faults.seed) and the worker id fix which requests fail.
  WorkerFaults(uint64_t seed, uint64_t worker_id) : seed_(seed), worker_id_(worker_id) {}

  FaultSettings settings() const;
  // Merges a JSON patch; the new settings, or the error with nothing changed.
  Result<FaultSettings> update(std::string_view patch);
  // Called with the current settings at once, then with the new settings after every
  // successful update, under the settings lock (so listeners see updates in order); it
  // must not block or call back into this object.
  // The worker hands the pacing to its engines and the event faults to its publisher.
  void set_listener(std::function<void(const FaultSettings&)> listener);

  uint64_t seed() const { return seed_; }
  uint64_t worker_id() const { return worker_id_; }

  // The fault of the next generation request under the current settings, if any; every
  // request takes one draw, so a seed replays the same sequence of faults.
  std::optional<FaultType> draw();
  // Counts a fault shown to a client (drawn or forced by X-Kvmock-Fault).
  void record(FaultType type) { injected_[static_cast<size_t>(type)].fetch_add(1); }
  uint64_t injected(FaultType type) const { return injected_[static_cast<size_t>(type)].load(); }

 private:
  const uint64_t seed_;
  const uint64_t worker_id_;
  mutable std::mutex mutex_;
  FaultSettings settings_;
  std::function<void(const FaultSettings&)> listener_;
  std::atomic<uint64_t> requests_{0};
  std::array<std::atomic<uint64_t>, kFaultTypeCount> injected_{};
};

}  // namespace kvmock
