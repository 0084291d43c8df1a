#include "core/faults/pass_pacing.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/common/splitmix.h"

namespace kvmock {
namespace {

// A standard normal draw (Box-Muller).
double standard_normal(uint64_t seed, uint64_t pass) {
  const uint64_t first = splitmix64(splitmix64(seed) + pass);
  const double u1 = open_unit_fraction(first);
  const double u2 = open_unit_fraction(splitmix64(first));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace

double pass_time_factor(const PassPacing& pacing, uint64_t running, uint64_t max_running,
                        uint64_t seed, uint64_t pass) {
  double factor = pacing.latency_scale;
  if (pacing.jitter > 0) {
    factor *= std::max(kMinJitterFactor, 1.0 + pacing.jitter * standard_normal(seed, pass));
  }
  if (pacing.time_factor_under_load != 1 && max_running > 0) {
    const double load =
        std::min(1.0, static_cast<double>(running) / static_cast<double>(max_running));
    factor *= 1.0 + (pacing.time_factor_under_load - 1.0) * load;
  }
  return factor;
}

}  // namespace kvmock
