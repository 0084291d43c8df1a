// The router's view of which blocks each (worker_id, dp_rank) holds, as a prefix tree
// (docs/wire-formats.md#radix-tree). A mock worker keeps one for itself (the local
// indexer) and tests use a second one as "the router" to check that recovery converges.
//
// Shape. Nodes are blocks; a node's children are keyed by the child's tokens_hash, so two
// owners that stored the same tokens under the same prefix share nodes even when their
// block_hash values differ. Each owner also has a map block_hash -> node, used to find the
// parent of a Stored event and the targets of a Removed event.
//
// Invariant: an owner's blocks are prefix-closed — if an owner holds a node it holds the
// node's parent. Stores keep it by refusing unknown parents; removals keep it by pruning
// the owner from the removed block's descendants. A node nobody holds is freed at once.
//
// Where this departs from Dynamo's single-threaded tree, it is to keep the invariant (and
// so tree dumps) exact: Dynamo leaves a removed block's descendants in the owner's lookup,
// here they are pruned; Dynamo re-links a block_hash stored again under another parent,
// here that event is refused ("block_hash_conflict"). Well-behaved publishers never see
// either. mm_extra_info is not kept (routers match on tokens_hash only).
//
// Not thread-safe: one tree belongs to one strand.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/common/flat_hash_map.h"
#include "core/common/result.h"
#include "core/events/router_event.h"
#include "core/indexer/node_owners.h"

namespace kvmock {

// The owner of a set of blocks: one data-parallel rank of one worker.
struct WorkerRank {
  WorkerId worker_id = 0;
  DpRank dp_rank = 0;
  bool operator==(const WorkerRank&) const = default;
  auto operator<=>(const WorkerRank&) const = default;
};

// Result of find_matches: for each owner, how many leading blocks of the request it holds
// consecutively. Owners with no leading block are absent.
struct OverlapScores {
  std::vector<std::pair<WorkerRank, uint32_t>> scores;  // sorted by owner

  // The score of `owner`, 0 when absent.
  uint32_t score(WorkerRank owner) const;
};

// What one applied event did, in blocks. Removals of unknown hashes are not errors (the
// router skips them too); they are counted so callers can report them.
struct ApplyOutcome {
  uint32_t added = 0;      // new (owner, block_hash) entries
  uint32_t duplicate = 0;  // re-stored blocks the owner already held at the same place
  uint32_t removed = 0;    // Removed hashes the owner held
  uint32_t unknown = 0;    // Removed hashes the owner did not hold (skipped)
  uint32_t pruned = 0;     // descendants dropped because an ancestor was removed
  uint32_t cleared = 0;    // blocks dropped by Cleared
  bool operator==(const ApplyOutcome&) const = default;
};

// One block as an owner sees it; a tree's content for an owner is the sorted list of these.
struct CanonicalBlock {
  BlockHash block_hash = 0;
  uint64_t tokens_hash = 0;
  // The owner's block at the parent node (the smallest hash if it holds several there);
  // nullopt for a block at the root.
  std::optional<BlockHash> parent_hash;
  bool operator==(const CanonicalBlock&) const = default;
  auto operator<=>(const CanonicalBlock&) const = default;
};

class RadixTree {
 public:
  // `expected_blocks` pre-sizes the tables (a worker's num_gpu_blocks is a good value).
  explicit RadixTree(size_t expected_blocks = 0);

  // Applies one event for (event.worker_id, event.event.dp_rank). storage_tier and
  // event_id are ignored: callers decide which tiers feed this tree.
  //
  // Stored: parent_hash nullopt inserts from the root. Errors (nothing is inserted):
  //   "parent_not_found"       parent_hash is not a block this owner holds;
  //   "invalid_block_sequence" a block's hash equals parent_hash, or a hash repeats
  //                            within the event (a chain cannot contain itself);
  //   "block_hash_conflict"    the owner already holds a block_hash at a different place
  //                            (other parent or other tokens_hash).
  // Re-storing a block the owner holds at the same place is idempotent (`duplicate`).
  // Removed: never fails; see apply_removed. Cleared: never fails; see clear.
  Result<ApplyOutcome> apply(const RouterEvent& event);

