#include "core/kv/g2_tier.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvmock {
namespace {

constexpr uint32_t kBlockSize = 16;

// 1000 bytes per token: a block is 16 kB; at 1 GB/s (16 kB = 0.016 ms) per block.
G2Args g2_args(uint64_t blocks, uint32_t batch = 32, double gbps = 1.0) {
  G2Args a;
  a.num_blocks = blocks;
  a.kv_bytes_per_token = 1000;
  a.bandwidth_g1_to_g2_gbps = gbps;
  a.bandwidth_g2_to_g1_gbps = gbps;
  a.offload_batch_size = batch;
  return a;
}

// Computes `hashes` as one chain in `pool` and releases it, leaving them inactive.
void store_and_release(BlockPool& pool, const std::vector<BlockHash>& hashes) {
  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, static_cast<uint32_t>(hashes.size()), &slots));
  std::vector<BlockPool::CommitBlock> commits;
  for (size_t i = 0; i < hashes.size(); ++i)
    commits.push_back({slots[i], hashes[i], hashes[i] * 10});
  pool.commit(std::nullopt, commits);
  pool.release(slots);
  pool.take_events();
}

std::vector<StoreData> stores(std::vector<KvEventData> events) {
  std::vector<StoreData> out;
  for (auto& e : events) {
    if (auto* s = std::get_if<StoreData>(&e)) out.push_back(*s);
  }
  return out;
}

TEST(G2Tier, EvictedBlockHoldsItsG1SlotUntilTheCopyEnds) {
  BlockPool pool(2, true);
  G2Tier g2(g2_args(8), kBlockSize, &pool);
  store_and_release(pool, {1, 2});
  std::vector<SlotId> out;
  EXPECT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kWaitForOffload);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.num_held(), 1u);
  EXPECT_EQ(pool.num_free(), 0u);
  g2.flush();
  ASSERT_TRUE(g2.next_deadline_ms().has_value());
  EXPECT_NEAR(*g2.next_deadline_ms(), 0.016, 1e-9);
  EXPECT_TRUE(g2.busy());

  g2.advance_to(0.01);
  EXPECT_EQ(pool.num_held(), 1u);  // not yet
  g2.advance_to(0.02);
  EXPECT_EQ(pool.num_held(), 0u);
  // The oldest G1 block (the leaf, released first) went to G2.
  EXPECT_TRUE(g2.host().contains(2));
  const auto s = stores(g2.take_events());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].blocks[0].block_hash, 2u);
  EXPECT_EQ(s[0].blocks[0].tokens_hash, 20u);
  EXPECT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kDone);
  EXPECT_EQ(g2.stats().bytes_offloaded, 16000u);
  EXPECT_FALSE(g2.busy());
}

TEST(G2Tier, StoredOnHostCarriesTheG1Parent) {
  BlockPool pool(2, true);
  G2Tier g2(g2_args(8), kBlockSize, &pool);
  std::vector<SlotId> slots;
  ASSERT_TRUE(pool.allocate({}, 2, &slots));
  pool.commit(std::nullopt,
              std::vector<BlockPool::CommitBlock>{{slots[0], 1, 10}, {slots[1], 2, 20}});
  pool.release(slots);  // leaf first: 2 is the oldest
  std::vector<SlotId> out;
  EXPECT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kWaitForOffload);
  g2.flush();
  g2.advance_to(1);
  const auto s = stores(g2.take_events());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].blocks[0].block_hash, 2u);
  EXPECT_EQ(s[0].parent_hash, BlockHash{1});
}

TEST(G2Tier, BlocksAlreadyInG2OrInFlightAreNotCopiedAgain) {
  BlockPool pool(1, true);
  G2Tier g2(g2_args(8), kBlockSize, &pool);
  store_and_release(pool, {5});
  std::vector<SlotId> out;
  ASSERT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kWaitForOffload);
  g2.flush();
  g2.advance_to(1);
  ASSERT_TRUE(g2.host().contains(5));
  g2.take_events();
  // The same block computed again and evicted again: G2 has it, the slot frees at once.
  store_and_release(pool, {5});
  out.clear();
  EXPECT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kDone);
  EXPECT_EQ(pool.num_held(), 0u);
  g2.flush();
  EXPECT_FALSE(g2.busy());
  EXPECT_TRUE(g2.take_events().empty());
}

TEST(G2Tier, EvictingANonLastCopyDoesNotOffload) {
  BlockPool pool(2, true);
  G2Tier g2(g2_args(8), kBlockSize, &pool);
  store_and_release(pool, {9});
  store_and_release(pool, {9});  // a second physical copy
  ASSERT_EQ(pool.copies(9), 2u);
  std::vector<SlotId> out;
  EXPECT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kDone);
  g2.flush();
  EXPECT_FALSE(g2.busy());
}

