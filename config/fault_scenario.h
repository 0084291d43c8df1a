// The scenario file named by `faults.scenario` (docs/faults.md#scenario-files): a YAML
// timeline of steps, parsed into a FaultScenario (core/faults/scenario.h) and checked
// against the configured fleet, so `kvmockd check-config` and `kvmockd run` refuse a bad
// file before anything starts.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/common/result.h"
#include "core/faults/scenario.h"

namespace kvmock {

// The ids a scenario's selectors name: worker i of the config is workers.worker_id_base + i
// (also when Dynamo discovery gives the worker another instance id).
std::vector<uint64_t> scenario_fleet_ids(const Config& config);

// Parses the text of a scenario file. Never throws; every problem is reported, one per
// line, as "FILE:LINE: steps[N].FIELD: what is wrong" (`file_name` labels the lines): bad
// YAML, unknown keys, a missing or negative `at`, a selector naming a worker not in
// `fleet_ids`, a step with both or neither of `set` and `action`, and every `set` key that
// POST /admin/config would refuse (checked by merge_fault_settings itself).
Result<FaultScenario> parse_fault_scenario(std::string_view yaml_text, std::string_view file_name,
                                           std::span<const uint64_t> fleet_ids);

// Reads and parses `faults.scenario` against the config's fleet; an empty scenario when the
// key is empty. Error reason "config" ("faults.scenario: cannot read 'PATH' (why)" when the
// file cannot be read). Reads a file: call at start.
Result<FaultScenario> load_fault_scenario(const Config& config);

}  // namespace kvmock
