#include "tests/support/event_subscriber.h"

#include <gtest/gtest.h>

#include <span>

#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "transport/nats/nats_client.h"

namespace kvmock::testing {

Result<PublishedEvent> decode_published_event(const natsMsg* msg) {
  auto* mutable_msg = const_cast<natsMsg*>(msg);  // nats.c getters are not const-qualified
  const std::span<const uint8_t> data(
      reinterpret_cast<const uint8_t*>(natsMsg_GetData(mutable_msg)),
      static_cast<size_t>(natsMsg_GetDataLength(mutable_msg)));
  auto envelope = decode_event_envelope_msgpack(data);
  if (!envelope) return envelope.error();
  auto event = decode_router_event_msgpack(envelope->payload);
  if (!event) return event.error();
  return PublishedEvent{std::move(*envelope), std::move(*event)};
}

EventSubscriber::EventSubscriber(NatsClient& client, const std::string& subject) {
  EXPECT_EQ(natsConnection_SubscribeSync(&subscription_, client.connection(), subject.c_str()),
            NATS_OK);
  if (subscription_ == nullptr) return;
  natsSubscription_SetPendingLimits(subscription_, -1, -1);
  natsConnection_Flush(client.connection());
}

EventSubscriber::~EventSubscriber() { natsSubscription_Destroy(subscription_); }

std::optional<RouterEvent> EventSubscriber::next(std::chrono::milliseconds timeout) {
  if (subscription_ == nullptr) return std::nullopt;
  natsMsg* msg = nullptr;
  if (natsSubscription_NextMsg(&msg, subscription_, static_cast<int64_t>(timeout.count())) !=
      NATS_OK) {
    return std::nullopt;
  }
  auto published = decode_published_event(msg);
  natsMsg_Destroy(msg);
  EXPECT_TRUE(published.ok()) << (published.ok() ? "" : published.error().message);
  if (!published) return std::nullopt;
  last_envelope_ = std::move(published->envelope);
  return std::move(published->event);
}

std::vector<RouterEvent> EventSubscriber::drain(std::chrono::milliseconds quiet,
                                                std::chrono::milliseconds limit) {
  std::vector<RouterEvent> events;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto event = next(quiet);
    if (!event) break;
    events.push_back(std::move(*event));
  }
  return events;
}

}  // namespace kvmock::testing
