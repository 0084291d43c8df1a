#include "core/faults/pass_pacing.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kvmock {
namespace {

TEST(PassPacing, TheScaleMultipliesEveryPass) {
  PassPacing pacing;
  EXPECT_TRUE(pacing.is_identity());
  EXPECT_EQ(pass_time_factor(pacing, 3, 8, 1, 0), 1.0);
  pacing.latency_scale = 2.5;
  EXPECT_FALSE(pacing.is_identity());
  for (uint64_t pass = 0; pass < 10; ++pass)
    EXPECT_EQ(pass_time_factor(pacing, 3, 8, 1, pass), 2.5);
}

TEST(PassPacing, JitterHasItsStandardDeviationAndRepeatsWithTheSeed) {
  PassPacing pacing;
  pacing.jitter = 0.2;
  double sum = 0, squares = 0;
  const int passes = 20000;
  for (int pass = 0; pass < passes; ++pass) {
    const double factor = pass_time_factor(pacing, 0, 8, 42, pass);
    EXPECT_EQ(factor, pass_time_factor(pacing, 0, 8, 42, pass));
    EXPECT_GE(factor, kMinJitterFactor);
    sum += factor;
    squares += factor * factor;
  }
  const double mean = sum / passes;
  const double deviation = std::sqrt(squares / passes - mean * mean);
  EXPECT_NEAR(mean, 1.0, 0.01);
  EXPECT_NEAR(deviation, 0.2, 0.01);
  int differing = 0;
  for (int pass = 0; pass < 100; ++pass) {
    differing +=
        pass_time_factor(pacing, 0, 8, 42, pass) != pass_time_factor(pacing, 0, 8, 43, pass);
  }
  EXPECT_GT(differing, 95) << "another seed draws other factors";
}

TEST(PassPacing, TheLoadFactorGrowsWithTheRunningShareOfTheBatch) {
  PassPacing pacing;
  pacing.time_factor_under_load = 3;
  EXPECT_EQ(pass_time_factor(pacing, 0, 8, 1, 0), 1.0);
  EXPECT_EQ(pass_time_factor(pacing, 4, 8, 1, 0), 2.0);
  EXPECT_EQ(pass_time_factor(pacing, 8, 8, 1, 0), 3.0);
  EXPECT_EQ(pass_time_factor(pacing, 20, 8, 1, 0), 3.0);  // past the batch limit: capped
  pacing.latency_scale = 0.5;
  EXPECT_EQ(pass_time_factor(pacing, 8, 8, 1, 0), 1.5);
}

}  // namespace
}  // namespace kvmock
