#include "core/indexer/radix_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::removed;
using testing::stored;

constexpr WorkerRank kA{1, 0};
constexpr WorkerRank kB{2, 0};

std::vector<uint64_t> hashes(std::initializer_list<uint64_t> values) { return values; }

ApplyOutcome must_apply(RadixTree& tree, const RouterEvent& event) {
  auto result = tree.apply(event);
  EXPECT_TRUE(result.ok()) << result.error().reason << ": " << result.error().message;
  return result.ok() ? *result : ApplyOutcome{};
}

TEST(RadixTree, StoreFromTheRootIsMatchedBlockByBlock) {
  RadixTree tree;
  const ApplyOutcome outcome = must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  EXPECT_EQ(outcome.added, 2u);
  EXPECT_EQ(tree.block_count(kA), 2u);
  EXPECT_EQ(tree.node_count(), 2u);
  EXPECT_EQ(tree.find_matches(hashes({100, 101})).score(kA), 2u);
  EXPECT_EQ(tree.find_matches(hashes({100})).score(kA), 1u);
}

TEST(RadixTree, StoreWithAKnownParentExtendsTheChain) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  must_apply(tree, stored(1, 0, 10, {{11, 101}, {12, 102}}));
  EXPECT_EQ(tree.find_matches(hashes({100, 101, 102})).score(kA), 3u);
  EXPECT_EQ(tree.node_count(), 3u);
}

TEST(RadixTree, FindMatchesCountsOnlyConsecutiveLeadingBlocks) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}, {21, 101}}));
  const OverlapScores full = tree.find_matches(hashes({100, 101, 102, 103}));
  EXPECT_EQ(full.scores, (std::vector<std::pair<WorkerRank, uint32_t>>{{kA, 3}, {kB, 2}}));
  // A miss in the middle ends the match even though a later block is held.
  const OverlapScores gap = tree.find_matches(hashes({100, 999, 102}));
  EXPECT_EQ(gap.scores, (std::vector<std::pair<WorkerRank, uint32_t>>{{kA, 1}, {kB, 1}}));
}

TEST(RadixTree, FindMatchesIsEmptyWhenTheFirstBlockIsUnknown) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  EXPECT_TRUE(tree.find_matches(hashes({101})).scores.empty());
  EXPECT_TRUE(tree.find_matches({}).scores.empty());
}

TEST(RadixTree, EarlyExitStopsOnceASingleOwnerIsLeft) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}}));
  const auto all = hashes({100, 101, 102});
  EXPECT_EQ(tree.find_matches(all, false).score(kA), 3u);
  // After block 0 both remain; after block 1 only A is left and the walk stops there.
  const OverlapScores early = tree.find_matches(all, true);
  EXPECT_EQ(early.score(kA), 2u);
  EXPECT_EQ(early.score(kB), 1u);
}

TEST(RadixTree, StoreWithAnUnknownParentIsRejectedAndInsertsNothing) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  auto result = tree.apply(stored(1, 0, 99, {{11, 101}}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "parent_not_found");
  EXPECT_EQ(tree.block_count(kA), 1u);
  EXPECT_EQ(tree.node_count(), 1u);
}

TEST(RadixTree, ParentHeldOnlyByAnotherOwnerIsNotFound) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  auto result = tree.apply(stored(2, 0, 10, {{11, 101}}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "parent_not_found");
  EXPECT_EQ(tree.block_count(kB), 0u);
  // Another rank of the same worker is another owner too.
  auto other_rank = tree.apply(stored(1, 1, 10, {{11, 101}}));
  ASSERT_FALSE(other_rank.ok());
  EXPECT_EQ(other_rank.error().reason, "parent_not_found");
}

TEST(RadixTree, BlockThatIsItsOwnParentIsRejected) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  auto result = tree.apply(stored(1, 0, 10, {{11, 101}, {10, 102}}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "invalid_block_sequence");
  EXPECT_EQ(tree.block_count(kA), 1u);
}

TEST(RadixTree, HashRepeatedWithinOneStoreIsRejected) {
  RadixTree tree;
  auto result = tree.apply(stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {10, 102}}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "invalid_block_sequence");
  EXPECT_EQ(tree.node_count(), 0u);
}

