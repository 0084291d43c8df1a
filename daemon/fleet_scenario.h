// The daemon's fault scenario: a ScenarioRunner over the mock workers of a WorkerFleet,
// ticked by its own thread from start() until stop().
#pragma once

#include <memory>

#include "config/config.h"
#include "daemon/scenario_runner.h"
#include "transport/time/tick_thread.h"

namespace kvmock {

class WorkerFleet;

// The fleet as a scenario sees it: position i is the fleet's worker i.
class FleetScenarioTargets final : public ScenarioTargets {
 public:
  explicit FleetScenarioTargets(WorkerFleet& fleet) : fleet_(fleet) {}

  uint64_t worker_id(size_t position) const override;
  Result<bool> set_faults(size_t position, std::string_view patch) override;
  Result<bool> crash(size_t position) override;
  Result<bool> restart(size_t position) override;

 private:
  WorkerFleet& fleet_;
};

class FleetScenario {
 public:
  // Step times count from `origin` (the daemon's start).
  FleetScenario(FaultScenario scenario, const Config& config, WorkerFleet& fleet,
                Clock::SteadyTime origin, MetricsRegistry& metrics);
  ~FleetScenario();

  // Plays the steps already due at once, on the caller's thread (so steps at 0 s hold before
  // the daemon reports ready), then the rest from a thread as their times come.
  void start();
  // Plays no more steps; joins the thread. Idempotent.
  void stop();

 private:
  FleetScenarioTargets targets_;
  ScenarioRunner runner_;
  TickThread thread_;
};

}  // namespace kvmock
