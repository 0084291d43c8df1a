// A scripted chaos timeline, `faults.scenario` (docs/faults.md#scenario-files): steps that,
// at a time from the daemon's start, change the fault settings of some workers or crash or
// restart them, so a router's CI replays the same incident every run. Pure data and pure
// functions: config/fault_scenario.h parses the file into this, the daemon's ScenarioRunner
// plays it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmock {

// Which workers a step acts on, by the ids the config gives them (workers.worker_id_base + i).
struct WorkerSelector {
  enum class Kind : uint8_t { kAll, kIds, kFraction };
  Kind kind = Kind::kAll;
  // kIds: inclusive ranges of worker ids; a single id is a range of one.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  // kFraction: the share of the fleet, in (0, 1].
  double fraction = 0;

  bool operator==(const WorkerSelector&) const = default;
};

enum class ScenarioAction : uint8_t {
  kSet,      // merge `patch` into each worker's fault settings
  kCrash,    // the worker stops answering and publishing
  kRestart,  // the worker comes back with an empty KV cache
};
std::string_view scenario_action_name(ScenarioAction action);

struct ScenarioStep {
  size_t index = 0;    // its position in the file (steps[index]), for log lines
  uint64_t at_ms = 0;  // from the daemon's start
  WorkerSelector workers;
  ScenarioAction action = ScenarioAction::kSet;
  // kSet: a JSON object of settings that merge_fault_settings accepts (checked at parse).
  std::string patch;

  bool operator==(const ScenarioStep&) const = default;
};

struct FaultScenario {
  std::vector<ScenarioStep> steps;  // in `at` order; equal times keep the file's order

  bool operator==(const FaultScenario&) const = default;
};

// Orders steps by at_ms, keeping the file's order for equal times.
void order_scenario_steps(std::vector<ScenarioStep>& steps);

// Why `selector` cannot be played on a fleet with ids `fleet_ids` (an id or range not in it,
// a fraction out of range), or nullopt when it can. The message names the ids.
std::optional<std::string> check_worker_selector(const WorkerSelector& selector,
                                                 std::span<const uint64_t> fleet_ids);

// The positions in `fleet_ids` that `selector` picks, ascending. kFraction picks
// max(1, round(fraction * N)) workers: the fleet is ranked by a hash of (seed, worker id) and
// the first ones are taken, so a seed picks the same workers every run, the same fraction
// picks the same workers in every step, and a smaller fraction picks a subset of a larger one.
std::vector<size_t> select_workers(const WorkerSelector& selector,
                                   std::span<const uint64_t> fleet_ids, uint64_t seed);

// Ids as a short list for log lines: consecutive ids become ranges ("1000-1003, 1007").
std::string describe_worker_ids(std::span<const uint64_t> ids);

}  // namespace kvmock
