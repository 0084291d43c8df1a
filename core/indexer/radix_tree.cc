#include "core/indexer/radix_tree.h"

#include <algorithm>
#include <deque>
#include <string>

#include "core/events/store_checks.h"

namespace kvmock {

uint32_t OverlapScores::score(WorkerRank owner) const {
  auto it = std::lower_bound(scores.begin(), scores.end(), owner,
                             [](const auto& entry, WorkerRank key) { return entry.first < key; });
  return it != scores.end() && it->first == owner ? it->second : 0;
}

// FlatHashMap mixes the result again; these only need to combine the fields injectively
// enough that distinct keys rarely collide.
size_t RadixTree::ChildKeyHash::operator()(const ChildKey& key) const {
  return key.tokens_hash ^ (uint64_t{key.parent} * 0x9e3779b97f4a7c15ull);
}

size_t RadixTree::WorkerRankHash::operator()(const WorkerRank& key) const {
  return mix64(key.worker_id) ^ key.dp_rank;
}

RadixTree::RadixTree(size_t expected_blocks) {
  nodes_.reserve(expected_blocks + 1);
  nodes_.emplace_back();
  nodes_[kRoot].live = true;
  children_.reserve(expected_blocks);
}

uint32_t RadixTree::find_owner(WorkerRank owner) const {
  const uint32_t* slot = owner_index_.find(owner);
  return slot == nullptr ? kNil : *slot;
}

uint32_t RadixTree::get_or_create_owner(WorkerRank owner) {
  uint32_t slot = find_owner(owner);
  if (slot != kNil) return slot;
  if (!free_owners_.empty()) {
    slot = free_owners_.back();
    free_owners_.pop_back();
  } else {
    slot = static_cast<uint32_t>(owners_.size());
    owners_.emplace_back();
  }
  owners_[slot].id = owner;
  owners_[slot].live = true;
  owners_[slot].blocks.clear();
  owner_index_.try_emplace(owner, slot);
  return slot;
}

void RadixTree::release_owner(uint32_t owner) {
  OwnerState& state = owners_[owner];
  owner_index_.erase(state.id);
  state.live = false;
  // The table keeps its capacity: the slot is reused by the next owner, typically the same
  // worker coming back after a Cleared with as many blocks as before.
  state.blocks.clear();
  free_owners_.push_back(owner);
}

uint32_t RadixTree::child_of(uint32_t parent, uint64_t tokens_hash) const {
  const uint32_t* child = children_.find(ChildKey{parent, tokens_hash});
  return child == nullptr ? kNil : *child;
}

uint32_t RadixTree::create_child(uint32_t parent, uint64_t tokens_hash) {
  uint32_t index;
  if (!free_nodes_.empty()) {
    index = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& node = nodes_[index];
  node.tokens_hash = tokens_hash;
  node.parent = parent;
  node.first_child = kNil;
  node.prev_sibling = kNil;
  node.next_sibling = nodes_[parent].first_child;
  node.live = true;
  node.owners.clear();
  if (node.next_sibling != kNil) nodes_[node.next_sibling].prev_sibling = index;
  nodes_[parent].first_child = index;
  children_.try_emplace(ChildKey{parent, tokens_hash}, index);
  ++live_nodes_;
  return index;
}

bool RadixTree::holds(uint32_t node, uint32_t owner) const {
  for (const OwnerEntry& entry : nodes_[node].owners) {
    if (entry.owner == owner) return true;
  }
  return false;
}

void RadixTree::erase_entry(uint32_t node, uint32_t owner, BlockHash block_hash) {
  NodeOwners& entries = nodes_[node].owners;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries.view()[i] == OwnerEntry{owner, block_hash}) {
      entries.swap_remove(i);
      return;
    }
  }
}