TEST(RadixTree, HashRepeatedWithinALongStoreIsRejected) {
  RadixTree tree;
  StoreData data;
  for (uint64_t i = 0; i < 100; ++i) data.blocks.push_back({1000 + i, i, std::nullopt});
  data.blocks.push_back({1050, 7, std::nullopt});
  auto result = tree.apply_stored(kA, data);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "invalid_block_sequence");
}

TEST(RadixTree, BlockHashAlreadyHeldElsewhereIsAConflict) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  // Same block hash 11, now claimed directly under the root.
  auto moved = tree.apply(stored(1, 0, std::nullopt, {{11, 101}}));
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.error().reason, "block_hash_conflict");
  // Same place, other tokens_hash.
  auto retokened = tree.apply(stored(1, 0, 10, {{11, 555}}));
  ASSERT_FALSE(retokened.ok());
  EXPECT_EQ(retokened.error().reason, "block_hash_conflict");
  EXPECT_EQ(tree.block_count(kA), 2u);
  EXPECT_EQ(tree.node_count(), 2u);
}

TEST(RadixTree, RestoringHeldBlocksIsIdempotent) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  const ApplyOutcome again = must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  EXPECT_EQ(again.added, 0u);
  EXPECT_EQ(again.duplicate, 2u);
  // A re-store may also extend the chain past what is held.
  const ApplyOutcome longer =
      must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
  EXPECT_EQ(longer.added, 1u);
  EXPECT_EQ(longer.duplicate, 2u);
  EXPECT_EQ(tree.block_count(kA), 3u);
  EXPECT_EQ(tree.node_count(), 3u);
}

TEST(RadixTree, RemovingABlockPrunesItsDescendantsForThatOwner) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
  must_apply(tree, stored(1, 0, 11, {{13, 103}}));  // a branch below 11
  const ApplyOutcome outcome = must_apply(tree, removed(1, 0, {11}));
  EXPECT_EQ(outcome.removed, 1u);
  EXPECT_EQ(outcome.pruned, 2u);  // 12 and 13
  EXPECT_EQ(tree.block_count(kA), 1u);
  EXPECT_EQ(tree.node_count(), 1u);
  EXPECT_EQ(tree.find_matches(hashes({100, 101, 102})).score(kA), 1u);
  // The pruned blocks are gone for the owner: a store under them has no parent.
  EXPECT_EQ(tree.apply(stored(1, 0, 12, {{14, 104}})).error().reason, "parent_not_found");
}

TEST(RadixTree, RemovingUnknownHashesSkipsThemAndReportsThem) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  const ApplyOutcome outcome = must_apply(tree, removed(1, 0, {77, 11, 78}));
  EXPECT_EQ(outcome.unknown, 2u);
  EXPECT_EQ(outcome.removed, 1u);
  EXPECT_EQ(tree.block_count(kA), 1u);
  const ApplyOutcome nobody = must_apply(tree, removed(9, 0, {10}));
  EXPECT_EQ(nobody.unknown, 1u);
  EXPECT_EQ(tree.block_count(kA), 1u);
}

TEST(RadixTree, TwoOwnersStoringTheSameTokensShareNodes) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}, {21, 101}}));  // other block hashes
  EXPECT_EQ(tree.node_count(), 2u);
  EXPECT_EQ(tree.block_count(kA), 2u);
  EXPECT_EQ(tree.block_count(kB), 2u);
  const OverlapScores scores = tree.find_matches(hashes({100, 101}));
  EXPECT_EQ(scores.score(kA), 2u);
  EXPECT_EQ(scores.score(kB), 2u);
}

TEST(RadixTree, RemovalByOneOwnerKeepsSharedNodesForTheOther) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}, {21, 101}}));
  must_apply(tree, removed(1, 0, {10}));
  EXPECT_EQ(tree.block_count(kA), 0u);
  EXPECT_EQ(tree.node_count(), 2u);
  const OverlapScores scores = tree.find_matches(hashes({100, 101}));
  EXPECT_EQ(scores.score(kA), 0u);
  EXPECT_EQ(scores.score(kB), 2u);
}

TEST(RadixTree, ClearedDropsOnlyThatRank) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  must_apply(tree, stored(1, 1, std::nullopt, {{10, 100}, {11, 101}}));
  const ApplyOutcome outcome = must_apply(tree, cleared(1, 1));
  EXPECT_EQ(outcome.cleared, 2u);
  EXPECT_EQ(tree.block_count(WorkerRank{1, 1}), 0u);
  EXPECT_EQ(tree.block_count(kA), 1u);
  EXPECT_EQ(tree.node_count(), 1u);
  EXPECT_EQ(tree.owners(), std::vector<WorkerRank>{kA});
}

