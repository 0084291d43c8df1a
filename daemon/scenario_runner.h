// Plays a fault scenario (`faults.scenario`, docs/faults.md#scenario-files): each step, when
// its time from the daemon's start comes, merges its settings into the selected workers'
// fault settings or crashes or restarts them, logs one line and counts itself in
// kvmock_scenario_steps_total. The timed logic is tick(), which reads time only from the
// Clock it is given, so a unit test plays a scenario with a manual clock; the daemon calls
// tick() from a TickThread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/common/clock.h"
#include "core/common/result.h"
#include "core/faults/scenario.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

// What a scenario acts on: the workers in fleet order (position i is the config's worker i).
class ScenarioTargets {
 public:
  virtual ~ScenarioTargets() = default;
  // The id clients and routers know the worker by (with Dynamo discovery, its instance id).
  virtual uint64_t worker_id(size_t position) const = 0;
  // Merges a JSON patch of fault settings (as POST /admin/config).
  virtual Result<bool> set_faults(size_t position, std::string_view patch) = 0;
  virtual Result<bool> crash(size_t position) = 0;
  virtual Result<bool> restart(size_t position) = 0;
};

class ScenarioRunner {
 public:
  // `fleet_ids` are the ids the scenario's selectors name (config/fault_scenario.h
  // scenario_fleet_ids), in fleet order; `seed` is faults.seed, which fixes the workers a
  // fraction picks. Step times count from `origin` on `clock`.
  ScenarioRunner(FaultScenario scenario, std::vector<uint64_t> fleet_ids, uint64_t seed,
                 ScenarioTargets& targets, const Clock& clock, Clock::SteadyTime origin,
                 MetricsRegistry& metrics);

  // Plays every step whose time has come, in order, and returns the time until the next
  // one; nullopt once every step has been played. Not thread-safe: one caller.
  std::optional<std::chrono::milliseconds> tick();

  size_t steps_played() const { return next_; }
  size_t step_count() const { return scenario_.steps.size(); }

 private:
  void play(const ScenarioStep& step);

  const FaultScenario scenario_;
  const std::vector<uint64_t> fleet_ids_;
  const uint64_t seed_;
  ScenarioTargets& targets_;
  const Clock& clock_;
  const Clock::SteadyTime origin_;
  // kvmock_scenario_steps_total by action.
  Counter* played_[3] = {nullptr, nullptr, nullptr};
  size_t next_ = 0;  // the first step not played yet
};

}  // namespace kvmock
