// The local indexer's compact copy of one published event (docs/ARCHITECTURE.md, local
// indexer). A busy worker keeps its last 1,024 events, most of them stored chains of tens
// of blocks, so a stored block is kept as its two hashes (16 bytes) and the multimodal
// information that few blocks carry is kept aside, where a RouterEvent's StoredBlock takes
// 48 bytes. The worker and rank are the indexer's own and are not repeated per event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/events/router_event.h"
#include "core/indexer/radix_tree.h"

namespace kvmock {

class BufferedEvent {
 public:
  explicit BufferedEvent(const RouterEvent& event);

  // The event as it was recorded, with `owner` as its worker and rank.
  RouterEvent expand(WorkerRank owner) const;

  EventId event_id() const { return event_id_; }
  // What the event holds on the heap: the figure its compact form is checked by (tests).
  size_t heap_bytes() const;

 private:
  enum class Kind : uint8_t { kStore, kRemove, kClear };

  EventId event_id_ = 0;
  // Stored: block_hash then tokens_hash for each block, in chain order. Removed: the
  // removed block hashes. Cleared: empty.
  std::vector<uint64_t> hashes_;
  // Stored only: (index of the block in the chain, its multimodal information).
  std::vector<std::pair<uint32_t, MultimodalExtraInfo>> multimodal_;
  std::optional<BlockHash> parent_hash_;
  std::optional<uint32_t> start_position_;
  StorageTier tier_ = StorageTier::kDevice;
  Kind kind_ = Kind::kClear;
};

}  // namespace kvmock
