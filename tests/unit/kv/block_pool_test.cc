#include "core/kv/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvmock {
namespace {

// Allocates private slots for `hashes`, computes them as one chain rooted at
// `parent` and returns the slots (still referenced by the caller).
std::vector<SlotId> store_chain(BlockPool& pool, const std::vector<BlockHash>& hashes,
                                std::optional<BlockHash> parent = std::nullopt) {
  std::vector<SlotId> slots;
  EXPECT_TRUE(pool.allocate({}, static_cast<uint32_t>(hashes.size()), &slots));
  std::vector<BlockPool::CommitBlock> commits;
  for (size_t i = 0; i < hashes.size(); ++i)
    commits.push_back({slots[i], hashes[i], hashes[i] + 1000});
  pool.commit(parent, commits);
  return slots;
}

// Evicts one block by allocating one fresh slot in a full pool; returns the hashes
// the pool reported as removed.
std::vector<BlockHash> evict_one(BlockPool& pool) {
  std::vector<SlotId> slots;
  EXPECT_TRUE(pool.allocate({}, 1, &slots));
  std::vector<BlockHash> removed;
  for (auto& e : pool.take_events()) {
    if (auto* r = std::get_if<RemoveData>(&e)) {
      removed.insert(removed.end(), r->block_hashes.begin(), r->block_hashes.end());
    }
  }
  pool.release(slots);
  return removed;
}

TEST(BlockPool, AllocationBeyondCapacityFailsWithoutTakingSlots) {
  BlockPool pool(10, true);
  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, 10, &slots));
  EXPECT_EQ(pool.num_free(), 0u);
  EXPECT_FALSE(pool.allocate({}, 1, &slots));
  EXPECT_EQ(slots.size(), 10u);
  EXPECT_EQ(pool.num_active(), 10u);
}

TEST(BlockPool, PrivateBlocksAreInvisibleToPrefixMatching) {
  BlockPool pool(4, true);
  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, 2, &slots));
  const std::vector<BlockHash> hashes{11, 12};
  EXPECT_EQ(pool.match_prefix(hashes).blocks, 0u);
  EXPECT_TRUE(pool.take_events().empty());
}

TEST(BlockPool, CommitPublishesOneStoredEventWithParentAndContentHashes) {
  BlockPool pool(8, true);
  store_chain(pool, {11, 12, 13}, BlockHash{7});
  auto events = pool.take_events();
  ASSERT_EQ(events.size(), 1u);
  const auto& stored = std::get<StoreData>(events[0]);
  EXPECT_EQ(stored.parent_hash, std::optional<BlockHash>(7));
  ASSERT_EQ(stored.blocks.size(), 3u);
  EXPECT_EQ(stored.blocks[0].block_hash, 11u);
  EXPECT_EQ(stored.blocks[0].tokens_hash, 1011u);
  EXPECT_EQ(stored.blocks[2].block_hash, 13u);
  EXPECT_EQ(pool.match_prefix(std::vector<BlockHash>{11, 12, 13}).blocks, 3u);
}

TEST(BlockPool, AlreadyVisibleBlockSplitsTheStoredRunAndBecomesTheNextParent) {
  BlockPool pool(8, true);
  store_chain(pool, {12});
  pool.take_events();
  store_chain(pool, {11, 12, 13});
  auto events = pool.take_events();
  ASSERT_EQ(events.size(), 2u);
  const auto& first = std::get<StoreData>(events[0]);
  EXPECT_EQ(first.parent_hash, std::nullopt);
  ASSERT_EQ(first.blocks.size(), 1u);
  EXPECT_EQ(first.blocks[0].block_hash, 11u);
  const auto& second = std::get<StoreData>(events[1]);
  EXPECT_EQ(second.parent_hash, std::optional<BlockHash>(12));
  ASSERT_EQ(second.blocks.size(), 1u);
  EXPECT_EQ(second.blocks[0].block_hash, 13u);
}

