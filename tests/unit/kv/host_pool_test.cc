#include "core/kv/host_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvmock {
namespace {

std::vector<BlockHash> removed_hashes(HostPool& pool) {
  std::vector<BlockHash> out;
  for (auto& e : pool.take_events()) {
    if (auto* r = std::get_if<RemoveData>(&e)) {
      out.insert(out.end(), r->block_hashes.begin(), r->block_hashes.end());
    }
  }
  return out;
}

TEST(HostPool, InsertLogsStoredWithTheGivenParent) {
  HostPool pool(4);
  EXPECT_EQ(pool.insert(2, 102, BlockHash{1}), HostPool::Insert::kStored);
  const auto events = pool.take_events();
  ASSERT_EQ(events.size(), 1u);
  const auto& s = std::get<StoreData>(events[0]);
  EXPECT_EQ(s.parent_hash, BlockHash{1});
  ASSERT_EQ(s.blocks.size(), 1u);
  EXPECT_EQ(s.blocks[0].block_hash, 2u);
  EXPECT_EQ(s.blocks[0].tokens_hash, 102u);
  EXPECT_TRUE(pool.contains(2));
  EXPECT_EQ(pool.size(), 1u);
}

TEST(HostPool, DuplicateInsertIsRejectedAndLogsNothing) {
  HostPool pool(4);
  ASSERT_EQ(pool.insert(7, 0, std::nullopt), HostPool::Insert::kStored);
  pool.take_events();
  EXPECT_EQ(pool.insert(7, 0, std::nullopt), HostPool::Insert::kDuplicate);
  EXPECT_TRUE(pool.take_events().empty());
  EXPECT_EQ(pool.size(), 1u);
}

TEST(HostPool, FullPoolEvictsTheLeastRecentlyUsedAndLogsRemoved) {
  HostPool pool(3);
  for (BlockHash h : {1, 2, 3}) pool.insert(h, 0, std::nullopt);
  pool.take_events();
  pool.insert(1, 0, std::nullopt);  // duplicate refreshes 1: order is now 2, 3, 1
  pool.insert(4, 0, std::nullopt);
  EXPECT_EQ(removed_hashes(pool), std::vector<BlockHash>{2});
  pool.insert(5, 0, std::nullopt);
  EXPECT_EQ(removed_hashes(pool), std::vector<BlockHash>{3});
  EXPECT_TRUE(pool.contains(1));
  EXPECT_EQ(pool.size(), 3u);
}

TEST(HostPool, PinnedEntriesAreNeverEvicted) {
  HostPool pool(2);
  pool.insert(1, 0, std::nullopt);
  pool.insert(2, 0, std::nullopt);
  ASSERT_TRUE(pool.pin(1));
  pool.take_events();
  pool.insert(3, 0, std::nullopt);
  EXPECT_EQ(removed_hashes(pool), std::vector<BlockHash>{2});
  ASSERT_TRUE(pool.pin(3));
  EXPECT_EQ(pool.insert(4, 0, std::nullopt), HostPool::Insert::kFull);
  EXPECT_TRUE(pool.take_events().empty());
  EXPECT_FALSE(pool.contains(4));
  EXPECT_EQ(pool.num_pinned(), 2u);
}

TEST(HostPool, PinsNestAndUnpinnedEntryBecomesMostRecent) {
  HostPool pool(2);
  pool.insert(1, 0, std::nullopt);
  pool.insert(2, 0, std::nullopt);
  pool.pin(1);
  pool.pin(1);
  pool.unpin(1);
  EXPECT_EQ(pool.pins(1), 1u);
  pool.unpin(1);  // 1 is now newer than 2
  EXPECT_EQ(pool.pins(1), 0u);
  pool.take_events();
  pool.insert(3, 0, std::nullopt);
  EXPECT_EQ(removed_hashes(pool), std::vector<BlockHash>{2});
}

TEST(HostPool, PinOfAnAbsentBlockFailsAndUnpinIsHarmless) {
  HostPool pool(2);
  EXPECT_FALSE(pool.pin(9));
  pool.unpin(9);
  pool.insert(1, 0, std::nullopt);
  pool.unpin(1);  // not pinned: no effect
  EXPECT_EQ(pool.pins(1), 0u);
  EXPECT_EQ(pool.num_pinned(), 0u);
}

TEST(HostPool, MatchPrefixStopsAtTheFirstMiss) {
  HostPool pool(8);
  for (BlockHash h : {1, 2, 4}) pool.insert(h, 0, std::nullopt);
  EXPECT_EQ(pool.match_prefix(std::vector<BlockHash>{1, 2, 3, 4}), 2u);
  EXPECT_EQ(pool.match_prefix(std::vector<BlockHash>{3, 1}), 0u);
}

TEST(HostPool, ZeroCapacityStoresNothing) {
  HostPool pool(0);
  EXPECT_EQ(pool.insert(1, 0, std::nullopt), HostPool::Insert::kFull);
  EXPECT_FALSE(pool.contains(1));
}

}  // namespace
}  // namespace kvmock
