#include "core/pipeline/event_dedup.h"

#include <unordered_set>
#include <utility>
#include <vector>

namespace kvmock {

namespace {

bool has_repeated_hash(const std::vector<StoredBlock>& blocks) {
  if (blocks.size() <= 32) {
    for (size_t i = 1; i < blocks.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (blocks[i].block_hash == blocks[j].block_hash) return true;
      }
    }
    return false;
  }
  std::unordered_set<BlockHash> seen;
  seen.reserve(blocks.size());
  for (const StoredBlock& block : blocks) {
    if (!seen.insert(block.block_hash).second) return true;
  }
  return false;
}

}  // namespace

uint32_t EventDedup::refcount(BlockHash hash, StorageTier tier) const {
  const auto& map = counts_[static_cast<size_t>(tier) % kTiers];
  auto it = map.find(hash);
  return it == map.end() ? 0 : it->second;
}

std::optional<RouterEvent> EventDedup::filter(RouterEvent event) {
  KvEventData& data = event.event.data;
  if (auto* store = std::get_if<StoreData>(&data)) {
    if (store->parent_hash) {
      for (const StoredBlock& block : store->blocks) {
        if (block.block_hash == *store->parent_hash) {
          ++counters_.stores_dropped_self_parent;
          return std::nullopt;
        }
      }
    }
    if (has_repeated_hash(store->blocks)) {
      ++counters_.stores_dropped_repeated_hash;
      return std::nullopt;
    }
    auto& map = counts(event.storage_tier);
    for (const StoredBlock& block : store->blocks) ++map[block.block_hash];
    return event;
  }
  if (auto* remove = std::get_if<RemoveData>(&data)) {
    auto& map = counts(event.storage_tier);
    std::vector<BlockHash>& hashes = remove->block_hashes;
    size_t kept = 0;
    for (BlockHash hash : hashes) {
      auto it = map.find(hash);
      bool last_copy = true;  // unknown hashes pass: the router decides what they mean
      if (it != map.end()) {
        last_copy = --it->second == 0;
        if (last_copy) map.erase(it);
      }
      if (last_copy) {
        hashes[kept++] = hash;
      } else {
        ++counters_.remove_hashes_dropped;
      }
    }
    hashes.resize(kept);
    if (hashes.empty()) {
      ++counters_.removes_dropped;
      return std::nullopt;
    }
    return event;
  }
  for (auto& map : counts_) map.clear();
  return event;
}

}  // namespace kvmock
