// Cross-key consistency rules: combinations of individually valid values that cannot
// work together ("G2 is off", overlapping ports, "nothing to do"). Each rule is a named
// function in config_rules.cc; each blames the key the user most likely has to change.
#pragma once

#include "config/config.h"
#include "config/diagnostics.h"

namespace kvmock {

// Adds one error per violated rule to `diag` (whose origins locate the blamed key).
void check_config_rules(const Config& config, Diagnostics& diag);

}  // namespace kvmock