TEST(G2Tier, OffloadsGoOutInBatchesWithBoundedTransfersInFlight) {
  BlockPool pool(5, true);
  G2Tier g2(g2_args(16, /*batch=*/2), kBlockSize, &pool);
  store_and_release(pool, {1, 2, 3, 4, 5});
  std::vector<SlotId> out;
  ASSERT_EQ(pool.try_allocate({}, 5, &out), BlockPool::Allocation::kWaitForOffload);
  EXPECT_EQ(pool.num_held(), 5u);
  g2.flush();
  G2Stats s = g2.stats();
  EXPECT_EQ(s.offloads_in_flight, 2u);  // batches {1,2} and {3,4}
  EXPECT_EQ(s.offload_queued_blocks, 1u);
  // Two 32 kB transfers share 1 GB/s: both end at 0.064 ms; {5} then starts alone.
  EXPECT_NEAR(*g2.next_deadline_ms(), 0.064, 1e-9);
  g2.advance_to(0.07);
  s = g2.stats();
  EXPECT_EQ(s.offloads_in_flight, 1u);
  EXPECT_EQ(s.offload_queued_blocks, 0u);
  EXPECT_EQ(pool.num_held(), 1u);
  EXPECT_NEAR(*g2.next_deadline_ms(), 0.064 + 0.016, 1e-9);
  g2.advance_to(1);
  EXPECT_EQ(pool.num_held(), 0u);
  EXPECT_EQ(g2.stats().blocks_offloaded, 5u);
  EXPECT_EQ(g2.stats().bytes_offloaded, 5u * 16000u);
}

TEST(G2Tier, OnboardPinsItsBlocksUntilFinished) {
  BlockPool pool(2, true);
  G2Tier g2(g2_args(2), kBlockSize, &pool);
  store_and_release(pool, {1, 2});
  std::vector<SlotId> out;
  ASSERT_EQ(pool.try_allocate({}, 2, &out), BlockPool::Allocation::kWaitForOffload);
  g2.flush();
  g2.advance_to(1);
  ASSERT_EQ(g2.match(std::vector<BlockHash>{1, 2, 3}), 2u);
  const std::vector<BlockHash> onboard{1};
  const TransferId id = g2.start_onboard(onboard);
  EXPECT_EQ(g2.host().pins(1), 1u);
  EXPECT_EQ(g2.stats().onboards_in_flight, 1u);
  EXPECT_NEAR(*g2.next_deadline_ms(), 1.016, 1e-9);
  const auto finished = g2.advance_to(2);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0], id);
  EXPECT_EQ(g2.stats().bytes_onboarded, 16000u);
  EXPECT_EQ(g2.host().pins(1), 1u);  // the caller drops the pins
  g2.finish_onboard(onboard);
  EXPECT_EQ(g2.host().pins(1), 0u);
}

TEST(G2Tier, InstantLinksFinishOnTheNextAdvance) {
  BlockPool pool(1, true);
  G2Tier g2(g2_args(4, 32, /*gbps=*/0), kBlockSize, &pool);
  store_and_release(pool, {3});
  std::vector<SlotId> out;
  ASSERT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kWaitForOffload);
  g2.flush();
  EXPECT_EQ(*g2.next_deadline_ms(), 0.0);
  g2.advance_to(0);
  EXPECT_TRUE(g2.host().contains(3));
  EXPECT_EQ(pool.num_held(), 0u);
}

TEST(G2Tier, CopyArrivingWhenG2IsAllPinnedIsDroppedAndCounted) {
  // Batch 1: the two evicted blocks travel one after the other (16 kB each at 1 GB/s).
  BlockPool pool(2, true);
  G2Tier g2(g2_args(1, /*batch=*/1), kBlockSize, &pool);
  store_and_release(pool, {1, 2});
  std::vector<SlotId> out;
  ASSERT_EQ(pool.try_allocate({}, 2, &out), BlockPool::Allocation::kWaitForOffload);
  g2.flush();
  g2.advance_to(0.02);  // the first copy is in G2, the second is in flight
  ASSERT_EQ(g2.stats().used_blocks, 1u);
  const BlockHash first = g2.host().contains(1) ? 1 : 2;
  const std::vector<BlockHash> pinned{first};
  g2.start_onboard(pinned);  // G2's only block is now pinned

  g2.advance_to(1);
  const G2Stats s = g2.stats();
  EXPECT_EQ(s.offloads_dropped, 1u);
  EXPECT_EQ(s.blocks_offloaded, 1u);
  EXPECT_EQ(s.used_blocks, 1u);
  EXPECT_TRUE(g2.host().contains(first));
  EXPECT_EQ(pool.num_held(), 0u);  // the dropped copy still frees its G1 slot
  EXPECT_EQ(s.bytes_offloaded, 2u * 16000u);
}

TEST(G2Tier, DetachesFromThePoolWhenDestroyed) {
  BlockPool pool(1, true);
  { G2Tier g2(g2_args(4), kBlockSize, &pool); }
  store_and_release(pool, {3});
  std::vector<SlotId> out;
  EXPECT_EQ(pool.try_allocate({}, 1, &out), BlockPool::Allocation::kDone);
}

}  // namespace
}  // namespace kvmock
