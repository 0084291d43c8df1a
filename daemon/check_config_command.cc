#include "daemon/check_config_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "config/config_writer.h"
#include "config/fault_scenario.h"
#include "daemon/flags.h"

namespace kvmock {
namespace {

constexpr const char* kCheckConfigUsage =
    "usage: kvmockd check-config [--config FILE] [--set KEY=VALUE ...]\n"
    "                            [--log-format text|json] [--log-level debug|info|warn|error]\n"
    "       kvmockd check-config --reference\n"
    "Validates the config exactly as `kvmockd run` would (same flags, same environment) and\n"
    "prints the effective config as YAML, secrets redacted. --reference prints the table of\n"
    "every key instead.\n";

}  // namespace

int run_check_config_command(int argc, char** argv) {
  ConfigSource source;
  bool reference = false;
  std::vector<FlagSpec> flags = config_flags(source, /*with_log=*/true);
  flags.push_back(switch_flag("--reference", reference));
  if (auto status = handle_command_line(argc, argv, flags, kCheckConfigUsage)) return *status;
  if (reference) {
    std::fputs(config_reference_markdown().c_str(), stdout);
    return 0;
  }
  source.env = config_environment();
  const Result<Config> config = load_config(source);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 2;
  }
  // The scenario file is part of what `run` loads: a bad one fails here as it would there.
  if (const Result<FaultScenario> scenario = load_fault_scenario(*config); !scenario.ok()) {
    std::fprintf(stderr, "%s\n", scenario.error().message.c_str());
    return 2;
  }
  std::fputs(to_yaml(*config, Secrets::kRedact).c_str(), stdout);
  return 0;
}

}  // namespace kvmock
