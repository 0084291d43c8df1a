// When open-loop requests arrive (docs/ARCHITECTURE.md#offline-replay, Dynamo's
// loadgen/arrival.rs), or how many a closed loop keeps in flight.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/common/result.h"
#include "core/workload/seeded_random.h"

namespace kvmock {

enum class ArrivalKind : uint8_t {
  kBurst,       // every request at 0
  kConstant,    // evenly spaced at `rate`
  kPoisson,     // exponential gaps, mean 1/rate
  kGamma,       // gamma gaps, mean 1/rate, coefficient of variation `cv` (shape 1/cv^2)
  kClosedLoop,  // no schedule: a new request whenever one of `concurrency` finishes
};

struct ArrivalSpec {
  ArrivalKind kind = ArrivalKind::kBurst;
  double rate = 0;           // requests per second (constant, poisson, gamma)
  double cv = 1;             // gamma only; 1 is Poisson-like, < 1 smoother, > 1 burstier
  uint32_t concurrency = 0;  // closed loop only
};

// Parses the command-line form: burst | constant:RATE | poisson:RATE | gamma:RATE:CV |
// closed:CONCURRENCY. Error "bad_arrival" with a message naming what is wrong.
Result<ArrivalSpec> parse_arrival_spec(std::string_view text);

// Checks ranges: rate finite and > 0, cv finite and > 0, concurrency >= 1.
// Error "bad_arrival".
Result<bool> validate_arrival_spec(const ArrivalSpec& spec);

// Arrival times of an open-loop process, deterministic per seed. The first arrival is at
// 0; each gap is divided by `speedup` (> 0). Closed-loop specs give 0 every time.
// `spec` must have passed validate_arrival_spec.
class ArrivalProcess {
 public:
  ArrivalProcess(const ArrivalSpec& spec, uint64_t seed, double speedup = 1.0);

  // The next arrival, in ms; never decreases.
  double next_ms();

 private:
  double gap_ms();

  ArrivalSpec spec_;
  double speedup_;
  SeededRandom random_;
  double now_ms_ = 0;
  bool started_ = false;
};

}  // namespace kvmock
