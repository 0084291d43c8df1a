#include "core/kv/host_pool.h"

namespace kvmock {

HostPool::HostPool(uint64_t capacity) : capacity_(capacity) {}

HostPool::Insert HostPool::insert(BlockHash hash, uint64_t tokens_hash,
                                  std::optional<BlockHash> parent) {
  if (auto it = entries_.find(hash); it != entries_.end()) {
    Entry& e = it->second;
    if (e.pins == 0) lru_.splice(lru_.end(), lru_, e.lru);
    return Insert::kDuplicate;
  }
  if (entries_.size() >= capacity_) {
    if (lru_.empty()) return Insert::kFull;
    const BlockHash victim = lru_.front();
    lru_.pop_front();
    entries_.erase(victim);
    events_.push_back(RemoveData{{victim}});
  }
  Entry& e = entries_[hash];
  e.tokens_hash = tokens_hash;
  e.lru = lru_.insert(lru_.end(), hash);
  StoreData store;
  store.parent_hash = parent;
  store.blocks.push_back(StoredBlock{hash, tokens_hash, std::nullopt});
  events_.push_back(std::move(store));
  return Insert::kStored;
}

uint32_t HostPool::match_prefix(std::span<const BlockHash> hashes) const {
  uint32_t n = 0;
  for (BlockHash h : hashes) {
    if (!contains(h)) break;
    ++n;
  }
  return n;
}

bool HostPool::pin(BlockHash hash) {
  auto it = entries_.find(hash);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (e.pins == 0) lru_.erase(e.lru);
  ++e.pins;
  return true;
}

void HostPool::unpin(BlockHash hash) {
  auto it = entries_.find(hash);
  if (it == entries_.end() || it->second.pins == 0) return;
  Entry& e = it->second;
  if (--e.pins == 0) e.lru = lru_.insert(lru_.end(), hash);
}

uint32_t HostPool::pins(BlockHash hash) const {
  auto it = entries_.find(hash);
  return it == entries_.end() ? 0 : it->second.pins;
}

std::vector<KvEventData> HostPool::take_events() {
  std::vector<KvEventData> out;
  out.swap(events_);
  return out;
}

}  // namespace kvmock