uint32_t RadixTree::free_subtree(uint32_t top) {
  // Unlink the top from its parent; nodes below go with it.
  Node& head = nodes_[top];
  if (head.prev_sibling != kNil) {
    nodes_[head.prev_sibling].next_sibling = head.next_sibling;
  } else {
    nodes_[head.parent].first_child = head.next_sibling;
  }
  if (head.next_sibling != kNil) nodes_[head.next_sibling].prev_sibling = head.prev_sibling;

  uint32_t dropped = 0;
  std::vector<uint32_t>& stack = free_stack_;
  stack.assign(1, top);
  while (!stack.empty()) {
    const uint32_t index = stack.back();
    stack.pop_back();
    Node& node = nodes_[index];
    for (uint32_t child = node.first_child; child != kNil; child = nodes_[child].next_sibling) {
      stack.push_back(child);
    }
    for (const OwnerEntry& entry : node.owners) {
      owners_[entry.owner].blocks.erase(entry.block_hash);
      ++dropped;
    }
    node.owners.clear();
    children_.erase(ChildKey{node.parent, node.tokens_hash});
    node.live = false;
    node.first_child = node.next_sibling = node.prev_sibling = kNil;
    free_nodes_.push_back(index);
    --live_nodes_;
  }
  return dropped;
}

uint32_t RadixTree::prune_descendants(uint32_t start, uint32_t owner) {
  uint32_t dropped = 0;
  std::vector<uint32_t>& stack = prune_stack_;
  stack.clear();
  for (uint32_t child = nodes_[start].first_child; child != kNil;
       child = nodes_[child].next_sibling) {
    stack.push_back(child);
  }
  while (!stack.empty()) {
    const uint32_t index = stack.back();
    stack.pop_back();
    NodeOwners& entries = nodes_[index].owners;
    const size_t before = entries.size();
    for (size_t i = 0; i < entries.size();) {
      const OwnerEntry entry = entries.view()[i];
      if (entry.owner == owner) {
        owners_[owner].blocks.erase(entry.block_hash);
        entries.swap_remove(i);
      } else {
        ++i;
      }
    }
    const size_t removed_here = before - entries.size();
    if (removed_here == 0) continue;  // prefix-closed: the owner holds nothing below
    dropped += static_cast<uint32_t>(removed_here);
    if (entries.empty()) {
      // Nobody else holds this node, so nobody holds anything below it either.
      dropped += free_subtree(index);
      continue;
    }
    for (uint32_t child = nodes_[index].first_child; child != kNil;
         child = nodes_[child].next_sibling) {
      stack.push_back(child);
    }
  }
  return dropped;
}

Result<ApplyOutcome> RadixTree::apply(const RouterEvent& event) {
  const WorkerRank owner{event.worker_id, event.event.dp_rank};
  return std::visit(
      [&](const auto& data) -> Result<ApplyOutcome> {
        using T = std::decay_t<decltype(data)>;
        if constexpr (std::is_same_v<T, StoreData>) {
          return apply_stored(owner, data);
        } else if constexpr (std::is_same_v<T, RemoveData>) {
          return apply_removed(owner, data);
        } else {
          return clear(owner);
        }
      },
      event.event.data);
}

Result<ApplyOutcome> RadixTree::apply_stored(WorkerRank owner_id, const StoreData& store) {
  if (stores_own_parent(store)) {
    return make_error("invalid_block_sequence",
                      "block " + std::to_string(*store.parent_hash) + " is its own parent");
  }
  if (has_repeated_block_hash(store)) {
    return make_error("invalid_block_sequence", "a block hash repeats within one Stored event");
  }

  uint32_t owner = find_owner(owner_id);
  uint32_t start = kRoot;
  if (store.parent_hash) {
    if (owner == kNil) {
      return make_error("parent_not_found", "parent " + std::to_string(*store.parent_hash) +
                                                " unknown: owner holds no blocks");
    }
    const uint32_t* parent = owners_[owner].blocks.find(*store.parent_hash);
    if (parent == nullptr) {
      return make_error("parent_not_found",
                        "parent " + std::to_string(*store.parent_hash) + " unknown for owner");
    }
    start = *parent;
  }

  // Validate before touching anything so a rejected event leaves no trace. `at` is the node
  // the next block would hang under, kNil once the chain runs into not-yet-created nodes.
  if (owner != kNil) {
    const auto& held = owners_[owner].blocks;
    uint32_t at = start;
    for (const StoredBlock& block : store.blocks) {
      const uint32_t existing_child = at == kNil ? kNil : child_of(at, block.tokens_hash);
      const uint32_t* held_at = held.find(block.block_hash);
      if (held_at != nullptr && *held_at != existing_child) {
        return make_error("block_hash_conflict",
                          "block " + std::to_string(block.block_hash) +
                              " is already held under another parent or tokens_hash");
      }
      at = existing_child;
    }
  }

  ApplyOutcome outcome;
  if (store.blocks.empty()) return outcome;
  owner = get_or_create_owner(owner_id);
  uint32_t at = start;
  for (const StoredBlock& block : store.blocks) {
    uint32_t child = child_of(at, block.tokens_hash);
    if (child == kNil) child = create_child(at, block.tokens_hash);
    if (owners_[owner].blocks.try_emplace(block.block_hash, child).second) {
      nodes_[child].owners.push_back(OwnerEntry{owner, block.block_hash});
      ++outcome.added;
    } else {
      ++outcome.duplicate;
    }
    at = child;
  }
  return outcome;
}

