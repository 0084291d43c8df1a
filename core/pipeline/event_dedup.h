// Drops repeated removals before they reach the router (docs/wire-formats.md#event-ids). Engines
// can report one block hash several times (vLLM stores a block again when another request
// recomputes it); the router must hear Removed only when the last copy is gone, so each block hash
// carries a reference count per storage tier.
//
//   Stored  passes and counts each block once more.
//   Removed keeps only the hashes whose count drops to 0, plus hashes never stored; when
//           none is left (or none was given) the whole event is dropped.
//   Cleared passes and forgets every count.
//
// Stores that cannot describe a chain are dropped, counted, and do not touch the counts:
// a block whose hash equals parent_hash, or a hash repeated within the event.
//
// One instance per (worker_id, dp_rank) stream. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/common/flat_hash_map.h"
#include "core/events/router_event.h"

namespace kvmock {

struct EventDedupCounters {
  uint64_t removes_dropped = 0;        // Removed events dropped whole (nothing left)
  uint64_t remove_hashes_dropped = 0;  // hashes taken out of Removed events (copies remain)
  uint64_t stores_dropped_self_parent = 0;
  uint64_t stores_dropped_repeated_hash = 0;
  bool operator==(const EventDedupCounters&) const = default;
};

class EventDedup {
 public:
  // Returns the event to pass on (a Removed may have lost hashes), or nullopt if dropped.
  std::optional<RouterEvent> filter(RouterEvent event);

  // Copies of `hash` currently counted in `tier`.
  uint32_t refcount(BlockHash hash, StorageTier tier = StorageTier::kDevice) const;
  const EventDedupCounters& counters() const { return counters_; }

 private:
  static constexpr size_t kTiers = 4;  // StorageTier values

  FlatHashMap<BlockHash, uint32_t>& counts(StorageTier tier) {
    return counts_[static_cast<size_t>(tier) % kTiers];
  }

  // A host copy and a device copy of a block are different copies: removing one must not
  // be hidden by the other.
  std::array<FlatHashMap<BlockHash, uint32_t>, kTiers> counts_;
  EventDedupCounters counters_;
};

}  // namespace kvmock
