#include "core/timing/timing_model.h"

#include <gtest/gtest.h>

#include "core/timing/fixed_timing.h"

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

TEST(TimingModel, SpeedupRatioDividesBothParts) {
  FixedTiming model(12, 6);
  const PassTiming t = modeled_pass(model, both(), 3);
  EXPECT_DOUBLE_EQ(t.prefill_ms, 4);
  EXPECT_DOUBLE_EQ(t.decode_ms, 2);
  EXPECT_DOUBLE_EQ(t.total_ms(), 6);
}

TEST(TimingModel, ZeroSpeedupMeansPassesTakeNoTime) {
  FixedTiming model(12, 6);
  EXPECT_EQ(modeled_pass(model, both(), 0).total_ms(), 0.0);
}

TEST(TimingModel, DecodeIsFlooredAtOneMillisecondBeforeSpeedup) {
  FixedTiming model(0, 0.25);
  EXPECT_DOUBLE_EQ(modeled_pass(model, both(), 1).decode_ms, 1.0);
  EXPECT_DOUBLE_EQ(modeled_pass(model, both(), 4).decode_ms, 0.25);
}

TEST(TimingModel, PassWithoutDecodeHasNoDecodeFloor) {
  FixedTiming model(10, 0);
  BatchStats s = both();
  s.decode_requests = 0;
  EXPECT_EQ(modeled_pass(model, s, 1).decode_ms, 0.0);
}

TEST(TimingModel, FactoryBuildsTheSelectedModel) {
  TimingArgs args;
  args.model = TimingModelKind::kFixed;
  args.fixed_prefill_ms = 7;
  auto fixed = make_timing_model(args);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ((*fixed)->prefill_ms(both()), 7.0);

  args.model = TimingModelKind::kPolynomial;
  auto poly = make_timing_model(args);
  ASSERT_TRUE(poly.ok());
  EXPECT_GT((*poly)->prefill_ms(both()), 16.0);
}

TEST(TimingModel, FactoryRejectsNegativeFixedDurationsAndBadProfiles) {
  TimingArgs args;
  args.model = TimingModelKind::kFixed;
  args.fixed_decode_ms = -1;
  auto fixed = make_timing_model(args);
  ASSERT_FALSE(fixed.ok());
  EXPECT_EQ(fixed.error().reason, "bad_fixed_timing");

  args.model = TimingModelKind::kProfile;
  auto profile = make_timing_model(args, "not json");
  ASSERT_FALSE(profile.ok());
  EXPECT_EQ(profile.error().reason, "bad_profile");
}

TEST(TimingModel, PrefillNewTokensUseDynamoIntegerMeans) {
  BatchStats s;
  s.prefill_requests = 2;
  s.prefill_isl_sum = 101;    // mean 50
  s.prefill_prefix_sum = 21;  // mean 10
  EXPECT_EQ(s.prefill_new_tokens(), 80u);
}

}  // namespace
}  // namespace kvmock
