// The simulated G1 (GPU) KV block pool of one engine, modelled on vLLM's physical pool
// (docs/ARCHITECTURE.md#block-pool).
//
// A slot ("copy") is either private to one request (allocated, contents not yet
// computed, invisible to prefix matching) or cached under a sequence hash with a
// reference count and a pin count. Cached slots with no references and no pins are
// inactive: they stay matchable but sit in an LRU and are evicted, oldest first, when
// fresh slots are needed. Several slots may hold the same hash (two requests computed
// the same block privately); each consumes capacity but the router sees the hash once:
// Stored when the first copy becomes cached, Removed when the last copy is evicted.
//
// The pool records the router-visible changes it makes as a log of KvEventData
// (Stored / Removed, storage tier device, event ids left to the publisher); the owner
// drains it with take_events(). With `publish_events` false the log stays empty.
//
// Not thread-safe; one pool belongs to one engine (one dp rank).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/common/flat_hash_map.h"
#include "core/events/router_event.h"

namespace kvmock {

using SlotId = uint32_t;

// Told about every cached copy the pool evicts, before the slot is reused. This is the
// seam for a G2 offload tier: an observer can copy the block out (the block's identity
// and lineage are in the arguments).
class EvictionObserver {
 public:
  virtual ~EvictionObserver() = default;
  // `last_copy` is true when no other copy of `hash` remains (a Removed was logged).
  virtual void on_evict(BlockHash hash, uint64_t tokens_hash, std::optional<BlockHash> parent,
                        bool last_copy) = 0;
  // Asked right after on_evict: return true to take a copy of the block out, in which
  // case the freed slot stays held (unusable) until BlockPool::release_held(hash).
  // At most one held slot per hash may be requested at a time.
  virtual bool hold_for_copy(BlockHash hash, bool last_copy) {
    (void)hash;
    (void)last_copy;
    return false;
  }
};

class BlockPool {
 public:
  // Result of a read-only prefix lookup.
  struct PrefixMatch {
    uint32_t blocks = 0;         // leading hashes with at least one cached copy
    uint32_t active_blocks = 0;  // of those, hashes with a referenced or pinned copy
  };

  // A block that has just been computed, to be published under its hash.
  struct CommitBlock {
    SlotId slot = 0;
    BlockHash hash = 0;
    uint64_t tokens_hash = 0;
  };

  enum class Allocation : uint8_t {
    kDone,            // slots appended to *out
    kNoSpace,         // too few free plus evictable slots; no side effect
    kWaitForOffload,  // evicted enough, but some freed slots are held for a copy-out
  };

  // `capacity` is in blocks; values above 2^32 - 1 are clamped.
  BlockPool(uint64_t capacity, bool publish_events);

  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  uint64_t capacity() const { return capacity_; }
  // Slots holding nothing.
  uint64_t num_free() const { return capacity_ - num_occupied(); }
  // Cached slots nobody references or pins (evictable).
  uint64_t num_inactive() const { return num_inactive_; }
  // Slots that cannot be evicted: private, referenced, pinned or held.
  uint64_t num_active() const { return num_occupied() - num_inactive_; }
  // Number of cached copies of `hash` (0 when unknown).
  uint32_t copies(BlockHash hash) const;

  // Longest run of leading `hashes` that are cached, stopping at the first miss.
  PrefixMatch match_prefix(std::span<const BlockHash> hashes) const;

  // Atomically takes a reference on one cached copy of each of `prefix` (a referenced
  // copy is preferred; otherwise an inactive copy leaves the LRU) and `fresh` private
  // slots, evicting inactive copies oldest first. The inactive copies of `prefix` are
  // never evicted to make room for this same call. On success appends the prefix slots
  // then the fresh slots to `*out` and returns true. Returns false, with no side effect
  // at all, when a prefix hash is not cached or free plus evictable slots are too few
  // (or, with an observer that holds evicted slots, as try_allocate's kWaitForOffload).
  bool allocate(std::span<const BlockHash> prefix, uint32_t fresh, std::vector<SlotId>* out);

