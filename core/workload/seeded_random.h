// Portable seeded sampling. The standard library's distributions are
// implementation-defined, so a workload drawn with them could differ between libstdc++
// and libc++; these are specified here so a seed names the same workload everywhere.
// mt19937_64 itself is fully specified by the standard.
#pragma once

#include <cstdint>
#include <random>

namespace kvmock {

class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  // Uniform in (0, 1): never 0, so logarithms are finite.
  double uniform_open();
  // Standard normal (Box–Muller; the second value of each pair is kept for the next call).
  double normal();
  // Exponential with the given mean.
  double exponential(double mean);
  // Gamma with shape k > 0 and scale 1 (Marsaglia–Tsang; k < 1 via the U^(1/k) boost).
  double gamma(double shape);
  // Uniform integer in [0, n); n must be > 0.
  uint64_t below(uint64_t n);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// A 64-bit mix of (a, b, c) for random-access token ids (splitmix64 finaliser).
uint64_t mix64(uint64_t a, uint64_t b, uint64_t c);

}  // namespace kvmock