  Result<ApplyOutcome> apply_stored(WorkerRank owner, const StoreData& store);
  // Drops each named block of `owner`; unknown hashes are skipped and counted. When the
  // owner no longer holds the node, its descendants are dropped for the owner too.
  ApplyOutcome apply_removed(WorkerRank owner, const RemoveData& remove);
  // Drops every block of `owner` (Cleared is per rank).
  ApplyOutcome clear(WorkerRank owner);
  // Drops every rank of `worker_id`; returns the number of blocks dropped.
  size_t remove_worker(WorkerId worker_id);

  // Walks the tree along `tokens_hashes` from the root. Each owner's score is the number of
  // consecutive leading blocks it holds; an owner drops out at the first block it lacks.
  // With `early_exit` the walk stops as soon as a single owner is left, so that owner's
  // score counts only the blocks walked so far.
  OverlapScores find_matches(std::span<const uint64_t> tokens_hashes,
                             bool early_exit = false) const;

  // Blocks held by `owner` (its load metric in relays).
  size_t block_count(WorkerRank owner) const;
  // Nodes in the tree, excluding the root.
  size_t node_count() const { return live_nodes_; }
  // Owners that hold at least one block, sorted.
  std::vector<WorkerRank> owners() const;

  // The owner's blocks as Stored events that rebuild them when applied in order to an
  // empty tree (docs/wire-formats.md#indexer-query): synthetic ids 0,1,2,..., tier
  // device, breadth-first so a parent always comes in an earlier event; each event is a
  // run of consecutive blocks (parent_hash = the block before the run, nullopt at the
  // root); mm_extra_info and start_position are null.
  std::vector<RouterEvent> dump_events(WorkerId worker_id, DpRank dp_rank) const;

  // The owner's content, sorted by block_hash; two trees agree on an owner iff these match.
  std::vector<CanonicalBlock> canonical_blocks(WorkerRank owner) const;
  bool same_content(const RadixTree& other, WorkerRank owner) const;

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint32_t kRoot = 0;

  struct Node {
    uint64_t tokens_hash = 0;
    uint32_t parent = kNil;
    // Children form a doubly-linked sibling list so unlinking is O(1).
    uint32_t first_child = kNil;
    uint32_t next_sibling = kNil;
    uint32_t prev_sibling = kNil;
    bool live = false;
    // One entry per owner holding the block; an owner may appear twice if it stored two
    // block hashes for the same tokens under the same parent.
    NodeOwners owners;
  };
  struct ChildKey {
    uint32_t parent = 0;
    uint64_t tokens_hash = 0;
    bool operator==(const ChildKey&) const = default;
  };
  struct ChildKeyHash {
    size_t operator()(const ChildKey& key) const;
  };
  struct WorkerRankHash {
    size_t operator()(const WorkerRank& key) const;
  };
  struct OwnerState {
    WorkerRank id;
    bool live = false;
    FlatHashMap<BlockHash, uint32_t> blocks;  // block_hash -> node
  };

  uint32_t find_owner(WorkerRank owner) const;
  uint32_t get_or_create_owner(WorkerRank owner);
  void release_owner(uint32_t owner);
  uint32_t child_of(uint32_t parent, uint64_t tokens_hash) const;
  uint32_t create_child(uint32_t parent, uint64_t tokens_hash);
  bool holds(uint32_t node, uint32_t owner) const;
  void erase_entry(uint32_t node, uint32_t owner, BlockHash block_hash);
  // Drops `owner` from every descendant of `node`; returns the entries dropped.
  uint32_t prune_descendants(uint32_t node, uint32_t owner);
  // Frees `node` and its subtree, removing any owner entries found; returns them.
  uint32_t free_subtree(uint32_t node);

  std::vector<Node> nodes_;  // nodes_[kRoot] is the root; it holds no owners
  std::vector<uint32_t> free_nodes_;
  size_t live_nodes_ = 0;
  FlatHashMap<ChildKey, uint32_t, ChildKeyHash> children_;
  std::vector<OwnerState> owners_;
  std::vector<uint32_t> free_owners_;
  FlatHashMap<WorkerRank, uint32_t, WorkerRankHash> owner_index_;
  // Reused traversal stacks (two: pruning frees subtrees while it walks).
  std::vector<uint32_t> prune_stack_;
  std::vector<uint32_t> free_stack_;
};

}  // namespace kvmock