ApplyOutcome RadixTree::apply_removed(WorkerRank owner_id, const RemoveData& remove) {
  ApplyOutcome outcome;
  const uint32_t owner = find_owner(owner_id);
  if (owner == kNil) {
    outcome.unknown = static_cast<uint32_t>(remove.block_hashes.size());
    return outcome;
  }
  for (BlockHash hash : remove.block_hashes) {
    auto& held = owners_[owner].blocks;
    const uint32_t* held_at = held.find(hash);
    if (held_at == nullptr) {
      ++outcome.unknown;
      continue;
    }
    const uint32_t node = *held_at;
    held.erase(hash);
    erase_entry(node, owner, hash);
    ++outcome.removed;
    if (holds(node, owner)) continue;  // still held under another block hash
    outcome.pruned += prune_descendants(node, owner);
    if (nodes_[node].live && nodes_[node].owners.empty()) outcome.pruned += free_subtree(node);
  }
  if (owners_[owner].blocks.empty()) release_owner(owner);
  return outcome;
}

ApplyOutcome RadixTree::clear(WorkerRank owner_id) {
  ApplyOutcome outcome;
  const uint32_t owner = find_owner(owner_id);
  if (owner == kNil) return outcome;
  std::vector<uint32_t> emptied;
  owners_[owner].blocks.for_each([&](BlockHash hash, uint32_t node) {
    erase_entry(node, owner, hash);
    if (nodes_[node].owners.empty()) emptied.push_back(node);
  });
  outcome.cleared = static_cast<uint32_t>(owners_[owner].blocks.size());
  owners_[owner].blocks.clear();
  // Entries are gone, so free_subtree finds none to drop; a node already freed as part of
  // an emptied ancestor's subtree is skipped (nothing is allocated meanwhile).
  for (uint32_t node : emptied) {
    if (nodes_[node].live) free_subtree(node);
  }
  release_owner(owner);
  return outcome;
}

size_t RadixTree::remove_worker(WorkerId worker_id) {
  std::vector<WorkerRank> ranks;
  owner_index_.for_each([&](const WorkerRank& id, uint32_t) {
    if (id.worker_id == worker_id) ranks.push_back(id);
  });
  size_t dropped = 0;
  for (WorkerRank rank : ranks) dropped += clear(rank).cleared;
  return dropped;
}

OverlapScores RadixTree::find_matches(std::span<const uint64_t> tokens_hashes,
                                      bool early_exit) const {
  OverlapScores result;
  if (tokens_hashes.empty()) return result;
  uint32_t node = child_of(kRoot, tokens_hashes[0]);
  if (node == kNil) return result;

  // seen_at[owner] = 1 + the depth at which the owner was last seen holding the node.
  std::vector<uint32_t> seen_at(owners_.size(), 0);
  std::vector<uint32_t> active;
  for (const OwnerEntry& entry : nodes_[node].owners) {
    if (seen_at[entry.owner] != 1) {
      seen_at[entry.owner] = 1;
      active.push_back(entry.owner);
    }
  }
  auto record = [&](uint32_t owner, uint32_t depth) {
    result.scores.emplace_back(owners_[owner].id, depth);
  };

  uint32_t depth = 1;  // blocks matched so far by every active owner
  for (; depth < tokens_hashes.size() && !active.empty(); ++depth) {
    if (early_exit && active.size() == 1) break;
    node = child_of(node, tokens_hashes[depth]);
    if (node == kNil) break;
    const uint32_t mark = depth + 1;
    for (const OwnerEntry& entry : nodes_[node].owners) seen_at[entry.owner] = mark;
    size_t kept = 0;
    for (uint32_t owner : active) {
      if (seen_at[owner] == mark) {
        active[kept++] = owner;
      } else {
        record(owner, depth);
      }
    }
    active.resize(kept);
  }
  for (uint32_t owner : active) record(owner, depth);
  std::sort(result.scores.begin(), result.scores.end());
  return result;
}

