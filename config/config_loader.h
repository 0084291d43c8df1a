// Loads the effective configuration: defaults, then the YAML file, then the environment,
// then --set overrides (config/README.md), then range and cross-key
// checks. Never throws: every problem becomes an Error whose message has one line per
// problem, "LOCATION: KEY: what is wrong", e.g.
//   config.yaml:12: workers.engine.block_size: must be between 1 and 1024, got 0
// The daemon prints the message and exits with status 2.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/common/result.h"

namespace kvmock {

struct ConfigSource {
  std::string path;                        // YAML file; empty: defaults only
  std::vector<std::string> sets;           // "KEY=VALUE", applied in order, last wins
  std::map<std::string, std::string> env;  // the process environment (others ignored)
};

// Reads `source.path` and calls parse_config. Error reason "io" when the file is unreadable.
Result<Config> load_config(const ConfigSource& source);

// `file_name` labels messages only. Recognized environment variables: NATS_SERVER
// (nats.url) and KVMOCK_<KEY> for every scalar key (KVMOCK_WORKERS_COUNT=8); another
// KVMOCK_ variable is an error. A --set KEY may address a relay as relays[N].KEY, where
// N == the number of relays appends one.
Result<Config> parse_config(std::string_view yaml_text, std::string_view file_name,
                            const std::vector<std::string>& sets,
                            const std::map<std::string, std::string>& env);

// The variables of this process that parse_config reads (NATS_SERVER and KVMOCK_*).
std::map<std::string, std::string> config_environment();

}  // namespace kvmock
