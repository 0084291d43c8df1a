#include "core/indexer/local_indexer.h"

#include <algorithm>
#include <string>

namespace kvmock {

LocalIndexer::LocalIndexer(WorkerId worker_id, DpRank dp_rank, size_t buffer_size,
                           size_t expected_blocks)
    : owner_{worker_id, dp_rank},
      capacity_(std::max<size_t>(buffer_size, 1)),
      tree_(expected_blocks) {}

Result<ApplyOutcome> LocalIndexer::apply(const RouterEvent& event) {
  if (event.worker_id != owner_.worker_id || event.event.dp_rank != owner_.dp_rank) {
    ++counters_.foreign_owner;
    return make_error("foreign_owner", "event for worker " + std::to_string(event.worker_id) +
                                           " rank " + std::to_string(event.event.dp_rank));
  }
  if (!buffer_.empty() && event.event.event_id != buffer_.back().event_id() + 1) {
    ++counters_.id_gaps;
  }
  Result<ApplyOutcome> outcome = ApplyOutcome{};
  if (event.storage_tier == StorageTier::kDevice) {
    outcome = tree_.apply(event);
    if (!outcome.ok()) ++counters_.tree_rejected;
  } else {
    ++counters_.non_device;
  }
  buffer_.emplace_back(event);
  if (buffer_.size() > capacity_) buffer_.pop_front();
  ++counters_.applied;
  return outcome;
}

std::optional<EventId> LocalIndexer::first_event_id() const {
  if (buffer_.empty()) return std::nullopt;
  return buffer_.front().event_id();
}

std::optional<EventId> LocalIndexer::last_event_id() const {
  if (buffer_.empty()) return std::nullopt;
  return buffer_.back().event_id();
}

WorkerKvQueryResponse LocalIndexer::query(const WorkerKvQueryRequest& request) const {
  const std::optional<EventId>& start = request.start_event_id;
  const std::optional<EventId>& end = request.end_event_id;
  if (start && end && *end < *start) return QueryInvalidRange{*start, *end};

  const EventId last = buffer_.empty() ? 0 : buffer_.back().event_id();
  auto dump = [&] {
    return QueryTreeDump{tree_.dump_events(owner_.worker_id, owner_.dp_rank), last};
  };
  if (!start || buffer_.empty()) return dump();
  if (*start > last) return QueryTooNew{*start, end.value_or(last), last};
  if (*start < buffer_.front().event_id()) return dump();

  const EventId upto = end ? std::min(*end, last) : last;
  QueryEvents events;
  events.last_event_id = last;
  // A linear scan rather than index arithmetic: ids are normally consecutive, but a
  // publisher bug that broke that must not make us return the wrong events.
  for (const BufferedEvent& event : buffer_) {
    const EventId id = event.event_id();
    if (id >= *start && id <= upto) events.events.push_back(event.expand(owner_));
  }
  return events;
}

}  // namespace kvmock
