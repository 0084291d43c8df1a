#include "core/timing/polynomial_timing.h"

#include <algorithm>

namespace kvmock {
namespace {

constexpr double kPrefillA = 4.209989e-07;
constexpr double kPrefillB = 1.518344e-02;
constexpr double kPrefillC = 16.50142;
constexpr double kDecodeA = -25.74;
constexpr double kDecodeB = 54.01;
constexpr double kDecodeC = 5.74;

}  // namespace

double PolynomialTiming::prefill_ms(const BatchStats& stats) const {
  const double t = static_cast<double>(stats.prefill_new_tokens());
  if (t == 0) return 0;
  return std::max(0.0, kPrefillA * t * t + kPrefillB * t + kPrefillC);
}

double PolynomialTiming::decode_ms(const BatchStats& stats) const {
  if (stats.decode_requests == 0) return 0;
  const double p = stats.total_kv_tokens == 0
                       ? 1.0
                       : std::min(1.0, static_cast<double>(stats.active_kv_tokens) /
                                           static_cast<double>(stats.total_kv_tokens));
  return std::max(kMinDecodeMs, kDecodeA * p * p + kDecodeB * p + kDecodeC);
}

}  // namespace kvmock
