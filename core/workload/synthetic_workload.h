// A seeded synthetic workload (docs/ARCHITECTURE.md#offline-replay): request lengths drawn
// from clamped normals, prompts that share a prefix within groups, and an arrival process.
// Offline replay drains it; the live load driver pulls one request at a time and waits
// for its arrival on the wall clock.
//
// Prompts: request i belongs to prefix group g (drawn uniformly from the seed) and its
// first round(shared_prefix_ratio x input_length) tokens are the first tokens of group
// g's prefix, a fixed random token sequence; the rest are random and its own. Two
// requests of one group therefore share min(their prefix lengths) tokens, and requests
// of different groups share none (up to 64-bit hash collisions).
#pragma once

#include <cstdint>
#include <optional>

#include "core/common/result.h"
#include "core/workload/arrival_process.h"
#include "core/workload/seeded_random.h"
#include "core/workload/workload_request.h"

namespace kvmock {

// Synthetic token ids lie in [1, kSyntheticVocab).
inline constexpr uint32_t kSyntheticVocab = 32000;
// Upper bound on one drawn length (input or output), so a wild stddev stays bounded.
inline constexpr uint32_t kMaxSyntheticLength = 1u << 20;

// A length drawn as round(normal(mean, stddev)), clamped to [1, kMaxSyntheticLength].
struct LengthSpec {
  double mean = 0;
  double stddev = 0;
};

struct SyntheticSpec {
  uint64_t num_requests = 0;
  LengthSpec input{1000, 0};
  LengthSpec output{100, 0};
  double shared_prefix_ratio = 0;  // in [0, 1]
  uint32_t num_prefix_groups = 0;  // >= 1 when shared_prefix_ratio > 0
  ArrivalSpec arrival;
  double arrival_speedup = 1.0;  // divides inter-arrival gaps; > 0
  uint64_t seed = 0;
};

class SyntheticWorkload {
 public:
  // Checks the spec. Errors: "bad_synthetic" (message names the field), "bad_arrival".
  static Result<SyntheticWorkload> create(const SyntheticSpec& spec);

  // The next request, or nullopt after num_requests. Arrivals never decrease; in a
  // closed loop every arrival_ms is 0 (the driver dispatches when a slot frees).
  std::optional<WorkloadRequest> next();

  uint64_t produced() const { return produced_; }
  const SyntheticSpec& spec() const { return spec_; }

 private:
  explicit SyntheticWorkload(const SyntheticSpec& spec);
  uint32_t draw_length(const LengthSpec& length);

  SyntheticSpec spec_;
  // Separate streams, so changing the arrival process keeps lengths and prompts.
  SeededRandom lengths_;
  SeededRandom groups_;
  ArrivalProcess arrivals_;
  uint64_t produced_ = 0;
};

}  // namespace kvmock
