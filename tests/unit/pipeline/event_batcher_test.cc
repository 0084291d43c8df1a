#include "core/pipeline/event_batcher.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::removed;
using testing::stored;

// A Stored event of `count` blocks with hashes first, first+1, ... under `parent`.
RouterEvent chain(std::optional<BlockHash> parent, BlockHash first, size_t count) {
  StoreData data;
  data.parent_hash = parent;
  for (size_t i = 0; i < count; ++i) data.blocks.push_back({first + i, first + i, std::nullopt});
  return testing::make_event(1, 0, data);
}

size_t blocks_of(const RouterEvent& event) {
  if (const auto* store = std::get_if<StoreData>(&event.event.data)) return store->blocks.size();
  return std::get<RemoveData>(event.event.data).block_hashes.size();
}

TEST(EventBatcher, DisabledBatcherPassesEveryEventStraightThrough) {
  EventBatcher batcher;
  EXPECT_FALSE(batcher.enabled());
  const RouterEvent a = removed(1, 0, {1});
  const RouterEvent b = removed(1, 0, {2});
  EXPECT_EQ(batcher.push(a, 0), std::vector<RouterEvent>{a});
  EXPECT_EQ(batcher.push(b, 0), std::vector<RouterEvent>{b});
  EXPECT_FALSE(batcher.next_deadline_ms().has_value());
  EXPECT_TRUE(batcher.flush().empty());
}

TEST(EventBatcher, AdjacentRemovedEventsConcatenate) {
  EventBatcher batcher(10);
  EXPECT_TRUE(batcher.push(removed(1, 0, {1, 2}), 0).empty());
  EXPECT_TRUE(batcher.push(removed(1, 0, {3}), 1).empty());
  EXPECT_EQ(batcher.flush(), std::vector<RouterEvent>{removed(1, 0, {1, 2, 3})});
  EXPECT_EQ(batcher.merged(), 1u);
}

TEST(EventBatcher, StoreWhoseParentIsThePendingChainsLastBlockIsAppended) {
  EventBatcher batcher(10);
  EXPECT_TRUE(batcher.push(stored(1, 0, 5, {{10, 100}, {11, 101}}), 0).empty());
  EXPECT_TRUE(batcher.push(stored(1, 0, 11, {{12, 102}}), 0).empty());
  EXPECT_EQ(batcher.flush(),
            std::vector<RouterEvent>{stored(1, 0, 5, {{10, 100}, {11, 101}, {12, 102}})});
}

TEST(EventBatcher, StoreThatBreaksTheChainFlushesThePendingOne) {
  EventBatcher batcher(10);
  const RouterEvent first = stored(1, 0, std::nullopt, {{10, 100}, {11, 101}});
  const RouterEvent sibling = stored(1, 0, 10, {{12, 102}});  // parent is not the last block
  EXPECT_TRUE(batcher.push(first, 0).empty());
  EXPECT_EQ(batcher.push(sibling, 0), std::vector<RouterEvent>{first});
  EXPECT_EQ(batcher.flush(), std::vector<RouterEvent>{sibling});
}

TEST(EventBatcher, KindChangeFlushes) {
  EventBatcher batcher(10);
  const RouterEvent store = stored(1, 0, std::nullopt, {{10, 100}});
  const RouterEvent remove = removed(1, 0, {10});
  EXPECT_TRUE(batcher.push(store, 0).empty());
  EXPECT_EQ(batcher.push(remove, 0), std::vector<RouterEvent>{store});
  EXPECT_EQ(batcher.push(store, 0), std::vector<RouterEvent>{remove});
}

TEST(EventBatcher, DpRankOrTierChangeFlushes) {
  EventBatcher batcher(10);
  const RouterEvent rank0 = removed(1, 0, {1});
  const RouterEvent rank1 = removed(1, 1, {2});
  RouterEvent host = removed(1, 1, {3});
  host.storage_tier = StorageTier::kHostPinned;
  EXPECT_TRUE(batcher.push(rank0, 0).empty());
  EXPECT_EQ(batcher.push(rank1, 0), std::vector<RouterEvent>{rank0});
  EXPECT_EQ(batcher.push(host, 0), std::vector<RouterEvent>{rank1});
  EXPECT_EQ(batcher.flush(), std::vector<RouterEvent>{host});
}

TEST(EventBatcher, ClearedFlushesThePendingEventAndPassesAtOnce) {
  EventBatcher batcher(10);
  const RouterEvent remove = removed(1, 0, {1});
  EXPECT_TRUE(batcher.push(remove, 0).empty());
  EXPECT_EQ(batcher.push(cleared(1, 0), 0), (std::vector<RouterEvent>{remove, cleared(1, 0)}));
  EXPECT_FALSE(batcher.next_deadline_ms().has_value());
}

TEST(EventBatcher, BatchNeverGrowsPast128Blocks) {
  EventBatcher batcher(10);
  EXPECT_TRUE(batcher.push(chain(std::nullopt, 1000, 100), 0).empty());
  // 100 + 40 > 128: the pending 100 go out, the 40 start a new batch.
  const auto out = batcher.push(chain(1099, 1100, 40), 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(blocks_of(out[0]), 100u);
  EXPECT_EQ(batcher.pending_blocks(), 40u);
}

TEST(EventBatcher, BatchReaching128BlocksIsFlushedAtOnce) {
  EventBatcher batcher(10);
  EXPECT_TRUE(batcher.push(chain(std::nullopt, 1000, 100), 0).empty());
  const auto out = batcher.push(chain(1099, 1100, 28), 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(blocks_of(out[0]), 128u);
  EXPECT_EQ(batcher.pending_blocks(), 0u);
}

TEST(EventBatcher, EventLargerThanTheCapPassesAlone) {
  EventBatcher batcher(10);
  const RouterEvent big = chain(std::nullopt, 1000, 300);
  EXPECT_EQ(batcher.push(big, 0), std::vector<RouterEvent>{big});
  EXPECT_EQ(batcher.pending_blocks(), 0u);
}

TEST(EventBatcher, PendingEventIsFlushedWhenItsTimeoutPasses) {
  EventBatcher batcher(5);
  EXPECT_TRUE(batcher.push(removed(1, 0, {1}), 100).empty());
  EXPECT_TRUE(batcher.push(removed(1, 0, {2}), 103).empty());
  EXPECT_EQ(batcher.next_deadline_ms(), std::optional<uint64_t>(105));
  EXPECT_TRUE(batcher.poll(104).empty());
  EXPECT_EQ(batcher.poll(105), std::vector<RouterEvent>{removed(1, 0, {1, 2})});
  EXPECT_FALSE(batcher.next_deadline_ms().has_value());
}

TEST(EventBatcher, PushAfterTheTimeoutFlushesBeforeMerging) {
  EventBatcher batcher(5);
  EXPECT_TRUE(batcher.push(removed(1, 0, {1}), 100).empty());
  EXPECT_EQ(batcher.push(removed(1, 0, {2}), 106), std::vector<RouterEvent>{removed(1, 0, {1})});
  EXPECT_EQ(batcher.next_deadline_ms(), std::optional<uint64_t>(111));
}

TEST(EventBatcher, TimeoutIsCappedAt15Seconds) {
  EventBatcher batcher(60000);
  EXPECT_EQ(batcher.timeout_ms(), 15000u);
  EXPECT_TRUE(batcher.push(removed(1, 0, {1}), 0).empty());
  EXPECT_EQ(batcher.poll(15000).size(), 1u);
}

}  // namespace
}  // namespace kvmock
