// `kvmockd check-config [--config FILE] [--set KEY=VALUE ...] [--reference]`: validates the
// configuration exactly as `run` would (file, environment, --set) and prints the effective
// config as YAML, every key with defaults filled and secrets redacted. --reference prints
// the Markdown key reference instead (the table in config/README.md).
#pragma once

namespace kvmock {

// argv[0] is "check-config". Returns 0 when valid; 2 (messages on stderr) for a bad
// command line or config.
int run_check_config_command(int argc, char** argv);

}  // namespace kvmock
