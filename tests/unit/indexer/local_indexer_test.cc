#include "core/indexer/local_indexer.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::removed;
using testing::stored;

constexpr WorkerId kWorker = 7;
constexpr DpRank kRank = 1;
constexpr WorkerRank kOwner{kWorker, kRank};

WorkerKvQueryRequest request(std::optional<EventId> start, std::optional<EventId> end) {
  return WorkerKvQueryRequest{kWorker, kRank, start, end};
}

// A worker that stored a chain one block per event: event i stores block 100+i (tokens i)
// under block 100+i-1.
void publish_chain(LocalIndexer& indexer, EventId first, EventId last) {
  for (EventId id = first; id <= last; ++id) {
    std::optional<BlockHash> parent;
    if (id > 1) parent = 100 + id - 1;
    auto result = indexer.apply(stored(kWorker, kRank, parent, {{100 + id, id}}, id));
    ASSERT_TRUE(result.ok()) << result.error().message;
  }
}

std::vector<EventId> ids_of(const std::vector<RouterEvent>& events) {
  std::vector<EventId> ids;
  for (const RouterEvent& event : events) ids.push_back(event.event.event_id);
  return ids;
}

TEST(LocalIndexer, EndBeforeStartIsInvalidRange) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 5);
  EXPECT_EQ(indexer.query(request(4, 2)), WorkerKvQueryResponse(QueryInvalidRange{4, 2}));
}

TEST(LocalIndexer, MissingStartGivesATreeDumpWithTheLastId) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 3);
  const auto response = indexer.query(request(std::nullopt, std::nullopt));
  ASSERT_TRUE(std::holds_alternative<QueryTreeDump>(response));
  const auto& dump = std::get<QueryTreeDump>(response);
  EXPECT_EQ(dump.last_event_id, 3u);
  EXPECT_EQ(dump.events, indexer.tree().dump_events(kWorker, kRank));
  ASSERT_EQ(dump.events.size(), 1u);  // one run 101-102-103
  EXPECT_EQ(std::get<StoreData>(dump.events[0].event.data).blocks.size(), 3u);
}

TEST(LocalIndexer, MissingStartOnAFreshIndexerGivesAnEmptyDumpWithIdZero) {
  LocalIndexer indexer(kWorker, kRank);
  EXPECT_EQ(indexer.query(request(std::nullopt, 9)), WorkerKvQueryResponse(QueryTreeDump{{}, 0}));
}

TEST(LocalIndexer, EmptyBufferGivesATreeDumpWithIdZero) {
  LocalIndexer indexer(kWorker, kRank);
  EXPECT_EQ(indexer.query(request(1, std::nullopt)), WorkerKvQueryResponse(QueryTreeDump{{}, 0}));
  EXPECT_EQ(indexer.query(request(5, 8)), WorkerKvQueryResponse(QueryTreeDump{{}, 0}));
}

TEST(LocalIndexer, StartPastTheLastIdIsTooNewWithEndDefaultingToLast) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 5);
  EXPECT_EQ(indexer.query(request(6, std::nullopt)), WorkerKvQueryResponse(QueryTooNew{6, 5, 5}));
  EXPECT_EQ(indexer.query(request(8, 12)), WorkerKvQueryResponse(QueryTooNew{8, 12, 5}));
}

TEST(LocalIndexer, StartBeforeTheOldestBufferedIdGivesATreeDumpWithTheLastId) {
  LocalIndexer indexer(kWorker, kRank, /*buffer_size=*/4);
  publish_chain(indexer, 1, 10);
  ASSERT_EQ(indexer.first_event_id(), std::optional<EventId>(7));
  const auto response = indexer.query(request(6, 8));
  ASSERT_TRUE(std::holds_alternative<QueryTreeDump>(response));
  EXPECT_EQ(std::get<QueryTreeDump>(response).last_event_id, 10u);
  EXPECT_EQ(std::get<QueryTreeDump>(response).events, indexer.tree().dump_events(kWorker, kRank));
}

TEST(LocalIndexer, RangeInsideTheBufferGivesThoseEventsAndTheLastId) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 10);
  const auto response = indexer.query(request(3, 5));
  ASSERT_TRUE(std::holds_alternative<QueryEvents>(response));
  const auto& events = std::get<QueryEvents>(response);
  EXPECT_EQ(events.last_event_id, 10u);
  EXPECT_EQ(ids_of(events.events), (std::vector<EventId>{3, 4, 5}));
  EXPECT_EQ(events.events[0], stored(kWorker, kRank, 102, {{103, 3}}, 3));
}

