// Optional merging of adjacent events before they are numbered
// (docs/wire-formats.md#event-ids, Dynamo's batching_timeout_ms). Fewer, larger
// events cost the router less; off by default, in which case every event passes through.
//
// At most one event is pending. An incoming event merges into it when both have the same
// worker, dp_rank and storage tier and
//   - both are Removed (hashes concatenate), or
//   - both are Stored and the new one's parent_hash is the pending chain's last block
//     (blocks concatenate; the chain stays one run),
// and the merged event would hold at most kMaxBatchBlocks blocks (hashes for Removed).
// Otherwise the pending event is flushed and the new one becomes pending. Cleared flushes
// and passes at once. A batch is flushed when it reaches kMaxBatchBlocks, when the timeout
// has passed since it started (checked by push and poll), or by flush(). A single event
// larger than kMaxBatchBlocks passes alone. Each flush yields exactly one event.
//
// Not thread-safe. Time is the caller's monotonic milliseconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/events/router_event.h"

namespace kvmock {

inline constexpr uint64_t kMaxBatchingTimeoutMs = 15000;
inline constexpr size_t kMaxBatchBlocks = 128;

class EventBatcher {
 public:
  // `timeout_ms` 0 turns batching off; larger values are capped at kMaxBatchingTimeoutMs.
  explicit EventBatcher(uint64_t timeout_ms = 0);

  bool enabled() const { return timeout_ms_ > 0; }
  uint64_t timeout_ms() const { return timeout_ms_; }

  // Takes one event; returns the events ready to go, oldest first (0, 1 or 2 of them).
  std::vector<RouterEvent> push(RouterEvent event, uint64_t now_ms);
  // The same, appending the ready events to `out` (no vector of its own per event).
  void push(RouterEvent event, uint64_t now_ms, std::vector<RouterEvent>& out);
  // Returns the pending event if its timeout has passed.
  std::vector<RouterEvent> poll(uint64_t now_ms);
  // Returns the pending event, if any, regardless of time (shutdown, tests).
  std::vector<RouterEvent> flush();
  // When poll() next has something to do; nullopt when nothing is pending.
  std::optional<uint64_t> next_deadline_ms() const;

  size_t pending_blocks() const;
  // Events absorbed into an earlier one (input events minus output events).
  uint64_t merged() const { return merged_; }

 private:
  bool can_merge(const RouterEvent& event) const;
  void flush_into(std::vector<RouterEvent>& out);

  uint64_t timeout_ms_;
  std::optional<RouterEvent> pending_;
  uint64_t pending_since_ms_ = 0;
  uint64_t merged_ = 0;
};

}  // namespace kvmock
