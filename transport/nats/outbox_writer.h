// The hand-off from the pipeline's stages to the Outbox: messages go in whole and in order,
// and while the outbox is full the calling source waits (backpressure: sources slow down,
// nothing is dropped). Each wait is counted and logged at a rate limit.
//
// Thread-safe (the Outbox is); callers that need their messages in order across calls
// serialise those calls themselves.
#pragma once

#include <vector>

#include "transport/metrics/metrics_registry.h"
#include "transport/nats/outbox.h"

namespace kvmock {

class OutboxWriter {
 public:
  OutboxWriter(Outbox& outbox, MetricsRegistry& metrics);

  // Appends every message of `messages` in order, waiting for room as long as it takes.
  void push_all(std::vector<OutboundMessage>& messages);
  void push(OutboundMessage message);

  Outbox& outbox() { return outbox_; }

 private:
  void note_backpressure();

  Outbox& outbox_;
  Counter* backpressure_waits_;
};

}  // namespace kvmock
