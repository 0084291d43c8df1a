#include "core/pipeline/worker_event_stream.h"

#include <gtest/gtest.h>

#include "core/indexer/local_indexer.h"
#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::event_id;
using testing::removed;
using testing::stored;

std::vector<EventId> ids_of(const std::vector<RouterEvent>& events) {
  std::vector<EventId> ids;
  for (const RouterEvent& event : events) ids.push_back(event_id(event));
  return ids;
}

TEST(WorkerEventStream, DroppedEventsConsumeNoIdSoIdsStayGapFree) {
  WorkerEventStream stream(7, 0);
  std::vector<RouterEvent> out;
  auto push = [&](RouterEvent event) {
    for (RouterEvent& e : stream.push(std::move(event), 0)) out.push_back(std::move(e));
  };
  push(stored(7, 0, std::nullopt, {{10, 100}}, 55));
  push(stored(7, 0, std::nullopt, {{10, 100}}, 56));
  push(removed(7, 0, {10}, 57));  // one copy left: dropped
  push(removed(7, 0, {10}, 58));  // last copy: passes
  ASSERT_EQ(ids_of(out), (std::vector<EventId>{1, 2, 3}));
  EXPECT_EQ(out[2].event.data, KvEventData(RemoveData{{10}}));
  EXPECT_EQ(stream.last_event_id(), 3u);
}

TEST(WorkerEventStream, TheAppendingPushAddsAfterWhatTheCallerHoldsWithAndWithoutBatching) {
  for (const uint64_t batching_ms : {uint64_t{0}, uint64_t{5}}) {
    WorkerEventStream stream(7, 0, WorkerEventStreamOptions{batching_ms});
    std::vector<RouterEvent> out;
    stream.push(stored(7, 0, std::nullopt, {{10, 100}}), 0, out);
    stream.push(stored(7, 0, std::nullopt, {{10, 100}}), 0, out);  // second copy: counted
    stream.push(removed(7, 0, {10}), 0, out);                      // a copy is left: dropped
    stream.push(removed(7, 0, {10}), 0, out);                      // last copy: passes
    for (RouterEvent& e : stream.flush()) out.push_back(std::move(e));
    ASSERT_FALSE(out.empty()) << "batching " << batching_ms;
    EXPECT_EQ(ids_of(out).back(), stream.last_event_id());
    for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(event_id(out[i]), i + 1);
    EXPECT_EQ(out.back().event.data, KvEventData(RemoveData{{10}})) << "batching " << batching_ms;
  }
}

TEST(WorkerEventStream, OutputCarriesTheStreamsWorkerAndRank) {
  WorkerEventStream stream(7, 2);
  const auto out = stream.push(removed(0, 0, {1}), 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, 7u);
  EXPECT_EQ(out[0].event.dp_rank, 2u);
}

TEST(WorkerEventStream, BatchedEventsAreNumberedWhenTheyFlush) {
  WorkerEventStream stream(7, 0, WorkerEventStreamOptions{.batching_timeout_ms = 10});
  EXPECT_TRUE(stream.push(stored(7, 0, std::nullopt, {{10, 100}}), 0).empty());
  EXPECT_TRUE(stream.push(stored(7, 0, 10, {{11, 101}}), 2).empty());
  EXPECT_EQ(stream.next_deadline_ms(), std::optional<uint64_t>(10));
  EXPECT_TRUE(stream.poll(9).empty());
  const auto out = stream.poll(10);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], stored(7, 0, std::nullopt, {{10, 100}, {11, 101}}, 1));
}

TEST(WorkerEventStream, DedupSeesTheBatchedRemove) {
  WorkerEventStream stream(7, 0, WorkerEventStreamOptions{.batching_timeout_ms = 10});
  (void)stream.push(stored(7, 0, std::nullopt, {{10, 100}}), 0);
  (void)stream.push(removed(7, 0, {11}), 0);                      // flushes the store (id 1)
  (void)stream.push(stored(7, 0, std::nullopt, {{10, 100}}), 0);  // flushes remove 11 (id 2)
  (void)stream.push(removed(7, 0, {10}), 0);                      // flushes the second store (id 3)
  (void)stream.push(removed(7, 0, {10}), 0);                      // merges: [10, 10]
  const auto out = stream.flush();
  ASSERT_EQ(out.size(), 1u);
  // Two copies, two removes: the first only decrements, the second announces the removal.
  EXPECT_EQ(out[0], removed(7, 0, {10}, 4));
  EXPECT_EQ(stream.counters().dedup.remove_hashes_dropped, 1u);
}

TEST(WorkerEventStream, CountersTrackReceivedMergedDroppedAndEmitted) {
  WorkerEventStream stream(7, 0, WorkerEventStreamOptions{.batching_timeout_ms = 10});
  (void)stream.push(removed(7, 0, {1}), 0);
  (void)stream.push(removed(7, 0, {2}), 0);
  (void)stream.push(stored(7, 0, 3, {{3, 3}}), 0);  // self-parent: dropped at flush
  (void)stream.push(cleared(7, 0), 0);
  const WorkerEventStreamCounters counters = stream.counters();
  EXPECT_EQ(counters.received, 4u);
  EXPECT_EQ(counters.merged, 1u);
  EXPECT_EQ(counters.emitted, 2u);  // removed [1, 2] and cleared
  EXPECT_EQ(counters.dedup.stores_dropped_self_parent, 1u);
}

TEST(WorkerEventStream, OutputAppliedToALocalIndexerHasNoGapsAndTracksTheBlocks) {
  WorkerEventStream stream(7, 0);
  LocalIndexer indexer(7, 0);
  const std::vector<RouterEvent> engine_events{
      stored(7, 0, std::nullopt, {{1, 11}, {2, 12}}),
      stored(7, 0, 2, {{3, 13}}),
      stored(7, 0, 2, {{3, 13}}),  // engine repeats a store
      removed(7, 0, {3}),          // one copy remains: dropped
      removed(7, 0, {3}),
      stored(7, 0, 2, {{2, 12}}),  // self-parent: dropped
      removed(7, 0, {2}),
  };
  for (const RouterEvent& event : engine_events) {
    for (const RouterEvent& out : stream.push(event, 0)) ASSERT_TRUE(indexer.apply(out).ok());
  }
  EXPECT_EQ(indexer.counters().id_gaps, 0u);
  EXPECT_EQ(indexer.first_event_id(), std::optional<EventId>(1));
  EXPECT_EQ(indexer.last_event_id(), std::optional<EventId>(5));
  EXPECT_EQ(indexer.tree().canonical_blocks({7, 0}),
            (std::vector<CanonicalBlock>{{1, 11, std::nullopt}}));
}

}  // namespace
}  // namespace kvmock
