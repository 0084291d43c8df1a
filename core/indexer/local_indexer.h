// The worker-side local indexer of one (worker_id, dp_rank) publisher
// (docs/wire-formats.md#indexer-query): the blocks it holds, as a RadixTree, plus a ring
// buffer of the last `buffer_size` published events, so a router that missed events can
// ask for them (query) or, when they have been evicted, for a full tree dump.
//
// Not thread-safe: owned by the strand that publishes the rank's events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "core/common/result.h"
#include "core/events/router_event.h"
#include "core/indexer/buffered_event.h"
#include "core/indexer/radix_tree.h"

namespace kvmock {

inline constexpr size_t kDefaultIndexerBufferSize = 1024;  // WORKER_KV_INDEXER_BUFFER_SIZE

struct LocalIndexerCounters {
  uint64_t applied = 0;        // events buffered
  uint64_t tree_rejected = 0;  // events the tree refused (still buffered: the id was used)
  uint64_t non_device = 0;     // events of another storage tier (buffered, not in the tree)
  uint64_t id_gaps = 0;        // events whose id was not last + 1
  uint64_t foreign_owner = 0;  // events for another worker or rank (ignored entirely)
};

class LocalIndexer {
 public:
  // `buffer_size` 0 is treated as 1: the newest event is always kept.
  LocalIndexer(WorkerId worker_id, DpRank dp_rank, size_t buffer_size = kDefaultIndexerBufferSize,
               size_t expected_blocks = 0);

  // Records one published event: device-tier events update the tree, then every event is
  // appended to the buffer, evicting the oldest beyond capacity. The id must be the
  // published id; an id other than last + 1 is counted (id_gaps), not refused. Returns the
  // tree's verdict (an error only describes the tree; the event is buffered regardless,
  // since its id went out on the wire). An event for another worker or rank is ignored
  // and yields Error "foreign_owner".
  Result<ApplyOutcome> apply(const RouterEvent& event);

  // Answers a recovery query (§4.2; both bounds inclusive). The caller routes requests by
  // (worker_id, dp_rank); the request's own ids are not checked here.
  //  1. start and end given, end < start  -> InvalidRange{start, end}
  //  2. start absent                      -> TreeDump{dump, last or 0}
  //  3. buffer empty                      -> TreeDump{dump, 0}
  //  4. start > last                      -> TooNew{start, end or last, last}
  //  5. start < first (evicted)           -> TreeDump{dump, last}
  //  6. otherwise                         -> Events{buffered ids in [start, min(end,last)], last}
  WorkerKvQueryResponse query(const WorkerKvQueryRequest& request) const;

  // Blocks currently held (the load metric kv_used_blocks for relays).
  size_t block_count() const { return tree_.block_count(owner_); }
  std::optional<EventId> first_event_id() const;
  std::optional<EventId> last_event_id() const;
  size_t buffered() const { return buffer_.size(); }
  const RadixTree& tree() const { return tree_; }
  const LocalIndexerCounters& counters() const { return counters_; }

 private:
  WorkerRank owner_;
  size_t capacity_;
  RadixTree tree_;
  std::deque<BufferedEvent> buffer_;  // oldest first, compact (buffered_event.h)
  LocalIndexerCounters counters_;
};

}  // namespace kvmock
