// Printing the configuration: the effective config as YAML (check-config) and the key
// reference table (config/README.md). Both are generated from the key table, so they list
// every key, in the same order, and cannot drift from what the loader accepts.
#pragma once

#include <string>

#include "config/config.h"

namespace kvmock {

enum class Secrets : uint8_t { kShow, kRedact };

// Every key, defaults filled, as YAML that parse_config reads back to an equal Config
// (with Secrets::kShow). kRedact prints non-empty secrets (nats.password, nats.token) as
// "<redacted>" and the password or token inside a URL (nats://user:pass@host) as "***",
// for output that may end up in logs. Credential files are only named, never read.
std::string to_yaml(const Config& config, Secrets secrets = Secrets::kShow);

// A Markdown table of every key: key, type, default, allowed values, meaning.
std::string config_reference_markdown();

}  // namespace kvmock
