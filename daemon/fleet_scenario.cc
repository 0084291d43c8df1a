#include "daemon/fleet_scenario.h"

#include <chrono>

#include "config/fault_scenario.h"
#include "daemon/worker_fleet.h"
#include "transport/http/worker_faults.h"
#include "transport/log/logger.h"
#include "transport/time/system_clock.h"

namespace kvmock {

uint64_t FleetScenarioTargets::worker_id(size_t position) const {
  return fleet_.worker(position).worker_id();
}

Result<bool> FleetScenarioTargets::set_faults(size_t position, std::string_view patch) {
  // Through the fleet, as the admin port does: a crashed worker has no settings to change
  // (its next life starts from the defaults), which the runner logs.
  const uint64_t id = worker_id(position);
  WorkerFaults* faults = fleet_.faults(id);
  if (faults == nullptr) return make_error("conflict", "crashed: its settings are not changed");
  const Result<FaultSettings> merged = faults->update(patch);
  if (!merged) return merged.error();
  return true;
}

Result<bool> FleetScenarioTargets::crash(size_t position) {
  return fleet_.crash_worker(worker_id(position));
}

Result<bool> FleetScenarioTargets::restart(size_t position) {
  const Result<uint64_t> restarted = fleet_.restart_worker(worker_id(position));
  if (!restarted) return restarted.error();
  return true;
}

FleetScenario::FleetScenario(FaultScenario scenario, const Config& config, WorkerFleet& fleet,
                             Clock::SteadyTime origin, MetricsRegistry& metrics)
    : targets_(fleet),
      runner_(std::move(scenario), scenario_fleet_ids(config), config.faults.seed, targets_,
              SystemClock::instance(), origin, metrics),
      // Once every step is played the thread has nothing to do but wait for stop().
      thread_(
          "kvmock-scenario", [this] { return runner_.tick(); }, std::chrono::hours(1)) {}

FleetScenario::~FleetScenario() { stop(); }

void FleetScenario::start() {
  log_info("scenario", "playing " + std::to_string(runner_.step_count()) + " steps");
  if (runner_.tick()) thread_.start();
}

void FleetScenario::stop() { thread_.stop(); }

}  // namespace kvmock
