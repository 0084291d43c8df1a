#include "core/workload/arrival_process.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kvmock {
namespace {

// Mean and coefficient of variation of `n` gaps.
std::pair<double, double> gap_stats(ArrivalProcess& process, int n) {
  std::vector<double> gaps;
  double last = process.next_ms();
  for (int i = 0; i < n; ++i) {
    const double t = process.next_ms();
    gaps.push_back(t - last);
    last = t;
  }
  double mean = 0;
  for (double g : gaps) mean += g;
  mean /= n;
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  var /= n;
  return {mean, std::sqrt(var) / mean};
}

TEST(ArrivalProcess, ParsesEveryCommandLineForm) {
  auto burst = parse_arrival_spec("burst");
  ASSERT_TRUE(burst.ok());
  EXPECT_EQ(burst->kind, ArrivalKind::kBurst);
  auto constant = parse_arrival_spec("constant:12.5");
  ASSERT_TRUE(constant.ok());
  EXPECT_EQ(constant->kind, ArrivalKind::kConstant);
  EXPECT_DOUBLE_EQ(constant->rate, 12.5);
  auto gamma = parse_arrival_spec("gamma:10:0.5");
  ASSERT_TRUE(gamma.ok());
  EXPECT_EQ(gamma->kind, ArrivalKind::kGamma);
  EXPECT_DOUBLE_EQ(gamma->cv, 0.5);
  auto closed = parse_arrival_spec("closed:8");
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->concurrency, 8u);
}

TEST(ArrivalProcess, RejectsMalformedAndOutOfRangeSpecs) {
  for (const char* text : {"", "bursty", "burst:3", "poisson", "poisson:", "poisson:x",
                           "poisson:-1", "poisson:0", "constant:inf", "gamma:10", "gamma:10:0",
                           "gamma:10:x", "closed:0", "closed:-2", "closed:3.5", "closed:"}) {
    auto parsed = parse_arrival_spec(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().reason, "bad_arrival") << text;
  }
}

TEST(ArrivalProcess, BurstPutsEveryArrivalAtZero) {
  ArrivalProcess process(ArrivalSpec{}, 1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(process.next_ms(), 0);
}

TEST(ArrivalProcess, ConstantRateSpacesArrivalsEvenlyAndSpeedupDividesGaps) {
  ArrivalSpec spec{ArrivalKind::kConstant, 4, 1, 0};
  ArrivalProcess process(spec, 1, 2.0);
  EXPECT_DOUBLE_EQ(process.next_ms(), 0);
  EXPECT_DOUBLE_EQ(process.next_ms(), 125);
  EXPECT_DOUBLE_EQ(process.next_ms(), 250);
}

TEST(ArrivalProcess, PoissonGapsHaveMeanOneOverRateAndCvOne) {
  ArrivalProcess process(ArrivalSpec{ArrivalKind::kPoisson, 20, 1, 0}, 42);
  const auto [mean, cv] = gap_stats(process, 200000);
  EXPECT_NEAR(mean, 50.0, 0.5);
  EXPECT_NEAR(cv, 1.0, 0.02);
}

TEST(ArrivalProcess, GammaGapsHaveTheRequestedMeanAndCv) {
  for (double target_cv : {0.5, 1.0, 2.0}) {
    ArrivalProcess process(ArrivalSpec{ArrivalKind::kGamma, 10, target_cv, 0}, 7);
    const auto [mean, cv] = gap_stats(process, 200000);
    EXPECT_NEAR(mean, 100.0, 100.0 * 0.02) << target_cv;
    EXPECT_NEAR(cv, target_cv, target_cv * 0.03) << target_cv;
  }
}

TEST(ArrivalProcess, SameSeedSameArrivalsOtherSeedOthers) {
  ArrivalSpec spec{ArrivalKind::kPoisson, 5, 1, 0};
  ArrivalProcess a(spec, 9), b(spec, 9), c(spec, 10);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = a.next_ms();
    EXPECT_EQ(x, b.next_ms());
    if (x != c.next_ms()) differs = true;
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace kvmock
