#include "core/kv/bandwidth_link.h"

#include <gtest/gtest.h>

#include <limits>

namespace kvmock {
namespace {

constexpr uint64_t kMegabyte = 1'000'000;

TEST(BandwidthLink, OneMegabyteAtOneGigabytePerSecondEndsAtOneMillisecond) {
  BandwidthLink link(1.0);
  const TransferId id = link.start(0, kMegabyte);
  ASSERT_TRUE(link.next_deadline_ms().has_value());
  EXPECT_NEAR(*link.next_deadline_ms(), 1.0, 1e-9);
  EXPECT_TRUE(link.advance_to(0.999).empty());
  const auto done = link.advance_to(1.0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, id);
  EXPECT_NEAR(done[0].finish_ms, 1.0, 1e-9);
  EXPECT_EQ(link.in_flight(), 0u);
  EXPECT_FALSE(link.next_deadline_ms().has_value());
}

TEST(BandwidthLink, TwoSimultaneousTransfersShareTheRateAndEndTogether) {
  BandwidthLink link(1.0);
  link.start(0, kMegabyte);
  link.start(0, kMegabyte);
  EXPECT_NEAR(*link.next_deadline_ms(), 2.0, 1e-9);
  EXPECT_TRUE(link.advance_to(1.5).empty());
  const auto done = link.advance_to(10);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_NEAR(done[0].finish_ms, 2.0, 1e-9);
  EXPECT_NEAR(done[1].finish_ms, 2.0, 1e-9);
  EXPECT_LT(done[0].id, done[1].id);  // ties come out in start order
}

TEST(BandwidthLink, SecondArrivalAtHalfAMillisecondEndsThemAtOneAndAHalfAndTwo) {
  BandwidthLink link(1.0);
  const TransferId first = link.start(0, kMegabyte);
  const TransferId second = link.start(0.5, kMegabyte);
  EXPECT_NEAR(*link.next_deadline_ms(), 1.5, 1e-9);
  const auto done = link.advance_to(5);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].id, first);
  EXPECT_NEAR(done[0].finish_ms, 1.5, 1e-9);
  EXPECT_EQ(done[1].id, second);
  EXPECT_NEAR(done[1].finish_ms, 2.0, 1e-9);
}

TEST(BandwidthLink, TenSimultaneousTransfersEndAtTenMilliseconds) {
  BandwidthLink link(1.0);
  for (int i = 0; i < 10; ++i) link.start(0, kMegabyte);
  EXPECT_NEAR(*link.next_deadline_ms(), 10.0, 1e-9);
  EXPECT_TRUE(link.advance_to(9.99).empty());
  const auto done = link.advance_to(10.0);
  ASSERT_EQ(done.size(), 10u);
  for (const auto& c : done) EXPECT_NEAR(c.finish_ms, 10.0, 1e-9);
}

TEST(BandwidthLink, ShorterTransferFinishesFirstAndTheRestSpeedsUp) {
  BandwidthLink link(1.0);
  const TransferId big = link.start(0, 3 * kMegabyte);
  const TransferId small = link.start(0, kMegabyte);
  const auto done = link.advance_to(100);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].id, small);
  EXPECT_NEAR(done[0].finish_ms, 2.0, 1e-9);  // 1 MB at half rate
  EXPECT_EQ(done[1].id, big);
  EXPECT_NEAR(done[1].finish_ms, 4.0, 1e-9);  // 2 MB left at full rate
}

TEST(BandwidthLink, NonPositiveBandwidthIsInstantaneous) {
  for (double gbps : {0.0, -3.0, std::numeric_limits<double>::quiet_NaN()}) {
    BandwidthLink link(gbps);
    EXPECT_TRUE(link.infinite());
    link.advance_to(7);
    const TransferId id = link.start(7, 50 * kMegabyte);
    EXPECT_EQ(*link.next_deadline_ms(), 7.0);
    const auto done = link.advance_to(7);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].id, id);
    EXPECT_EQ(done[0].finish_ms, 7.0);
  }
}

TEST(BandwidthLink, TimeNeverRunsBackwards) {
  BandwidthLink link(1.0);
  link.advance_to(5);
  // A start in the past begins at the link's time.
  link.start(1, kMegabyte);
  EXPECT_NEAR(*link.next_deadline_ms(), 6.0, 1e-9);
  EXPECT_TRUE(link.advance_to(2).empty());  // rewinding is ignored
  EXPECT_EQ(link.now_ms(), 5.0);
  const auto done = link.advance_to(6);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NEAR(done[0].finish_ms, 6.0, 1e-9);
}

TEST(BandwidthLink, CompletionDuringAStartIsReportedByTheNextAdvance) {
  BandwidthLink link(1.0);
  const TransferId first = link.start(0, kMegabyte);
  link.start(3, kMegabyte);  // the first one ended at 1 ms, alone on the link
  const auto done = link.advance_to(3);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, first);
  EXPECT_NEAR(done[0].finish_ms, 1.0, 1e-9);
  EXPECT_NEAR(*link.next_deadline_ms(), 4.0, 1e-9);
}

TEST(BandwidthLink, ZeroByteTransferEndsWhenItStarts) {
  BandwidthLink link(1.0);
  link.start(0, kMegabyte);
  link.start(0.25, 0);
  const auto done = link.advance_to(0.25);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].finish_ms, 0.25);
  EXPECT_NEAR(*link.next_deadline_ms(), 1.0, 1e-9);  // the other kept the whole rate
}

}  // namespace
}  // namespace kvmock
