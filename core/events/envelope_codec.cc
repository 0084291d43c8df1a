#include "core/events/envelope_codec.h"

#include <limits>

#include "core/events/codec_support.h"

namespace kvmock {

using codec::Kind;
using codec::Path;

void encode_event_envelope_msgpack(const EventEnvelope& envelope, std::vector<uint8_t>& out) {
  codec::MsgpackWriter w(out);
  w.begin_map(5);
  w.key("publisher_id");
  w.u64(envelope.publisher_id);
  w.key("sequence");
  w.u64(envelope.sequence);
  w.key("published_at");
  w.u64(envelope.published_at);
  w.key("topic");
  w.str(envelope.topic);
  w.key("payload");
  w.bin(envelope.payload);
  w.end_map();
}

std::vector<uint8_t> encode_event_envelope_msgpack(const EventEnvelope& envelope) {
  std::vector<uint8_t> out;
  // The map header, five keys, three integers at full width and the str/bin headers come
  // to at most 87 bytes.
  out.reserve(96 + envelope.topic.size() + envelope.payload.size());
  encode_event_envelope_msgpack(envelope, out);
  return out;
}

namespace {

Result<uint64_t> read_required_u64(const codec::MsgNode& map, std::string_view key) {
  const Path root;
  const Path path = root.field(key);
  KVMOCK_ASSIGN_OR_RETURN(codec::MsgNode node, codec::require_field(map, key, path));
  return codec::read_u64(node, path);
}

}  // namespace

Result<EventEnvelope> decode_event_envelope_msgpack(std::span<const uint8_t> bytes) {
  auto handle = codec::unpack_msgpack(bytes);
  if (!handle) return handle.error();
  const codec::MsgNode root{&handle->get()};
  const Path root_path;
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(root, Kind::kMap, root_path));

  EventEnvelope envelope;
  KVMOCK_ASSIGN_OR_RETURN(envelope.publisher_id, read_required_u64(root, "publisher_id"));
  KVMOCK_ASSIGN_OR_RETURN(envelope.sequence, read_required_u64(root, "sequence"));
  KVMOCK_ASSIGN_OR_RETURN(envelope.published_at, read_required_u64(root, "published_at"));

  const Path topic_path = root_path.field("topic");
  KVMOCK_ASSIGN_OR_RETURN(codec::MsgNode topic, codec::require_field(root, "topic", topic_path));
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(topic, Kind::kString, topic_path));
  envelope.topic = std::string(codec::node_str(topic));

  const Path payload_path = root_path.field("payload");
  KVMOCK_ASSIGN_OR_RETURN(codec::MsgNode payload,
                          codec::require_field(root, "payload", payload_path));
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(payload, Kind::kBin, payload_path));
  const auto body = codec::node_bin(payload);
  envelope.payload.assign(body.begin(), body.end());
  return envelope;
}

}  // namespace kvmock