TEST(RadixTree, RemoveWorkerDropsEveryRank) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  must_apply(tree, stored(1, 3, std::nullopt, {{10, 100}, {11, 101}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 200}}));
  EXPECT_EQ(tree.remove_worker(1), 3u);
  EXPECT_EQ(tree.owners(), std::vector<WorkerRank>{kB});
  EXPECT_EQ(tree.node_count(), 1u);
}

TEST(RadixTree, NodesNobodyHoldsAreFreedAndReused) {
  RadixTree tree;
  for (int round = 0; round < 3; ++round) {
    must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
    must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}, {21, 901}}));
    EXPECT_EQ(tree.node_count(), 4u);
    must_apply(tree, removed(1, 0, {10}));
    EXPECT_EQ(tree.node_count(), 2u);
    must_apply(tree, cleared(2, 0));
    EXPECT_EQ(tree.node_count(), 0u);
    EXPECT_TRUE(tree.owners().empty());
  }
}

TEST(RadixTree, DumpIsBreadthFirstRunsWithSyntheticIds) {
  RadixTree tree;
  // 10-11, then two branches below 11: 12 and 13-14.
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  must_apply(tree, stored(1, 0, 11, {{12, 102}}));
  must_apply(tree, stored(1, 0, 11, {{13, 103}, {14, 104}}));
  const std::vector<RouterEvent> dump = tree.dump_events(1, 0);
  ASSERT_EQ(dump.size(), 3u);
  for (size_t i = 0; i < dump.size(); ++i) {
    EXPECT_EQ(dump[i].event.event_id, i);
    EXPECT_EQ(dump[i].worker_id, 1u);
    EXPECT_EQ(dump[i].event.dp_rank, 0u);
    EXPECT_EQ(dump[i].storage_tier, StorageTier::kDevice);
  }
  EXPECT_EQ(std::get<StoreData>(dump[0].event.data),
            testing::store_data(std::nullopt, {{10, 100}, {11, 101}}));
  const std::vector<StoredBlock> short_branch = testing::store_data(11, {{12, 102}}).blocks;
  const std::vector<StoredBlock> long_branch =
      testing::store_data(11, {{13, 103}, {14, 104}}).blocks;
  const auto& second = std::get<StoreData>(dump[1].event.data);
  const auto& third = std::get<StoreData>(dump[2].event.data);
  for (const StoreData* data : {&second, &third}) {
    EXPECT_EQ(data->parent_hash, std::optional<BlockHash>(11));
    EXPECT_FALSE(data->start_position.has_value());
  }
  // Sibling order is unspecified; both branches appear once.
  EXPECT_TRUE((second.blocks == short_branch && third.blocks == long_branch) ||
              (second.blocks == long_branch && third.blocks == short_branch));
}

TEST(RadixTree, DumpOfAnOwnerWithoutBlocksIsEmpty) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}}));
  EXPECT_TRUE(tree.dump_events(2, 0).empty());
  EXPECT_TRUE(tree.dump_events(1, 1).empty());
}

TEST(RadixTree, DumpCoversOnlyTheOwnersPartOfSharedNodes) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}}));
  const std::vector<RouterEvent> dump = tree.dump_events(2, 0);
  ASSERT_EQ(dump.size(), 1u);
  EXPECT_EQ(std::get<StoreData>(dump[0].event.data),
            testing::store_data(std::nullopt, {{20, 100}}));
}

TEST(RadixTree, DumpReplayedIntoAFreshTreeReproducesTheOwnersContent) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {12, 102}}));
  must_apply(tree, stored(1, 0, 10, {{15, 105}, {16, 106}}));
  must_apply(tree, stored(1, 0, 16, {{17, 107}}));
  must_apply(tree, stored(1, 0, 16, {{18, 108}}));
  must_apply(tree, stored(1, 0, std::nullopt, {{30, 300}}));
  must_apply(tree, stored(2, 0, std::nullopt, {{20, 100}, {21, 101}}));
  must_apply(tree, removed(1, 0, {12}));

  RadixTree replica;
  for (const RouterEvent& event : tree.dump_events(1, 0)) must_apply(replica, event);
  EXPECT_TRUE(replica.same_content(tree, kA));
  EXPECT_EQ(replica.block_count(kA), 7u);
  EXPECT_EQ(replica.block_count(kB), 0u);
}

