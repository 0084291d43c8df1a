#include "core/pipeline/event_sequencer.h"

namespace kvmock {

RouterEvent EventSequencer::assign(RouterEvent event) {
  EventId& last = last_[{event.worker_id, event.event.dp_rank}];
  event.event.event_id = ++last;
  return event;
}

EventId EventSequencer::last_assigned(WorkerId worker_id, DpRank dp_rank) const {
  auto it = last_.find({worker_id, dp_rank});
  return it == last_.end() ? 0 : it->second;
}

}  // namespace kvmock
