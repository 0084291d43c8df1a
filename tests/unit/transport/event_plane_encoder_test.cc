#include "transport/nats/event_plane_encoder.h"

#include <gtest/gtest.h>

#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "tests/support/manual_clock.h"
#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::stored;

std::vector<RouterEvent> numbered(std::initializer_list<EventId> ids) {
  std::vector<RouterEvent> events;
  for (EventId id : ids) events.push_back(stored(7, 0, std::nullopt, {{id, id * 10}}, id));
  return events;
}

TEST(EventPlaneEncoder, CoreNatsWrapsEachEventInTheEnvelopeWithThePublishersSequence) {
  test::ManualClock clock;
  auto encoder = make_event_plane_encoder(EventPlaneOptions{}, clock);
  EXPECT_STREQ(encoder->plane_name(), "nats");
  EventPublisherStamp stamp;
  stamp.publisher_id = 7587890000000000001u;  // an instance id: all 64 bits are kept
  std::vector<OutboundMessage> out;
  encoder->encode(numbered({1, 2}), stamp, out);
  encoder->encode(numbered({3}), stamp, out);
  ASSERT_EQ(out.size(), 3u);
  for (uint64_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(*out[i].subject, "namespace.dynamo.component.backend.kv-events");
    EXPECT_FALSE(out[i].durable);
    auto envelope = decode_event_envelope_msgpack(out[i].data);
    ASSERT_TRUE(envelope.ok());
    EXPECT_EQ(envelope->publisher_id, 7587890000000000001u);
    EXPECT_EQ(envelope->sequence, i);
    EXPECT_EQ(envelope->published_at, clock.unix_ms());
    EXPECT_EQ(envelope->topic, "kv-events");
    auto event = decode_router_event_msgpack(envelope->payload);
    ASSERT_TRUE(event.ok());
    EXPECT_EQ(event->event.event_id, i + 1);
  }
}

TEST(EventPlaneEncoder, JetStreamSendsDurableJsonWithAnIdTheServerDeduplicatesBy) {
  test::ManualClock clock;
  EventPlaneOptions options;
  options.jetstream = true;
  auto encoder = make_event_plane_encoder(options, clock);
  EXPECT_STREQ(encoder->plane_name(), "jetstream");
  EventPublisherStamp stamp;
  stamp.msg_id_prefix = 42;
  std::vector<OutboundMessage> out;
  encoder->encode(numbered({5, 6}), stamp, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*out[0].subject, "namespace-dynamo-component-backend-kv-events.kv-events");
  EXPECT_TRUE(out[0].durable);
  EXPECT_EQ(out[0].msg_id, "42-5");
  EXPECT_EQ(out[1].msg_id, "42-6");
  EXPECT_LT(EventPublisherStamp{}.msg_id_prefix, uint64_t{1} << 53);  // random, JSON-safe
  EXPECT_NE(EventPublisherStamp{}.msg_id_prefix, EventPublisherStamp{}.msg_id_prefix);
  auto event = decode_router_event_json(
      std::string_view(reinterpret_cast<const char*>(out[1].data.data()), out[1].data.size()));
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->event.event_id, 6u);
}

}  // namespace
}  // namespace kvmock