TEST(LocalIndexer, OpenOrLateEndStopsAtTheLastId) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 6);
  const auto open = std::get<QueryEvents>(indexer.query(request(5, std::nullopt)));
  EXPECT_EQ(ids_of(open.events), (std::vector<EventId>{5, 6}));
  const auto late = std::get<QueryEvents>(indexer.query(request(6, 100)));
  EXPECT_EQ(ids_of(late.events), (std::vector<EventId>{6}));
  EXPECT_EQ(late.last_event_id, 6u);
  // start == first is still served from the buffer.
  const auto all = std::get<QueryEvents>(indexer.query(request(1, std::nullopt)));
  EXPECT_EQ(all.events.size(), 6u);
}

TEST(LocalIndexer, BufferEvictsTheOldestBeyondCapacity) {
  LocalIndexer indexer(kWorker, kRank, /*buffer_size=*/3);
  publish_chain(indexer, 1, 5);
  EXPECT_EQ(indexer.buffered(), 3u);
  EXPECT_EQ(indexer.first_event_id(), std::optional<EventId>(3));
  EXPECT_EQ(indexer.last_event_id(), std::optional<EventId>(5));
  EXPECT_EQ(indexer.block_count(), 5u);  // eviction forgets events, not blocks
}

TEST(LocalIndexer, DefaultCapacityIs1024Events) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 1100);
  EXPECT_EQ(indexer.buffered(), 1024u);
  EXPECT_EQ(indexer.first_event_id(), std::optional<EventId>(77));
}

TEST(LocalIndexer, NonConsecutiveIdIsCountedNotRefused) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 2);
  ASSERT_TRUE(indexer.apply(stored(kWorker, kRank, 102, {{103, 3}}, 5)).ok());
  EXPECT_EQ(indexer.counters().id_gaps, 1u);
  EXPECT_EQ(indexer.last_event_id(), std::optional<EventId>(5));
  EXPECT_EQ(indexer.block_count(), 3u);
  const auto events = std::get<QueryEvents>(indexer.query(request(2, std::nullopt)));
  EXPECT_EQ(ids_of(events.events), (std::vector<EventId>{2, 5}));
}

TEST(LocalIndexer, EventTheTreeRejectsIsStillBuffered) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 1);
  auto result = indexer.apply(stored(kWorker, kRank, 999, {{500, 5}}, 2));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "parent_not_found");
  EXPECT_EQ(indexer.counters().tree_rejected, 1u);
  EXPECT_EQ(indexer.last_event_id(), std::optional<EventId>(2));
  EXPECT_EQ(indexer.block_count(), 1u);
}

TEST(LocalIndexer, OtherTiersAreBufferedButKeptOutOfTheTree) {
  LocalIndexer indexer(kWorker, kRank);
  RouterEvent host = stored(kWorker, kRank, std::nullopt, {{1, 1}}, 1);
  host.storage_tier = StorageTier::kHostPinned;
  ASSERT_TRUE(indexer.apply(host).ok());
  EXPECT_EQ(indexer.block_count(), 0u);
  EXPECT_EQ(indexer.counters().non_device, 1u);
  EXPECT_EQ(std::get<QueryEvents>(indexer.query(request(1, 1))).events,
            std::vector<RouterEvent>{host});
}

TEST(LocalIndexer, EventForAnotherOwnerIsIgnored) {
  LocalIndexer indexer(kWorker, kRank);
  auto result = indexer.apply(stored(kWorker, 0, std::nullopt, {{1, 1}}, 1));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "foreign_owner");
  EXPECT_EQ(indexer.buffered(), 0u);
  EXPECT_EQ(indexer.block_count(), 0u);
}

TEST(LocalIndexer, BlockCountFollowsStoresRemovesAndClears) {
  LocalIndexer indexer(kWorker, kRank);
  publish_chain(indexer, 1, 4);
  EXPECT_EQ(indexer.block_count(), 4u);
  ASSERT_TRUE(indexer.apply(removed(kWorker, kRank, {104}, 5)).ok());
  EXPECT_EQ(indexer.block_count(), 3u);
  ASSERT_TRUE(indexer.apply(cleared(kWorker, kRank, 6)).ok());
  EXPECT_EQ(indexer.block_count(), 0u);
}

