// The msgpack payload of an engine KV-event message (frame 3 of vLLM's / SGLang's
// `[topic, seq, payload]`), decoded to and encoded from EngineBatch
// (docs/wire-formats.md#engine-payload).
//
// Decoding accepts every shape engines have published:
//   batch   [ts, events] or [ts, events, dp_rank, ...]; ts a float or an int; extra
//           trailing elements ignored.
//   events  tagged arrays ["BlockStored", ...] (every field era of §1.6, from the
//           5-field original to the 11-field cache-spec era; BlockStored needs at least
//           block_hashes, parent_block_hash, token_ids, block_size, BlockRemoved at least
//           block_hashes; fields beyond the known slots ignored) or tagged maps {"type":
//           "BlockStored", ...} (any key order; unknown keys such as locality, ownership,
//           session_id ignored).
//   hashes  uint64, negative int64 (the same 64 bits read as unsigned), or bin (the
//           last 8 bytes big-endian; shorter bins left-padded with zeros).
//   SGLang  positional slot 7 may be `{"cache_salt": s}` instead of lora_name; map
//           events may carry "cache_salt".
//   extra   slot 8 / "extra_keys": per block nil, a tuple (vLLM extra_keys) or a map
//           `{mm_objects: [{mm_hash, offsets}]}` (late-2025 block_mm_infos). Kept
//           verbatim in extra_keys_msgpack; multimodal hashes found in it fill mm_hashes
//           (a 64-hex-digit string or an [identifier, offsets...] array in a tuple, via
//           hash_mm_identifier; mm_hash ints in a block_mm_infos map). A non-hex string
//           in block 0's tuple that differs from lora_name is the cache salt, unless
//           the event named one explicitly.
// An event with an unrecognised tag is skipped and counted in unknown_events. A known
// event that is malformed fails the whole payload: a relay must not forward half a
// batch whose other half it could not read.
//
// Error reasons (Error::reason, a fixed set usable as a metric label):
//   "truncated"      the input ends inside a value, or a length header claims more
//                    bytes or elements than remain (this includes empty input)
//   "msgpack"        the input is not msgpack (the reserved byte 0xc1)
//   "too_deep"       nesting deeper than kEnginePayloadMaxDepth
//   "trailing_bytes" bytes follow the top-level value
//   "not_array"      the top-level value is not an array
//   "bad_batch"      the batch has fewer than 2 elements, ts is not a number, events is
//                    not an array, or dp_rank is not an int or nil
//   "bad_event"      an event is not an array or map, has no string tag / "type", lacks
//                    a required field, or a field has the wrong type or range
//   "bad_hash"       a block hash is not an int or a non-empty bin
//   "bad_tokens"     a token id is not an int in [0, 2^32)
// Messages name the place: `event 1 (BlockStored): token_ids[3] is a string, expected
// uint32`.
//
// Encoding writes msgspec's bytes: minimal int/str/bin/array/map forms, ts as float64,
// the batch always 3 elements (nil rank when unset). See EngineEncodeOptions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/common/result.h"
#include "core/events/engine_event.h"

namespace kvmock {

// Deepest nesting accepted anywhere in a payload (the batch array is level 1). The
// deepest legitimate value, a block_mm_infos offset pair, sits at level 9.
inline constexpr int kEnginePayloadMaxDepth = 32;

// Decodes one payload. Never throws; never reads outside `payload`; memory used is
// bounded by a constant multiple of payload.size() whatever the headers claim (nothing
// is allocated from a claimed length before the bytes for it are known to exist).
Result<EngineBatch> decode_engine_payload(std::span<const uint8_t> payload);

// The same, into `batch`, reusing what an earlier decode left in it: events whose kind
// matches are overwritten in place and keep their vectors' capacity, so a stream decoded
// into one long-lived batch allocates nothing per event once the batch has grown to the
// stream's usual shape (the relay's steady path). Every field of `batch` is rewritten.
// On an error `batch` holds a part of the payload, to be ignored; it stays reusable.
Result<bool> decode_engine_payload(std::span<const uint8_t> payload, EngineBatch& batch);

struct EngineEncodeOptions {
  EngineEventEncoding encoding = EngineEventEncoding::kMap;
  EngineHashEncoding hashes = EngineHashEncoding::kUint64;
};

// Appends the payload for `batch` to `out`. Every event is written in
// `options.encoding`; batch.encoding and batch.hash_encoding are not consulted.
//
// Map events: "type" first, then BlockStored writes block_hashes, parent_block_hash,
// token_ids, block_size, lora_id, medium, lora_name (always, nil when unset), then
// cache_salt, extra_keys, group_idx, kv_cache_spec_kind, kv_cache_spec_sliding_window
// only when set; BlockRemoved writes block_hashes, medium (always), group_idx (when set);
// AllBlocksCleared only "type".
// Positional events: fields in slot order up to the last set slot or up to
// positional_fields, whichever is further (a fresh event, positional_fields 0, gets 7
// fields for BlockStored, through lora_name, and 2 for BlockRemoved); unset slots
// before that are nil. A cache_salt goes to slot 7 as SGLang's `{"cache_salt": s}`
// when lora_name is unset.
// In both encodings cache_salt is left out when extra_keys_msgpack already carries it
// (vLLM's form), so decoded vLLM events re-encode exactly. extra_keys_msgpack is
// written verbatim and must hold one valid msgpack value; mm_hashes is not written
// (it is derived from extra_keys when decoding).
void encode_engine_payload(const EngineBatch& batch, const EngineEncodeOptions& options,
                           std::vector<uint8_t>& out);
std::vector<uint8_t> encode_engine_payload(const EngineBatch& batch,
                                           const EngineEncodeOptions& options);

// Encodes with the encoding and hash form the decoder recorded in `batch`, so a decoded
// msgspec payload comes back byte for byte.
std::vector<uint8_t> reencode_engine_payload(const EngineBatch& batch);

}  // namespace kvmock