TEST(RadixTree, DumpKeepsASecondBlockHashHeldAtOneNode) {
  RadixTree tree;
  must_apply(tree, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  must_apply(tree, stored(1, 0, 10, {{12, 101}, {13, 103}}));  // 12 lands on 11's node
  EXPECT_EQ(tree.node_count(), 3u);
  EXPECT_EQ(tree.block_count(kA), 4u);
  RadixTree replica;
  for (const RouterEvent& event : tree.dump_events(1, 0)) must_apply(replica, event);
  EXPECT_EQ(replica.block_count(kA), 4u);
  EXPECT_TRUE(replica.same_content(tree, kA));
  // Removing one of the two hashes keeps the node (and 13 below it) held.
  must_apply(tree, removed(1, 0, {12}));
  EXPECT_EQ(tree.block_count(kA), 3u);
  EXPECT_EQ(tree.find_matches(hashes({100, 101, 103})).score(kA), 3u);
}

TEST(RadixTree, SameContentNoticesAMissingBlock) {
  RadixTree a;
  RadixTree b;
  must_apply(a, stored(1, 0, std::nullopt, {{10, 100}, {11, 101}}));
  must_apply(b, stored(1, 0, std::nullopt, {{10, 100}}));
  EXPECT_FALSE(a.same_content(b, kA));
  must_apply(b, stored(1, 0, 10, {{11, 101}}));
  EXPECT_TRUE(a.same_content(b, kA));
  EXPECT_EQ(a.canonical_blocks(kA),
            (std::vector<CanonicalBlock>{{10, 100, std::nullopt}, {11, 101, 10}}));
}

// Random workloads over a few owners; every owner's dump must rebuild it exactly, and the
// tree must stay consistent (no leaked nodes once everything is cleared).
TEST(RadixTree, RandomWorkloadsDumpAndReplayExactly) {
  std::mt19937_64 rng(7);
  RadixTree tree;
  const std::vector<WorkerRank> owners{{1, 0}, {1, 1}, {2, 0}};
  std::vector<std::vector<BlockHash>> held(owners.size());
  uint64_t next_hash = 1;
  for (int step = 0; step < 3000; ++step) {
    const size_t o = rng() % owners.size();
    const WorkerRank owner = owners[o];
    const int op = static_cast<int>(rng() % 10);
    if (op < 6) {
      StoreData data;
      if (!held[o].empty() && rng() % 2) data.parent_hash = held[o][rng() % held[o].size()];
      const size_t length = 1 + rng() % 5;
      for (size_t i = 0; i < length; ++i) {
        // Few distinct tokens hashes so owners and branches share nodes.
        data.blocks.push_back({next_hash++, rng() % 4, std::nullopt});
      }
      must_apply(tree, testing::make_event(owner.worker_id, owner.dp_rank, data));
    } else if (op < 9 && !held[o].empty()) {
      must_apply(tree, removed(owner.worker_id, owner.dp_rank, {held[o][rng() % held[o].size()]}));
    } else if (op == 9 && rng() % 10 == 0) {
      must_apply(tree, cleared(owner.worker_id, owner.dp_rank));
    }
    for (size_t i = 0; i < owners.size(); ++i) {
      held[i].clear();
      for (const CanonicalBlock& block : tree.canonical_blocks(owners[i])) {
        held[i].push_back(block.block_hash);
      }
    }
  }
  // The workload must have left a sizeable, shared tree for the check to mean anything.
  EXPECT_GT(tree.block_count(owners[0]) + tree.block_count(owners[1]) + tree.block_count(owners[2]),
            tree.node_count());
  EXPECT_GT(tree.node_count(), 20u);
  for (const WorkerRank& owner : owners) {
    RadixTree replica;
    for (const RouterEvent& event : tree.dump_events(owner.worker_id, owner.dp_rank)) {
      must_apply(replica, event);
    }
    EXPECT_TRUE(replica.same_content(tree, owner));
    EXPECT_EQ(replica.block_count(owner), tree.block_count(owner));
  }
  for (const WorkerRank& owner : owners) must_apply(tree, cleared(owner.worker_id, owner.dp_rank));
  EXPECT_EQ(tree.node_count(), 0u);
}

}  // namespace
}  // namespace kvmock
