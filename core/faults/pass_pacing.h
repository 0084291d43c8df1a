// How a worker's fault settings stretch its engine's passes (docs/faults.md#pacing): the
// factor every modeled pass time is multiplied by. Pure: the engine driver asks once per
// pass with the pass's number, so a seed replays the same jitter.
#pragma once

#include <cstdint>

namespace kvmock {

struct PassPacing {
  double latency_scale = 1;           // > 0
  double jitter = 0;                  // relative standard deviation, >= 0
  double time_factor_under_load = 1;  // the load factor with a full batch, >= 1

  bool is_identity() const {
    return latency_scale == 1 && jitter == 0 && time_factor_under_load == 1;
  }
  bool operator==(const PassPacing&) const = default;
};

// The smallest factor jitter can draw: a pass never takes (almost) no time.
inline constexpr double kMinJitterFactor = 0.05;

// latency_scale x max(kMinJitterFactor, 1 + jitter x N(0,1)) x the load factor, which grows
// linearly from 1 with no request running to time_factor_under_load with `max_running`
// running (llm-d-inference-sim's time-factor-under-load). The normal draw is a pure
// function of (seed, pass).
double pass_time_factor(const PassPacing& pacing, uint64_t running, uint64_t max_running,
                        uint64_t seed, uint64_t pass);

}  // namespace kvmock
