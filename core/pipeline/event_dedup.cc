#include "core/pipeline/event_dedup.h"

#include <utility>
#include <vector>

#include "core/events/store_checks.h"

namespace kvmock {

uint32_t EventDedup::refcount(BlockHash hash, StorageTier tier) const {
  const auto& map = counts_[static_cast<size_t>(tier) % kTiers];
  const uint32_t* count = map.find(hash);
  return count == nullptr ? 0 : *count;
}

std::optional<RouterEvent> EventDedup::filter(RouterEvent event) {
  KvEventData& data = event.event.data;
  if (auto* store = std::get_if<StoreData>(&data)) {
    if (stores_own_parent(*store)) {
      ++counters_.stores_dropped_self_parent;
      return std::nullopt;
    }
    if (has_repeated_block_hash(*store)) {
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
      uint32_t* count = map.find(hash);
      bool last_copy = true;  // unknown hashes pass: the router decides what they mean
      if (count != nullptr) {
        last_copy = --*count == 0;
        if (last_copy) map.erase(hash);
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
