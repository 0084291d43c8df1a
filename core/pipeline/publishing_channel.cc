#include "core/pipeline/publishing_channel.h"

namespace kvmock {

PublishingChannel::PublishingChannel(WorkerId worker, DpRank rank, PublishingChannelOptions options)
    : stream_(worker, rank, WorkerEventStreamOptions{options.batching_timeout_ms}),
      indexer_(worker, rank, options.indexer_buffer_size) {}

ReleasedEvents PublishingChannel::push(std::vector<RouterEvent> events, uint64_t now_ms) {
  std::vector<RouterEvent> numbered;
  numbered.reserve(events.size());
  // The appending push: one vector for the whole call, not one per event.
  for (RouterEvent& event : events) stream_.push(std::move(event), now_ms, numbered);
  return index(std::move(numbered));
}

ReleasedEvents PublishingChannel::poll(uint64_t now_ms) { return index(stream_.poll(now_ms)); }

ReleasedEvents PublishingChannel::flush() { return index(stream_.flush()); }

ReleasedEvents PublishingChannel::index(std::vector<RouterEvent> numbered) {
  ReleasedEvents released;
  for (const RouterEvent& event : numbered) {
    if (!indexer_.apply(event).ok()) ++released.indexer_rejections;
  }
  released.events = std::move(numbered);
  return released;
}

WorkerKvQueryResponse PublishingChannel::query(const WorkerKvQueryRequest& request) const {
  return indexer_.query(request);
}

}  // namespace kvmock
