#include "daemon/scenario_runner.h"

#include <cstdio>
#include <string>
#include <utility>

#include "transport/log/logger.h"

namespace kvmock {

ScenarioRunner::ScenarioRunner(FaultScenario scenario, std::vector<uint64_t> fleet_ids,
                               uint64_t seed, ScenarioTargets& targets, const Clock& clock,
                               Clock::SteadyTime origin, MetricsRegistry& metrics)
    : scenario_(std::move(scenario)),
      fleet_ids_(std::move(fleet_ids)),
      seed_(seed),
      targets_(targets),
      clock_(clock),
      origin_(origin) {
  for (ScenarioAction action :
       {ScenarioAction::kSet, ScenarioAction::kCrash, ScenarioAction::kRestart}) {
    played_[static_cast<size_t>(action)] = &metrics.counter(
        "kvmock_scenario_steps_total", "Steps of the faults.scenario timeline played, by action",
        {{"action", std::string(scenario_action_name(action))}});
  }
}

std::optional<std::chrono::milliseconds> ScenarioRunner::tick() {
  const uint64_t now_ms = clock_.steady_ms_since(origin_);
  while (next_ < scenario_.steps.size() && scenario_.steps[next_].at_ms <= now_ms) {
    play(scenario_.steps[next_]);
    ++next_;
  }
  if (next_ == scenario_.steps.size()) return std::nullopt;
  return std::chrono::milliseconds(scenario_.steps[next_].at_ms - now_ms);
}

void ScenarioRunner::play(const ScenarioStep& step) {
  const std::vector<size_t> positions = select_workers(step.workers, fleet_ids_, seed_);
  std::vector<uint64_t> ids;
  ids.reserve(positions.size());
  for (size_t position : positions) ids.push_back(targets_.worker_id(position));
  char at[32];
  std::snprintf(at, sizeof at, "%.3f", static_cast<double>(step.at_ms) / 1000.0);
  std::string what(scenario_action_name(step.action));
  if (step.action == ScenarioAction::kSet) what += " " + step.patch;
  log_info("scenario", "step " + std::to_string(step.index) + " at " + at + " s: " + what +
                           " on worker" + (ids.size() == 1 ? " " : "s ") +
                           describe_worker_ids(ids));
  for (size_t i = 0; i < positions.size(); ++i) {
    Result<bool> done = true;
    switch (step.action) {
      case ScenarioAction::kSet:
        done = targets_.set_faults(positions[i], step.patch);
        break;
      case ScenarioAction::kCrash:
        done = targets_.crash(positions[i]);
        break;
      case ScenarioAction::kRestart:
        done = targets_.restart(positions[i]);
        break;
    }
    // The parser checked the settings and the selector; what can still fail is the worker's
    // state (a crash of a worker that is down): said, and the rest of the step still played.
    if (!done) {
      log_warn("scenario", "step " + std::to_string(step.index) + ": worker " +
                               std::to_string(ids[i]) + ": " + done.error().message);
    }
  }
  played_[static_cast<size_t>(step.action)]->inc();
}

}  // namespace kvmock
