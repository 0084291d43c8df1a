// A router's view of the core-NATS event plane for tests: a synchronous subscription that
// decodes each message as Dynamo does (msgpack envelope around a msgpack RouterEvent).
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/events/router_event.h"

namespace kvmock {
class NatsClient;
}

namespace kvmock::testing {

struct PublishedEvent {
  EventEnvelope envelope;
  RouterEvent event;
};

// Decodes one event-plane message; does not take ownership of `msg`.
Result<PublishedEvent> decode_published_event(const natsMsg* msg);

class EventSubscriber {
 public:
  // Subscribes without a pending limit and flushes, so nothing published afterwards is
  // missed or dropped by a slow test.
  EventSubscriber(NatsClient& client, const std::string& subject);
  ~EventSubscriber();
  EventSubscriber(const EventSubscriber&) = delete;
  EventSubscriber& operator=(const EventSubscriber&) = delete;

  bool subscribed() const { return subscription_ != nullptr; }
  // The next event; nullopt after `timeout` with nothing. An undecodable message fails the
  // calling test and also yields nullopt.
  std::optional<RouterEvent> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Every event until the subject has been quiet for `quiet`, at most for `limit`.
  std::vector<RouterEvent> drain(std::chrono::milliseconds quiet,
                                 std::chrono::milliseconds limit = std::chrono::seconds(15));
  const EventEnvelope& last_envelope() const { return last_envelope_; }

 private:
  natsSubscription* subscription_ = nullptr;
  EventEnvelope last_envelope_;
};

}  // namespace kvmock::testing
