#include "core/pipeline/publishing_channel.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::stored;

std::vector<RouterEvent> one(RouterEvent event) {
  std::vector<RouterEvent> events;
  events.push_back(std::move(event));
  return events;
}

TEST(PublishingChannel, ReleasedEventsAreNumberedAndAlreadyInTheIndexer) {
  PublishingChannel channel(7, 0);
  ReleasedEvents released = channel.push(one(stored(7, 0, std::nullopt, {{10, 100}}, 55)), 0);
  ASSERT_EQ(released.events.size(), 1u);
  EXPECT_EQ(released.events[0].event.event_id, 1u);
  EXPECT_EQ(released.indexer_rejections, 0u);
  EXPECT_EQ(channel.block_count(), 1u);
  EXPECT_EQ(channel.last_event_id(), 1u);
  const auto answer = channel.query({7, 0, 1, std::nullopt});
  ASSERT_TRUE(std::holds_alternative<QueryEvents>(answer));
  EXPECT_EQ(std::get<QueryEvents>(answer).last_event_id, 1u);
}

TEST(PublishingChannel, RejectionsAreCountedWhicheverWayTheEventsLeave) {
  // A Stored whose parent the indexer never saw is refused by its tree: counted on a push,
  // a batching timeout and the shutdown flush alike (the event still went out).
  PublishingChannel unbatched(7, 0);
  EXPECT_EQ(unbatched.push(one(stored(7, 0, 999, {{10, 100}})), 0).indexer_rejections, 1u);

  PublishingChannel polled(7, 0, PublishingChannelOptions{5, 16});
  EXPECT_TRUE(polled.push(one(stored(7, 0, 999, {{10, 100}})), 0).events.empty());
  ASSERT_EQ(polled.next_deadline_ms(), std::optional<uint64_t>(5));
  ReleasedEvents due = polled.poll(5);
  EXPECT_EQ(due.events.size(), 1u);
  EXPECT_EQ(due.indexer_rejections, 1u);

  PublishingChannel flushed(7, 0, PublishingChannelOptions{5, 16});
  EXPECT_TRUE(flushed.push(one(stored(7, 0, 999, {{10, 100}})), 0).events.empty());
  ReleasedEvents rest = flushed.flush();
  EXPECT_EQ(rest.events.size(), 1u);
  EXPECT_EQ(rest.indexer_rejections, 1u);
  EXPECT_EQ(flushed.last_event_id(), 1u);
}

TEST(PublishingChannel, AChannelWithoutEventsAnswersAnEmptyTree) {
  PublishingChannel channel(7, 1);
  EXPECT_EQ(channel.query({7, 1, std::nullopt, std::nullopt}),
            WorkerKvQueryResponse(QueryTreeDump{{}, 0}));
  EXPECT_EQ(channel.query({7, 1, 1, std::nullopt}), WorkerKvQueryResponse(QueryTreeDump{{}, 0}));
}

}  // namespace
}  // namespace kvmock
