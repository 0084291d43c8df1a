// Codec for the event-plane envelope (docs/wire-formats.md#event-plane-envelope): the msgpack
// map wrapped around every NATS core publish, keys in Dynamo's encoder order
//   {publisher_id, sequence, published_at, topic, payload (bin)}
// with minimal uint forms. The payload bytes are opaque here (a router event or an
// ActiveLoad in named-field msgpack).
//
// Decoding is order-free and ignores unknown keys (one Dynamo snapshot added
// `published_at_ns`); all five fields are required and `payload` must be bin. Reasons:
// "truncated", "msgpack", "too_deep", "trailing_bytes", "missing_field", "bad_type",
// "bad_value".
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/common/result.h"
#include "core/events/router_event.h"

namespace kvmock {

// Appends the msgpack of `envelope` to `out`.
void encode_event_envelope_msgpack(const EventEnvelope& envelope, std::vector<uint8_t>& out);
std::vector<uint8_t> encode_event_envelope_msgpack(const EventEnvelope& envelope);

// Decodes exactly one envelope spanning all of `bytes`.
Result<EventEnvelope> decode_event_envelope_msgpack(std::span<const uint8_t> bytes);

}  // namespace kvmock
