// The G2 (host memory) block pool of one engine: which blocks have a copy in pinned
// host memory (docs/ARCHITECTURE.md#g2-offload-tier).
//
// Unlike G1 there are no per-request references: a block is either pinned (an
// onboard transfer is reading it) or sits in an LRU and may be evicted, oldest first,
// to make room for a newer copy. A hash is held at most once; a second insert of the
// same hash is rejected and only refreshes its recency. The pool logs its
// router-visible changes (Stored with the block's G1 parent, Removed) for the owner
// to publish on the host_pinned tier.
//
// Not thread-safe; one pool belongs to one engine.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/events/router_event.h"

namespace kvmock {

class HostPool {
 public:
  enum class Insert : uint8_t {
    kStored,     // new entry (Stored logged; maybe an LRU entry was evicted first)
    kDuplicate,  // already present: nothing stored, recency refreshed
    kFull,       // every entry is pinned: nothing stored
  };

  // `capacity` in blocks; 0 stores nothing.
  explicit HostPool(uint64_t capacity);

  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

  uint64_t capacity() const { return capacity_; }
  uint64_t size() const { return entries_.size(); }
  uint64_t num_pinned() const { return entries_.size() - lru_.size(); }
  bool contains(BlockHash hash) const { return entries_.count(hash) != 0; }

  // Adds a copy of `hash` (whose G1 parent is `parent`), evicting the least recently
  // used unpinned entry when full.
  Insert insert(BlockHash hash, uint64_t tokens_hash, std::optional<BlockHash> parent);

  // Number of leading `hashes` present, stopping at the first miss.
  uint32_t match_prefix(std::span<const BlockHash> hashes) const;

  // A pinned entry cannot be evicted. Pins nest. pin returns false if absent.
  bool pin(BlockHash hash);
  // Drops one pin; the entry becomes the most recently used once unpinned.
  void unpin(BlockHash hash);
  uint32_t pins(BlockHash hash) const;

  // Stored / Removed since the last call, in order.
  std::vector<KvEventData> take_events();

 private:
  struct Entry {
    uint64_t tokens_hash = 0;
    uint32_t pins = 0;
    std::list<BlockHash>::iterator lru;  // valid while pins == 0
  };

  uint64_t capacity_;
  std::unordered_map<BlockHash, Entry> entries_;
  std::list<BlockHash> lru_;  // unpinned entries, oldest first
  std::vector<KvEventData> events_;
};

}  // namespace kvmock
