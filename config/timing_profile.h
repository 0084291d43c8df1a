// The timing profile file (workers.engine.timing.profile_path), read the same way by
// `kvmockd run` and `kvmockd replay`.
#pragma once

#include <string>

#include "config/config.h"
#include "core/common/result.h"

namespace kvmock {

// The text of the profile table when workers.engine.timing.model is profile, else "".
// Error reason "config", message "workers.engine.timing.profile_path: cannot read 'PATH'
// (why)" when the file cannot be read.
Result<std::string> load_timing_profile(const Config& config);

}  // namespace kvmock