TEST(BlockPool, DuplicateHashesConsumeDistinctCapacityButShareVisibility) {
  BlockPool pool(4, true);
  store_chain(pool, {21});
  store_chain(pool, {21});
  EXPECT_EQ(pool.copies(21), 2u);
  EXPECT_EQ(pool.num_active(), 2u);
  EXPECT_EQ(pool.num_free(), 2u);
  EXPECT_EQ(pool.take_events().size(), 1u);  // one Stored for both copies
}

TEST(BlockPool, RemovalIsReportedOnlyForTheLastPhysicalCopy) {
  BlockPool pool(2, true);
  auto a = store_chain(pool, {21});
  auto b = store_chain(pool, {21});
  pool.take_events();
  pool.release(a);
  pool.release(b);
  EXPECT_TRUE(evict_one(pool).empty());
  EXPECT_EQ(pool.copies(21), 1u);
  // The slot freed by evict_one is taken first; the second allocation needs an eviction.
  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, 2, &slots));
  auto events = pool.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<RemoveData>(events[0]).block_hashes, std::vector<BlockHash>{21});
  EXPECT_EQ(pool.copies(21), 0u);
}

TEST(BlockPool, CopiesOfOneHashLeaveInAnyOrderAndTheLastOneIsReported) {
  BlockPool pool(3, true);
  auto first = store_chain(pool, {21});
  auto middle = store_chain(pool, {21});
  auto last = store_chain(pool, {21});
  pool.take_events();
  ASSERT_EQ(pool.copies(21), 3u);

  pool.release(middle);  // the only inactive copy: evicted next
  EXPECT_TRUE(evict_one(pool).empty());
  EXPECT_EQ(pool.copies(21), 2u);

  pool.release(first);  // inactive now; `last` is still referenced and is the one matched
  const BlockPool::PrefixMatch match = pool.match_prefix(std::vector<BlockHash>{21});
  EXPECT_EQ(match.blocks, 1u);
  EXPECT_EQ(match.active_blocks, 1u);

  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, 2, &slots));  // the free slot, then `first` is evicted
  EXPECT_TRUE(pool.take_events().empty());
  EXPECT_EQ(pool.copies(21), 1u);
  EXPECT_EQ(pool.match_prefix(std::vector<BlockHash>{21}).active_blocks, 1u);

  pool.release(last);
  ASSERT_TRUE(pool.allocate({}, 1, &slots));
  auto events = pool.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<RemoveData>(events[0]).block_hashes, std::vector<BlockHash>{21});
  EXPECT_EQ(pool.copies(21), 0u);
  EXPECT_EQ(pool.match_prefix(std::vector<BlockHash>{21}).blocks, 0u);
}

TEST(BlockPool, ReleaseEvictsLeafBeforeParent) {
  BlockPool pool(3, true);
  auto slots = store_chain(pool, {1, 2, 3});
  pool.take_events();
  pool.release(slots);
  EXPECT_EQ(pool.num_inactive(), 3u);
  EXPECT_EQ(evict_one(pool), std::vector<BlockHash>{3});
}

TEST(BlockPool, CancelledPrefixEvictsLeafBeforeParentUnderPressure) {
  BlockPool pool(4, true);
  auto slots = store_chain(pool, {1, 2, 3, 4});
  pool.take_events();
  pool.release(slots);
  std::vector<SlotId> fresh;
  ASSERT_TRUE(pool.allocate({}, 2, &fresh));
  auto events = pool.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<RemoveData>(events[0]).block_hashes, (std::vector<BlockHash>{4, 3}));
  EXPECT_EQ(pool.match_prefix(std::vector<BlockHash>{1, 2, 3}).blocks, 2u);
}

TEST(BlockPool, ReusingAMiddleInactiveBlockRequeuesItAsNewest) {
  BlockPool pool(3, true);
  auto s1 = store_chain(pool, {1});
  auto s2 = store_chain(pool, {2});
  auto s3 = store_chain(pool, {3});
  pool.release(s1);
  pool.release(s2);
  pool.release(s3);
  std::vector<SlotId> held;
  ASSERT_TRUE(pool.allocate(std::vector<BlockHash>{2}, 0, &held));
  pool.release(held);
  pool.take_events();
  EXPECT_EQ(evict_one(pool), std::vector<BlockHash>{1});
  // evict_one returned its slot to the free list; fill it so the next one must evict.
  std::vector<SlotId> filler;
  ASSERT_TRUE(pool.allocate({}, 1, &filler));
  EXPECT_EQ(evict_one(pool), std::vector<BlockHash>{3});
  ASSERT_TRUE(pool.allocate({}, 1, &filler));
  EXPECT_EQ(evict_one(pool), std::vector<BlockHash>{2});
}

