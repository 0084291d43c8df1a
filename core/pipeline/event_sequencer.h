// Event ids as routers expect them (docs/wire-formats.md#event-ids): per
// (worker_id, dp_rank), the first emitted event is 1 and each next one is +1, with no gaps.
// The router's recovery cursor is keyed the same way, so a gap would make it ask for
// events that never existed. Ids carried by the input (engine sequence numbers) are
// overwritten.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "core/events/router_event.h"

namespace kvmock {

class EventSequencer {
 public:
  // Stamps the next id of (event.worker_id, event.event.dp_rank) and returns the event.
  RouterEvent assign(RouterEvent event);

  // The id the last assigned event of this rank carries; 0 before the first.
  EventId last_assigned(WorkerId worker_id, DpRank dp_rank) const;

 private:
  std::map<std::pair<WorkerId, DpRank>, EventId> last_;
};

}  // namespace kvmock
