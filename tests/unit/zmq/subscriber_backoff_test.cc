#include <gtest/gtest.h>

#include "transport/zmq/relayed_engine_subscriber.h"

namespace kvmock {
namespace {

TEST(SubscriberBackoffTest, StartsAtTenMillisecondsAndDoubles) {
  EXPECT_EQ(subscriber_backoff_ms(1), 10);
  EXPECT_EQ(subscriber_backoff_ms(2), 20);
  EXPECT_EQ(subscriber_backoff_ms(3), 40);
  EXPECT_EQ(subscriber_backoff_ms(9), 2560);
}

TEST(SubscriberBackoffTest, ExponentStopsGrowingAfterEightDoublings) {
  EXPECT_EQ(subscriber_backoff_ms(10), 2560);
  EXPECT_EQ(subscriber_backoff_ms(1000), 2560);
  EXPECT_EQ(subscriber_backoff_ms(~0u), 2560);
  EXPECT_LE(subscriber_backoff_ms(~0u), 5000);
}

TEST(SubscriberBackoffTest, ZeroErrorsWaitsLikeTheFirst) {
  EXPECT_EQ(subscriber_backoff_ms(0), 10);
}

TEST(SubscriberBackoffTest, DropReasonsHaveStableMetricNames) {
  EXPECT_EQ(subscriber_drop_reason(SubscriberDrop::kFrameCount), "frame_count");
  EXPECT_EQ(subscriber_drop_reason(SubscriberDrop::kSeqSize), "seq_size");
  EXPECT_EQ(subscriber_drop_reason(SubscriberDrop::kDuplicate), "duplicate");
}

}  // namespace
}  // namespace kvmock
