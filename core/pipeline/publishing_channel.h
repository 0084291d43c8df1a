// One (worker_id, dp_rank) channel of the publishing pipeline, up to the event plane: the
// event stream (batch, dedup, number) followed by the rank's local indexer. Every event
// the stream releases is applied to the indexer before it is handed out, whichever way it
// was released (a push, a batching timeout, the shutdown flush), so a router that queries
// the indexer never sees an id that has not been indexed.
//
// Not thread-safe: the owner serialises calls (the pipeline holds the channel's lock).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/events/router_event.h"
#include "core/indexer/local_indexer.h"
#include "core/pipeline/worker_event_stream.h"

namespace kvmock {

struct PublishingChannelOptions {
  uint64_t batching_timeout_ms = 0;  // 0: every event is released on its own
  size_t indexer_buffer_size = kDefaultIndexerBufferSize;
};

// Events released by a channel: numbered, applied to the indexer, ready to encode.
struct ReleasedEvents {
  std::vector<RouterEvent> events;
  uint64_t indexer_rejections = 0;  // of `events`, those the indexer's tree refused
};

class PublishingChannel {
 public:
  PublishingChannel(WorkerId worker, DpRank rank, PublishingChannelOptions options = {});

  // Takes a producer's events (their ids are ignored) and releases those now ready.
  ReleasedEvents push(std::vector<RouterEvent> events, uint64_t now_ms);
  // Releases a batch whose timeout has passed. Call at next_deadline_ms().
  ReleasedEvents poll(uint64_t now_ms);
  // Releases whatever is pending (shutdown).
  ReleasedEvents flush();
  // When poll() next has work; nullopt when nothing is pending.
  std::optional<uint64_t> next_deadline_ms() const { return stream_.next_deadline_ms(); }

  // The indexer's answer to a router's recovery query.
  WorkerKvQueryResponse query(const WorkerKvQueryRequest& request) const;
  size_t block_count() const { return indexer_.block_count(); }
  // The id of the last released event; 0 before the first.
  EventId last_event_id() const { return stream_.last_event_id(); }

 private:
  // The one place where released events meet the indexer.
  ReleasedEvents index(std::vector<RouterEvent> numbered);

  WorkerEventStream stream_;
  LocalIndexer indexer_;
};

}  // namespace kvmock
