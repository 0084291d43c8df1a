// The per-(worker_id, dp_rank) publishing pipeline in front of the local indexer and the
// event plane: batch (optional) -> dedup -> number. Input is RouterEvents from a mock
// engine or a relay converter (their ids are ignored); output is events carrying the
// published ids 1, 2, 3, ... ready to apply to the rank's LocalIndexer and publish, in
// that order.
//
// Mirrors Dynamo's publisher (docs/wire-formats.md#event-ids): dedup runs on what
// batching emits, and only events that survive dedup consume an id, so ids stay gap-free.
//
// Not thread-safe: one stream per strand.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/events/router_event.h"
#include "core/pipeline/event_batcher.h"
#include "core/pipeline/event_dedup.h"
#include "core/pipeline/event_sequencer.h"

namespace kvmock {

struct WorkerEventStreamOptions {
  uint64_t batching_timeout_ms = 0;  // 0: no batching (Dynamo's default)
};

// Plain numbers for /metrics.
struct WorkerEventStreamCounters {
  uint64_t received = 0;  // events pushed in
  uint64_t merged = 0;    // events absorbed by batching
  uint64_t emitted = 0;   // events numbered and handed out
  EventDedupCounters dedup;
};

class WorkerEventStream {
 public:
  WorkerEventStream(WorkerId worker_id, DpRank dp_rank, WorkerEventStreamOptions options = {});

  // Takes one event; its worker_id and dp_rank are overwritten with the stream's. Returns
  // the numbered events now ready, oldest first.
  std::vector<RouterEvent> push(RouterEvent event, uint64_t now_ms);
  // The same, appending the ready events to `out`: the relay path calls this for every
  // event, and a vector per call would be an allocation per event.
  void push(RouterEvent event, uint64_t now_ms, std::vector<RouterEvent>& out);
  // Emits a batch whose timeout has passed. Call at next_deadline_ms().
  std::vector<RouterEvent> poll(uint64_t now_ms);
  // Emits whatever is pending (shutdown).
  std::vector<RouterEvent> flush();
  // When poll() next has work; nullopt when nothing is pending.
  std::optional<uint64_t> next_deadline_ms() const { return batcher_.next_deadline_ms(); }

  // The id of the last emitted event; 0 before the first.
  EventId last_event_id() const;
  WorkerId worker_id() const { return worker_id_; }
  DpRank dp_rank() const { return dp_rank_; }
  WorkerEventStreamCounters counters() const;

 private:
  // Runs batched output through dedup and numbering.
  std::vector<RouterEvent> finish(std::vector<RouterEvent> batched);
  // Dedup and numbering of one event, appended to `out` if it survives.
  void emit(RouterEvent event, std::vector<RouterEvent>& out);

  WorkerId worker_id_;
  DpRank dp_rank_;
  EventBatcher batcher_;
  EventDedup dedup_;
  EventSequencer sequencer_;
  std::vector<RouterEvent> batched_;  // scratch of push(), reused
  uint64_t received_ = 0;
  uint64_t emitted_ = 0;
};

}  // namespace kvmock