TEST(BlockPool, PrefixReservationReusesTheCachedCopyWithoutNewCapacity) {
  BlockPool pool(4, true);
  auto slots = store_chain(pool, {1, 2});
  std::vector<SlotId> second;
  ASSERT_TRUE(pool.allocate(std::vector<BlockHash>{1, 2}, 1, &second));
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[0], slots[0]);
  EXPECT_EQ(second[1], slots[1]);
  EXPECT_EQ(pool.num_active(), 3u);
  EXPECT_EQ(pool.copies(1), 1u);
}

TEST(BlockPool, InactivePrefixCannotBeEvictedToPayForItsOwnReservation) {
  BlockPool pool(3, true);
  auto slots = store_chain(pool, {1, 2});
  pool.release(slots);
  std::vector<SlotId> held;
  ASSERT_TRUE(pool.allocate({}, 1, &held));  // pool now full: 2 inactive + 1 private
  std::vector<SlotId> out;
  EXPECT_FALSE(pool.allocate(std::vector<BlockHash>{1, 2}, 1, &out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.num_inactive(), 2u);
  EXPECT_TRUE(pool.allocate(std::vector<BlockHash>{1}, 1, &out));  // may evict 2
  EXPECT_EQ(pool.copies(2), 0u);
}

TEST(BlockPool, FailedReservationIsAtomic) {
  BlockPool pool(3, true);
  auto a = store_chain(pool, {1});
  auto b = store_chain(pool, {2});
  pool.release(a);
  pool.release(b);
  pool.take_events();
  std::vector<SlotId> out;
  EXPECT_FALSE(pool.allocate(std::vector<BlockHash>{1, 99}, 0, &out));  // 99 is not cached
  EXPECT_FALSE(pool.allocate(std::vector<BlockHash>{1}, 3, &out));      // too few slots
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.num_inactive(), 2u);
  EXPECT_TRUE(pool.take_events().empty());
  // LRU order untouched: 1 is still the oldest.
  std::vector<SlotId> filler;
  ASSERT_TRUE(pool.allocate({}, 1, &filler));
  EXPECT_EQ(evict_one(pool), std::vector<BlockHash>{1});
}

TEST(BlockPool, PinnedInactiveBlockIsNotEvicted) {
  BlockPool pool(2, true);
  auto a = store_chain(pool, {1});
  auto b = store_chain(pool, {2});
  pool.release(a);
  pool.release(b);
  ASSERT_TRUE(pool.pin(1));
  EXPECT_EQ(pool.num_inactive(), 1u);
  std::vector<SlotId> out;
  EXPECT_FALSE(pool.allocate({}, 2, &out));
  pool.take_events();
  EXPECT_EQ(evict_one(pool), std::vector<BlockHash>{2});
  pool.unpin(1);
  EXPECT_EQ(pool.num_inactive(), 1u);
  EXPECT_FALSE(pool.pin(42));
}

TEST(BlockPool, MatchPrefixStopsAtFirstMissAndCountsReferencedHits) {
  BlockPool pool(8, true);
  auto held = store_chain(pool, {1});
  auto released = store_chain(pool, {2}, BlockHash{1});
  store_chain(pool, {4});
  pool.release(released);
  const auto match = pool.match_prefix(std::vector<BlockHash>{1, 2, 3, 4});
  EXPECT_EQ(match.blocks, 2u);
  EXPECT_EQ(match.active_blocks, 1u);
}

TEST(BlockPool, ReleasingPrivateBlocksFreesThemWithoutEvents) {
  BlockPool pool(4, true);
  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, 3, &slots));
  pool.release(slots);
  EXPECT_EQ(pool.num_free(), 4u);
  EXPECT_EQ(pool.num_inactive(), 0u);
  EXPECT_TRUE(pool.take_events().empty());
}

