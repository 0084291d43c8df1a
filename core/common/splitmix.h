// splitmix64's output function as a stateless mix, and fractions from its bits: the
// repeatable draws (faults, synthetic logprobs, workloads) are pure functions of a seed and
// an index built from these, so a seed names the same draws on every platform.
#pragma once

#include <cstdint>

namespace kvmock {

// One splitmix64 step of state `x`: a well-mixed 64-bit value from any input.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The top 53 bits of `bits` as a fraction in [0, 1).
inline double unit_fraction(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// The same, offset by half a step: strictly inside (0, 1), so logarithms are finite.
inline double open_unit_fraction(uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53;
}

}  // namespace kvmock
