#include "core/pipeline/worker_event_stream.h"

#include <utility>

namespace kvmock {

WorkerEventStream::WorkerEventStream(WorkerId worker_id, DpRank dp_rank,
                                     WorkerEventStreamOptions options)
    : worker_id_(worker_id), dp_rank_(dp_rank), batcher_(options.batching_timeout_ms) {}

std::vector<RouterEvent> WorkerEventStream::push(RouterEvent event, uint64_t now_ms) {
  std::vector<RouterEvent> out;
  push(std::move(event), now_ms, out);
  return out;
}

void WorkerEventStream::push(RouterEvent event, uint64_t now_ms, std::vector<RouterEvent>& out) {
  ++received_;
  event.worker_id = worker_id_;
  event.event.dp_rank = dp_rank_;
  batched_.clear();
  batcher_.push(std::move(event), now_ms, batched_);
  for (RouterEvent& ready : batched_) emit(std::move(ready), out);
}

std::vector<RouterEvent> WorkerEventStream::poll(uint64_t now_ms) {
  return finish(batcher_.poll(now_ms));
}

std::vector<RouterEvent> WorkerEventStream::flush() { return finish(batcher_.flush()); }

std::vector<RouterEvent> WorkerEventStream::finish(std::vector<RouterEvent> batched) {
  std::vector<RouterEvent> out;
  out.reserve(batched.size());
  for (RouterEvent& event : batched) emit(std::move(event), out);
  return out;
}

void WorkerEventStream::emit(RouterEvent event, std::vector<RouterEvent>& out) {
  std::optional<RouterEvent> kept = dedup_.filter(std::move(event));
  if (!kept) return;
  out.push_back(sequencer_.assign(std::move(*kept)));
  ++emitted_;
}

EventId WorkerEventStream::last_event_id() const {
  return sequencer_.last_assigned(worker_id_, dp_rank_);
}

WorkerEventStreamCounters WorkerEventStream::counters() const {
  return WorkerEventStreamCounters{received_, batcher_.merged(), emitted_, dedup_.counters()};
}

}  // namespace kvmock
