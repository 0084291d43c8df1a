// Arbitrary bytes as a config file, and as a scenario file (faults.scenario): parse_config
// and parse_fault_scenario must return a value or an Error naming the problem (the daemon's
// exit 2), never throw, crash or hang — yaml-cpp throws on bad YAML and on nesting too deep,
// and both parsers must turn that into errors. One target for both: they read the same YAML.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "config/config_loader.h"
#include "config/fault_scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = kvmock::parse_config(text, "fuzz.yaml", {}, {});
  if (!config.ok() && config.error().message.empty()) __builtin_trap();
  static const std::vector<uint64_t> kFleet = {1000, 1001, 1002, 1003};
  auto scenario = kvmock::parse_fault_scenario(text, "fuzz.yaml", kFleet);
  if (!scenario.ok() && scenario.error().message.empty()) __builtin_trap();
  if (scenario.ok()) {
    for (const kvmock::ScenarioStep& step : scenario->steps) {
      for (size_t position : kvmock::select_workers(step.workers, kFleet, 7)) {
        if (position >= kFleet.size()) __builtin_trap();
      }
    }
  }
  return 0;
}
