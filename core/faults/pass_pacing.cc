#include "core/faults/pass_pacing.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kvmock {
namespace {

// splitmix64's finalizer: a well-mixed 64-bit value from any input.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A uniform draw in (0, 1): 53 random bits, never 0 (log(0) below).
double unit_open(uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53; }

// A standard normal draw (Box-Muller).
double standard_normal(uint64_t seed, uint64_t pass) {
  const uint64_t first = mix(mix(seed) + pass);
  const double u1 = unit_open(first);
  const double u2 = unit_open(mix(first));
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