// The router side of §4.6, reduced to what matters for convergence: a cursor, a tree, and
// the two ways to catch up.
struct FakeRouter {
  RadixTree tree;
  EventId cursor = 0;

  void apply_response(const WorkerKvQueryResponse& response) {
    if (const auto* events = std::get_if<QueryEvents>(&response)) {
      for (const RouterEvent& event : events->events) {
        if (event.event.event_id == cursor + 1) {
          (void)tree.apply(event);
          cursor = event.event.event_id;
        }
      }
      cursor = events->last_event_id;
    } else if (const auto* dump = std::get_if<QueryTreeDump>(&response)) {
      tree.clear(kOwner);
      for (const RouterEvent& event : dump->events) ASSERT_TRUE(tree.apply(event).ok());
      cursor = dump->last_event_id;
    } else {
      FAIL() << "unexpected response kind " << response.index();
    }
  }
};

// A workload with branches, removals (and their pruning) so the trees are not trivial.
std::vector<RouterEvent> busy_workload() {
  std::vector<RouterEvent> events;
  EventId id = 0;
  events.push_back(stored(kWorker, kRank, std::nullopt, {{1, 11}, {2, 12}, {3, 13}}, ++id));
  for (uint64_t i = 0; i < 40; ++i) {
    events.push_back(stored(kWorker, kRank, 1 + i % 3, {{100 + i, 200 + i}}, ++id));
    if (i % 7 == 6) events.push_back(removed(kWorker, kRank, {100 + i - 3, 999}, ++id));
  }
  events.push_back(removed(kWorker, kRank, {2}, ++id));
  events.push_back(stored(kWorker, kRank, 1, {{2, 12}, {50, 60}}, ++id));
  return events;
}

TEST(LocalIndexer, RouterThatMissedEventsCatchesUpWithAnIncrementalQuery) {
  LocalIndexer worker(kWorker, kRank);
  FakeRouter router;
  const std::vector<RouterEvent> events = busy_workload();
  for (const RouterEvent& event : events) {
    ASSERT_TRUE(worker.apply(event).ok());
    const EventId id = event.event.event_id;
    if (id >= 10 && id <= 20) continue;  // lost on the way
    if (id == router.cursor + 1) {
      ASSERT_TRUE(router.tree.apply(event).ok());
      router.cursor = id;
    } else {
      // A gap: ask for everything after the cursor.
      const auto response = worker.query(request(router.cursor + 1, std::nullopt));
      ASSERT_TRUE(std::holds_alternative<QueryEvents>(response));
      router.apply_response(response);
    }
  }
  EXPECT_EQ(router.cursor, worker.last_event_id());
  EXPECT_GT(worker.block_count(), 10u);
  EXPECT_TRUE(router.tree.same_content(worker.tree(), kOwner));
}

TEST(LocalIndexer, RouterBehindTheBufferCatchesUpWithATreeDump) {
  LocalIndexer worker(kWorker, kRank, /*buffer_size=*/8);
  FakeRouter router;
  const std::vector<RouterEvent> events = busy_workload();
  // The router saw only the first 5 events, then a stale block it must forget.
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(router.tree.apply(events[i]).ok());
  router.cursor = 5;
  ASSERT_TRUE(router.tree.apply(stored(kWorker, kRank, std::nullopt, {{777, 7}})).ok());
  for (const RouterEvent& event : events) ASSERT_TRUE(worker.apply(event).ok());

  const auto response = worker.query(request(router.cursor + 1, std::nullopt));
  ASSERT_TRUE(std::holds_alternative<QueryTreeDump>(response));
  router.apply_response(response);
  EXPECT_EQ(router.cursor, worker.last_event_id());
  EXPECT_TRUE(router.tree.same_content(worker.tree(), kOwner));

  // Live events after the dump apply on top.
  const RouterEvent next = stored(kWorker, kRank, 50, {{51, 61}}, router.cursor + 1);
  ASSERT_TRUE(worker.apply(next).ok());
  ASSERT_TRUE(router.tree.apply(next).ok());
  EXPECT_TRUE(router.tree.same_content(worker.tree(), kOwner));
}

}  // namespace
}  // namespace kvmock
