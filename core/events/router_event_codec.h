// Wire codecs for RouterEvent (docs/wire-formats.md#router-events): JSON as serde_json
// writes it (JetStream path, indexer query replies) and msgpack with named fields as
// rmp_serde::to_vec_named writes it (event-plane payloads).
//
// Encoders write the fields in Dynamo's declaration order:
//   worker_id, storage_tier, [residency_domain], event{event_id, data, dp_rank}
//   data = "cleared" | {"stored":{parent_hash, [start_position], blocks:[{block_hash,
//          tokens_hash, mm_extra_info}]}} | {"removed":{block_hashes}}
// with `mm_extra_info` null or {"mm_objects":[{"mm_hash","offsets":[[s,e],...]}]}.
// Hashes are unsigned (JSON decimal; msgpack minimal uint forms).
//
// Decoders are as tolerant as serde: key order is free, unknown keys are ignored,
// storage_tier defaults to "device", dp_rank to 0, and Option fields (parent_hash,
// start_position, mm_extra_info) to unset when absent; the legacy {worker_id, event}
// shape decodes. Stricter than "anything goes" in the same places serde is: a present
// `residency_domain` must be the string "worker" (null or another type: "bad_type";
// "cache_owner": "unsupported", since RouterEvent cannot carry a cache-owner event),
// explicit null is a type error for non-Option fields, enums are a bare string or a
// single-key map. Errors carry a reason ("json", "msgpack", "truncated",
// "trailing_bytes", "too_deep", "missing_field", "bad_type", "bad_value",
// "unsupported") and a message naming the field path, e.g.
// `event.data.stored.blocks[2].tokens_hash: expected unsigned integer, got string`.
// Duplicate keys: JSON keeps the last, msgpack the first occurrence.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/events/router_event.h"

namespace kvmock {

// Appends the JSON text of `event` to `out`, written directly with no document tree
// (hot path: JetStream publishing). With `fields.start_position` an unset start_position is written
// as null.
void encode_router_event_json(const RouterEvent& event, const RouterEventFieldSet& fields,
                              std::string& out);
std::string encode_router_event_json(const RouterEvent& event,
                                     const RouterEventFieldSet& fields = {});
// Decodes one JSON document (surrounding whitespace allowed, nothing else after it).
Result<RouterEvent> decode_router_event_json(std::string_view json);

// Appends the named-field msgpack of `event` to `out`.
void encode_router_event_msgpack(const RouterEvent& event, const RouterEventFieldSet& fields,
                                 std::vector<uint8_t>& out);
std::vector<uint8_t> encode_router_event_msgpack(const RouterEvent& event,
                                                 const RouterEventFieldSet& fields = {});
// Decodes exactly one msgpack value spanning all of `bytes`.
Result<RouterEvent> decode_router_event_msgpack(std::span<const uint8_t> bytes);

}  // namespace kvmock
