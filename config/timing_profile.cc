#include "config/timing_profile.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kvmock {

Result<std::string> load_timing_profile(const Config& config) {
  const TimingArgs& timing = config.workers.engine.timing;
  if (timing.model != TimingModelKind::kProfile) return std::string();
  std::ifstream file(timing.profile_path, std::ios::binary);
  std::ostringstream text;
  if (file) text << file.rdbuf();
  if (!file || file.bad()) {
    return make_error("config", "workers.engine.timing.profile_path: cannot read '" +
                                    timing.profile_path + "' (" + std::strerror(errno) + ")");
  }
  return std::move(text).str();
}

}  // namespace kvmock