size_t RadixTree::block_count(WorkerRank owner) const {
  const uint32_t slot = find_owner(owner);
  return slot == kNil ? 0 : owners_[slot].blocks.size();
}

std::vector<WorkerRank> RadixTree::owners() const {
  std::vector<WorkerRank> result;
  owner_index_.for_each([&](const WorkerRank& id, uint32_t slot) {
    if (!owners_[slot].blocks.empty()) result.push_back(id);
  });
  std::sort(result.begin(), result.end());
  return result;
}

std::vector<RouterEvent> RadixTree::dump_events(WorkerId worker_id, DpRank dp_rank) const {
  std::vector<RouterEvent> events;
  const uint32_t owner = find_owner(WorkerRank{worker_id, dp_rank});
  if (owner == kNil) return events;

  auto emit = [&](std::optional<BlockHash> parent, std::vector<StoredBlock> blocks) {
    RouterEvent event;
    event.worker_id = worker_id;
    event.storage_tier = StorageTier::kDevice;
    event.event.event_id = events.size();
    event.event.dp_rank = dp_rank;
    event.event.data = StoreData{parent, std::move(blocks), std::nullopt};
    events.push_back(std::move(event));
  };
  // Breadth-first over runs: each queue item starts a run whose parent block is known.
  std::deque<std::pair<uint32_t, std::optional<BlockHash>>> queue;
  std::vector<uint32_t> held_children;
  auto collect_held_children = [&](uint32_t node) {
    held_children.clear();
    for (uint32_t child = nodes_[node].first_child; child != kNil;
         child = nodes_[child].next_sibling) {
      if (holds(child, owner)) held_children.push_back(child);
    }
  };
  collect_held_children(kRoot);
  for (uint32_t child : held_children) queue.emplace_back(child, std::nullopt);

  while (!queue.empty()) {
    auto [node, run_parent] = queue.front();
    queue.pop_front();
    std::vector<StoredBlock> run;
    // Extra block hashes the owner holds at a node of this run, with their parent.
    std::vector<std::pair<std::optional<BlockHash>, StoredBlock>> extras;
    for (;;) {
      const std::optional<BlockHash> parent =
          run.empty() ? run_parent : std::optional<BlockHash>(run.back().block_hash);
      bool first = true;
      for (const OwnerEntry& entry : nodes_[node].owners) {
        if (entry.owner != owner) continue;
        StoredBlock block{entry.block_hash, nodes_[node].tokens_hash, std::nullopt};
        if (first) {
          run.push_back(block);
          first = false;
        } else {
          extras.emplace_back(parent, block);
        }
      }
      collect_held_children(node);
      if (held_children.size() == 1 && extras.empty()) {
        node = held_children.front();
        continue;
      }
      for (uint32_t child : held_children) queue.emplace_back(child, run.back().block_hash);
      break;
    }
    emit(run_parent, std::move(run));
    for (auto& [parent, block] : extras) emit(parent, {block});
  }
  return events;
}

std::vector<CanonicalBlock> RadixTree::canonical_blocks(WorkerRank owner_id) const {
  std::vector<CanonicalBlock> result;
  const uint32_t owner = find_owner(owner_id);
  if (owner == kNil) return result;
  result.reserve(owners_[owner].blocks.size());
  owners_[owner].blocks.for_each([&](BlockHash hash, uint32_t node) {
    CanonicalBlock block{hash, nodes_[node].tokens_hash, std::nullopt};
    const uint32_t parent = nodes_[node].parent;
    if (parent != kRoot) {
      for (const OwnerEntry& entry : nodes_[parent].owners) {
        if (entry.owner == owner && (!block.parent_hash || entry.block_hash < *block.parent_hash)) {
          block.parent_hash = entry.block_hash;
        }
      }
    }
    result.push_back(block);
  });
  std::sort(result.begin(), result.end());
  return result;
}

bool RadixTree::same_content(const RadixTree& other, WorkerRank owner) const {
  return canonical_blocks(owner) == other.canonical_blocks(owner);
}

}  // namespace kvmock