TEST(BlockPool, DisabledPublishingCachesBlocksButLogsNothing) {
  BlockPool pool(1, false);
  auto slots = store_chain(pool, {5});
  pool.release(slots);
  EXPECT_EQ(pool.num_inactive(), 1u);
  EXPECT_TRUE(evict_one(pool).empty());
  EXPECT_EQ(pool.copies(5), 0u);
}

class RecordingObserver : public EvictionObserver {
 public:
  void on_evict(BlockHash hash, uint64_t, std::optional<BlockHash> parent, bool last) override {
    seen.push_back({hash, parent.value_or(0), last});
  }
  struct Seen {
    BlockHash hash;
    BlockHash parent;
    bool last;
  };
  std::vector<Seen> seen;
};

TEST(BlockPool, EvictionObserverSeesEvictedBlockWithItsParent) {
  BlockPool pool(2, true);
  RecordingObserver observer;
  pool.set_eviction_observer(&observer);
  auto slots = store_chain(pool, {1, 2});
  pool.release(slots);
  evict_one(pool);
  ASSERT_EQ(observer.seen.size(), 1u);
  EXPECT_EQ(observer.seen[0].hash, 2u);
  EXPECT_EQ(observer.seen[0].parent, 1u);
  EXPECT_TRUE(observer.seen[0].last);
}

// Holds every evicted last copy, as a copy-out tier would.
class HoldingObserver : public EvictionObserver {
 public:
  void on_evict(BlockHash, uint64_t, std::optional<BlockHash>, bool) override {}
  bool hold_for_copy(BlockHash hash, bool last_copy) override {
    if (last_copy) held.push_back(hash);
    return last_copy;
  }
  std::vector<BlockHash> held;
};

TEST(BlockPool, HeldEvictionMakesAllocationWaitAndRollsBackThePrefix) {
  BlockPool pool(3, true);
  HoldingObserver observer;
  pool.set_eviction_observer(&observer);
  pool.release(store_chain(pool, {1, 2, 3}));  // LRU: 3, 2, 1
  pool.take_events();
  std::vector<SlotId> out{77};
  EXPECT_EQ(pool.try_allocate(std::vector<BlockHash>{1}, 1, &out),
            BlockPool::Allocation::kWaitForOffload);
  EXPECT_EQ(out, std::vector<SlotId>{77});  // nothing appended, prefix ref dropped
  EXPECT_EQ(observer.held, std::vector<BlockHash>{3});
  EXPECT_EQ(pool.num_held(), 1u);
  EXPECT_EQ(pool.num_inactive(), 2u);  // 1 is back in the LRU
  EXPECT_EQ(pool.num_active(), 1u);    // the held slot
  EXPECT_EQ(pool.copies(3), 0u);
  // The Removed is announced when the block leaves G1, not when the slot frees.
  auto events = pool.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<RemoveData>(events[0]).block_hashes, std::vector<BlockHash>{3});

  pool.release_held(3);
  EXPECT_EQ(pool.num_held(), 0u);
  EXPECT_EQ(pool.try_allocate(std::vector<BlockHash>{1}, 1, &out), BlockPool::Allocation::kDone);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_TRUE(pool.take_events().empty());
}

TEST(BlockPool, TryAllocateWithoutRoomHasNoSideEffect) {
  BlockPool pool(2, true);
  HoldingObserver observer;
  pool.set_eviction_observer(&observer);
  pool.release(store_chain(pool, {1, 2}));
  std::vector<SlotId> out;
  EXPECT_EQ(pool.try_allocate({}, 3, &out), BlockPool::Allocation::kNoSpace);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(observer.held.empty());
  EXPECT_EQ(pool.num_inactive(), 2u);
  EXPECT_EQ(pool.try_allocate(std::vector<BlockHash>{9}, 0, &out), BlockPool::Allocation::kNoSpace);
}

TEST(BlockPool, ReleaseHeldOfAnUnknownHashIsHarmless) {
  BlockPool pool(1, true);
  pool.release_held(42);
  EXPECT_EQ(pool.num_free(), 1u);
  EXPECT_EQ(pool.num_held(), 0u);
}

}  // namespace
}  // namespace kvmock
