// Codecs for ActiveLoad, the worker load metric (docs/wire-formats.md#activeload),
// in named-field msgpack (event-plane payload on `kv_metrics`) and JSON. Field order:
//   {worker_id, dp_rank, active_decode_blocks, active_prefill_tokens, kv_used_blocks}
// with unset values written as nil/null (workers always send active_prefill_tokens null).
//
// Decoding follows serde: order-free, unknown keys ignored (e.g. the router-only
// `scheduler_load_scope`), dp_rank defaults to 0, the three optional counters default
// to unset; worker_id is required. Reasons as in router_event_codec.h.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/events/router_event.h"

namespace kvmock {

// Appends the named-field msgpack of `load` to `out`.
void encode_active_load_msgpack(const ActiveLoad& load, std::vector<uint8_t>& out);
std::vector<uint8_t> encode_active_load_msgpack(const ActiveLoad& load);
Result<ActiveLoad> decode_active_load_msgpack(std::span<const uint8_t> bytes);

// Appends the JSON text of `load` to `out`.
void encode_active_load_json(const ActiveLoad& load, std::string& out);
std::string encode_active_load_json(const ActiveLoad& load);
Result<ActiveLoad> decode_active_load_json(std::string_view json);

}  // namespace kvmock
