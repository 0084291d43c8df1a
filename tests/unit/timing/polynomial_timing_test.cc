#include "core/timing/polynomial_timing.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

BatchStats prefill(uint32_t batch, uint64_t isl_each, uint64_t prefix_each) {
  BatchStats s;
  s.prefill_requests = batch;
  s.prefill_isl_sum = batch * isl_each;
  s.prefill_prefix_sum = batch * prefix_each;
  return s;
}

BatchStats decode(uint64_t active_kv, uint64_t total_kv) {
  BatchStats s;
  s.decode_requests = 1;
  s.decode_context_sum = 100;
  s.active_kv_tokens = active_kv;
  s.total_kv_tokens = total_kv;
  return s;
}

TEST(PolynomialTiming, PrefillUsesTheExactDynamoConstants) {
  PolynomialTiming model;
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill(1, 1000, 0)), 32.1058589);
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill(1, 8192, 0)), 169.1369184042496);
}

TEST(PolynomialTiming, PrefillIsPricedOnTheBatchTotalOfNewTokens) {
  PolynomialTiming model;
  // 4 requests of 300 new tokens each (plus 50 cached) cost the same as 1200 at once.
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill(4, 350, 50)), model.prefill_ms(prefill(1, 1200, 0)));
}

TEST(PolynomialTiming, FullyCachedPromptSkipsPrefill) {
  PolynomialTiming model;
  EXPECT_EQ(model.prefill_ms(prefill(1, 128, 128)), 0.0);
  EXPECT_EQ(model.prefill_ms(BatchStats{}), 0.0);
}

TEST(PolynomialTiming, DecodeGrowsWithKvOccupancyFromEmptyToFull) {
  PolynomialTiming model;
  EXPECT_DOUBLE_EQ(model.decode_ms(decode(0, 1000)), 5.74);
  EXPECT_DOUBLE_EQ(model.decode_ms(decode(500, 1000)), 26.310000000000002);
  EXPECT_DOUBLE_EQ(model.decode_ms(decode(1000, 1000)), 34.01);
  EXPECT_DOUBLE_EQ(model.decode_ms(decode(5000, 1000)), 34.01);  // occupancy capped at 1
}

TEST(PolynomialTiming, DecodeWithoutCapacityCountsAsFull) {
  PolynomialTiming model;
  EXPECT_DOUBLE_EQ(model.decode_ms(decode(0, 0)), 34.01);
}

TEST(PolynomialTiming, EmptyDecodeBatchCostsNothing) {
  PolynomialTiming model;
  BatchStats s = decode(500, 1000);
  s.decode_requests = 0;
  EXPECT_EQ(model.decode_ms(s), 0.0);
}

}  // namespace
}  // namespace kvmock
