// Turns a channel's numbered router events into the messages of the configured event
// plane. The plane is chosen once, when the pipeline is built:
//  - core NATS: each event msgpack-encoded inside Dynamo's event-plane envelope
//    (publisher id, per-publisher sequence, published_at, topic) on
//    `namespace.{ns}.component.{comp}.{kv_subject}`;
//  - JetStream: each event as JSON, durable, with the Nats-Msg-Id
//    `{publisher_id}-{event_id}` that lets the server drop a re-sent duplicate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/common/clock.h"
#include "core/events/router_event.h"
#include "transport/nats/outbox.h"

namespace kvmock {

// A random publisher id that fits in a JSON-safe integer (< 2^53), as Dynamo masks it.
uint64_t random_publisher_id();

// What one channel's messages carry across calls: its publisher identity.
struct EventPublisherStamp {
  // The envelope's publisher_id (core NATS): the worker's instance id, as a Dynamo 1.0
  // worker sends it (docs/wire-formats.md#event-plane-envelope).
  uint64_t publisher_id = 0;
  // JetStream's Nats-Msg-Id prefix: unique per channel and process, so that a restarted
  // process's ids (which start at 1 again) are not taken for duplicates of the last one's.
  uint64_t msg_id_prefix = random_publisher_id();
  uint64_t next_sequence = 0;  // the envelope sequence (core NATS)
};

struct EventPlaneOptions {
  std::string ns = "dynamo";
  std::string component = "backend";
  std::string kv_subject = "kv-events";
  bool jetstream = false;
  RouterEventFieldSet field_set;
};

class EventPlaneEncoder {
 public:
  virtual ~EventPlaneEncoder() = default;
  // Appends one message per event of `events`, in order, to `out`.
  virtual void encode(const std::vector<RouterEvent>& events, EventPublisherStamp& stamp,
                      std::vector<OutboundMessage>& out) = 0;
  // "nats" or "jetstream", the `plane` label of the pipeline's metrics.
  virtual const char* plane_name() const = 0;
};

// The encoder of the plane `options` selects; `clock` stamps published_at.
std::unique_ptr<EventPlaneEncoder> make_event_plane_encoder(const EventPlaneOptions& options,
                                                            const Clock& clock);

}  // namespace kvmock
