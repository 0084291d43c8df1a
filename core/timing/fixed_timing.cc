#include "core/timing/fixed_timing.h"

namespace kvmock {

double FixedTiming::prefill_ms(const BatchStats& stats) const {
  return stats.prefill_new_tokens() == 0 ? 0 : prefill_;
}

double FixedTiming::decode_ms(const BatchStats& stats) const {
  return stats.decode_requests == 0 ? 0 : decode_;
}

}  // namespace kvmock