  // allocate() that tells why it failed. With an observer that holds evicted slots
  // (hold_for_copy) the evictions needed are made, the prefix references are rolled
  // back, and kWaitForOffload is returned when a held slot was among them: the caller
  // should retry once release_held() has run instead of evicting more.
  Allocation try_allocate(std::span<const BlockHash> prefix, uint32_t fresh,
                          std::vector<SlotId>* out);

  // Frees the slot held for `hash` (see EvictionObserver::hold_for_copy). No-op when
  // nothing is held for it.
  void release_held(BlockHash hash);
  // Slots held for a copy-out.
  uint64_t num_held() const { return held_.size(); }

  // Turns computed private slots into cached copies (one reference each, held by the
  // caller). `blocks` must be consecutive blocks of one sequence, `parent` the hash of
  // the block before the first (nullopt at the root). Hashes that gain their first copy
  // are logged as Stored events; consecutive such blocks share one event whose parent
  // is the block before the first of them. A slot that is not private is ignored.
  void commit(std::optional<BlockHash> parent, std::span<const CommitBlock> blocks);

  // Drops the caller's hold on `slots`, walking from the last to the first so that a
  // sequence's leaf enters the LRU before its parents and is evicted first. Private
  // slots become free; cached ones become inactive when unreferenced and unpinned.
  void release(std::span<const SlotId> slots);

  // Pins keep a cached copy resident without a reference (e.g. a prefix held while a
  // lower tier onboards the rest). pin returns false if `hash` is not cached.
  bool pin(BlockHash hash);
  void unpin(BlockHash hash);

  // The router-visible changes since the last call, in order.
  std::vector<KvEventData> take_events();

  void set_eviction_observer(EvictionObserver* observer) { observer_ = observer; }

 private:
  static constexpr SlotId kNil = UINT32_MAX;
  enum class State : uint8_t { kFree, kPrivate, kCached, kHeld };

  struct Slot {
    BlockHash hash = 0;
    uint64_t tokens_hash = 0;
    std::optional<BlockHash> parent;
    uint32_t refs = 0;
    uint32_t pins = 0;
    SlotId lru_prev = kNil;  // intrusive LRU links, valid while inactive
    SlotId lru_next = kNil;
    // The next cached copy of the same hash, in commit order (kNil: the last). A hash
    // almost always has one copy, so a link here costs less than a list per hash.
    SlotId next_copy = kNil;
    State state = State::kFree;  // last: the members above pack without padding
  };

  uint64_t num_occupied() const { return slots_.size() - free_ids_.size(); }
  bool is_inactive(const Slot& s) const {
    return s.state == State::kCached && s.refs == 0 && s.pins == 0;
  }
  // The copy of `hash` to use: a referenced or pinned one if any, else the first.
  SlotId pick_copy(BlockHash hash) const;
  SlotId take_free_slot();
  // The first cached copy of `hash`, kNil when there is none.
  SlotId first_copy(BlockHash hash) const;
  // Appends cached slot `id` to the copies that start at `first` (same hash).
  void append_copy(SlotId first, SlotId id);
  // Unlinks cached slot `id` from the copies of its hash; true when it was the last one.
  bool unlink_copy(SlotId id);
  // Returns false when the evicted slot was held instead of freed.
  bool evict_oldest(std::vector<BlockHash>* removed);
  void lru_push_newest(SlotId id);
  void lru_unlink(SlotId id);
  void drop_reference(SlotId id);

  uint64_t capacity_;
  bool publish_events_;
  std::vector<Slot> slots_;       // grows on demand up to capacity_
  std::vector<SlotId> free_ids_;  // recycled slots below slots_.size()
  // The first cached copy of each hash; the others follow through Slot::next_copy.
  FlatHashMap<BlockHash, SlotId> first_copy_;
  SlotId lru_head_ = kNil;  // oldest inactive
  SlotId lru_tail_ = kNil;  // newest inactive
  uint64_t num_inactive_ = 0;
  std::vector<KvEventData> events_;
  EvictionObserver* observer_ = nullptr;        // not owned; may be null
  std::unordered_map<BlockHash, SlotId> held_;  // slots kept for a copy-out, by hash
};

}  // namespace kvmock
