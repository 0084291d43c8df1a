#include "core/timing/fixed_timing.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

BatchStats both() {
  BatchStats s;
  s.prefill_requests = 1;
  s.prefill_isl_sum = 100;
  s.decode_requests = 1;
  s.decode_context_sum = 100;
  return s;
}

TEST(FixedTiming, ReturnsZeroForEmptyBatches) {
  FixedTiming model(12, 6);
  EXPECT_EQ(model.prefill_ms(BatchStats{}), 0.0);
  EXPECT_EQ(model.decode_ms(BatchStats{}), 0.0);
  EXPECT_EQ(model.prefill_ms(both()), 12.0);
}

TEST(FixedTiming, FullyCachedPrefillCostsNothing) {
  FixedTiming model(12, 6);
  BatchStats s;
  s.prefill_requests = 1;
  s.prefill_isl_sum = 64;
  s.prefill_prefix_sum = 64;
  EXPECT_EQ(model.prefill_ms(s), 0.0);
}

}  // namespace
}  // namespace kvmock
