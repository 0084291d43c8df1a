#include "transport/nats/event_plane_encoder.h"

#include <random>

#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "core/events/subjects.h"

namespace kvmock {
namespace {

class CoreNatsEventEncoder final : public EventPlaneEncoder {
 public:
  CoreNatsEventEncoder(const EventPlaneOptions& options, const Clock& clock)
      : subject_(std::make_shared<const std::string>(
            kv_events_subject(options.ns, options.component, options.kv_subject))),
        topic_(options.kv_subject),
        field_set_(options.field_set),
        clock_(clock) {}

  void encode(const std::vector<RouterEvent>& events, EventPublisherStamp& stamp,
              std::vector<OutboundMessage>& out) override {
    EventEnvelope envelope;  // one for the whole batch: its payload buffer is reused
    envelope.publisher_id = stamp.publisher_id;
    envelope.published_at = clock_.unix_ms();
    envelope.topic = topic_;
    for (const RouterEvent& event : events) {
      OutboundMessage& message = out.emplace_back();
      message.subject = subject_;
      envelope.sequence = stamp.next_sequence++;
      envelope.payload.clear();
      encode_router_event_msgpack(event, field_set_, envelope.payload);
      message.data = encode_event_envelope_msgpack(envelope);
    }
  }
  const char* plane_name() const override { return "nats"; }

 private:
  const std::shared_ptr<const std::string> subject_;
  const std::string topic_;
  const RouterEventFieldSet field_set_;
  const Clock& clock_;
};

class JetStreamEventEncoder final : public EventPlaneEncoder {
 public:
  explicit JetStreamEventEncoder(const EventPlaneOptions& options)
      : subject_(std::make_shared<const std::string>(jetstream_subject(
            jetstream_stream_name(options.ns, options.component), options.kv_subject))),
        field_set_(options.field_set) {}

  void encode(const std::vector<RouterEvent>& events, EventPublisherStamp& stamp,
              std::vector<OutboundMessage>& out) override {
    std::string json;  // one for the whole batch: its buffer is reused
    for (const RouterEvent& event : events) {
      OutboundMessage& message = out.emplace_back();
      message.subject = subject_;
      json.clear();
      encode_router_event_json(event, field_set_, json);
      message.data.assign(json.begin(), json.end());
      message.durable = true;
      message.msg_id =
          std::to_string(stamp.msg_id_prefix) + "-" + std::to_string(event.event.event_id);
    }
  }
  const char* plane_name() const override { return "jetstream"; }

 private:
  const std::shared_ptr<const std::string> subject_;
  const RouterEventFieldSet field_set_;
};

}  // namespace

uint64_t random_publisher_id() {
  std::random_device device;
  const uint64_t value = (static_cast<uint64_t>(device()) << 32) ^ device();
  return value & ((uint64_t{1} << 53) - 1);
}

std::unique_ptr<EventPlaneEncoder> make_event_plane_encoder(const EventPlaneOptions& options,
                                                            const Clock& clock) {
  if (options.jetstream) return std::make_unique<JetStreamEventEncoder>(options);
  return std::make_unique<CoreNatsEventEncoder>(options, clock);
}

}  // namespace kvmock
