// Where the producers of router events (simulated engines, relayed real engines) hand them
// over. The producers depend on this interface only; the daemon wires in the publishing
// pipeline, and tests wire in a capturing sink.
#pragma once

#include <cstddef>
#include <vector>

#include "core/events/router_event.h"
#include "core/faults/event_faults.h"

namespace kvmock {

class RouterEventSink {
 public:
  virtual ~RouterEventSink() = default;

  // Publishes the events of one (worker, dp rank) channel, in order. The sink assigns the
  // event ids (the ids given are ignored). Returns how many events were queued after
  // batching and de-duplication. Calls for one channel come from one thread at a time.
  virtual size_t publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) = 0;
  // Publishes a Cleared for (worker, rank): the engine behind it restarted or was cleared.
  virtual void publish_cleared(WorkerId worker, DpRank rank) = 0;
  // Records a load sample; the sink decides when it is published (debounce, heartbeat).
  virtual void update_load(const ActiveLoad& load) = 0;
  // `worker` is gone (a crashed mock worker): no more load of it is published, not even
  // the heartbeat repeating its last one. A later update_load() brings it back.
  virtual void forget_load(WorkerId /*worker*/) {}
  // How many blocks the sink's local indexer holds for (worker, rank): the load a relay
  // reports for an engine it cannot ask.
  virtual size_t block_count(WorkerId worker, DpRank rank) = 0;
  // True while the sink holds events it has no room to send (NATS away longer than the
  // outbox lasts): a producer that can refuse work (a mock worker) refuses new requests.
  virtual bool outbox_full() const = 0;
  // The event faults of `worker`'s channels from now on (docs/faults.md#event-faults): what
  // routers receive is dropped, repeated or delayed; the local indexer still applies every
  // event. Thread-safe. A sink that only records events (tests) ignores them.
  virtual void set_event_faults(WorkerId /*worker*/, const EventFaults& /*faults*/) {}
};

}  // namespace kvmock
