// Mooncake-style JSONL request traces (docs/ARCHITECTURE.md#offline-replay).
//
// One JSON object per line:
//   {"timestamp": 27482, "input_length": 6955, "output_length": 52,
//    "hash_ids": [46, 47, 48, ...], "session_id": "s1", "delay": 1500}
// timestamp (ms; alias created_time), input_length, output_length and hash_ids are the
// request; session_id and delay (ms; alias delay_ms) make multi-turn sessions: the lines
// of one session are its turns in line order, and a later turn is released `delay` ms
// after the previous turn finishes (from the timestamp difference when delay is absent).
// A first turn may not carry a delay. Lines without session_id are single-turn sessions.
//
// Prompts are synthesised from hash_ids: hash id h stands for trace_block_size copies of
// token (uint32)h (Dynamo's rule, so a router hashing the same trace sees the same
// blocks), and the prompt is cut to input_length, which is itself clamped to
// hash_ids.size() x trace_block_size. Equal hash-id prefixes give equal token prefixes,
// hence prefix-cache and router hits at any engine block size.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/tokens/block_hash.h"
#include "core/workload/workload_request.h"

namespace kvmock {

inline constexpr uint32_t kDefaultTraceBlockSize = 512;
// Bounds on one line's prompt so a hostile trace cannot make us allocate without limit.
inline constexpr uint64_t kMaxTraceInputTokens = 1u << 22;
inline constexpr uint32_t kMaxTraceBlockSize = 1u << 20;

struct TraceOptions {
  uint32_t trace_block_size = kDefaultTraceBlockSize;  // in [1, kMaxTraceBlockSize]
  double arrival_speedup = 1.0;                        // divides timestamps and delays; must be > 0
};

// Parses a whole trace. Blank lines are skipped. Requests come back in line order, with
// arrivals shifted so that the earliest first turn arrives at 0, then divided by
// arrival_speedup. Errors: "bad_trace_options" (options out of range), "bad_trace" with
// a message naming the 1-based line number and the field, e.g.
//   line 7: "input_length" must be an integer >= 1
// and "empty_trace" when no line holds a request.
Result<std::vector<WorkloadRequest>> parse_mooncake_trace(std::string_view text,
                                                          const TraceOptions& options);

// The prompt a trace line stands for (see above). input_length is clamped to
// hash_ids.size() x trace_block_size.
std::vector<TokenId> synthesize_trace_prompt(std::span<const uint64_t> hash_ids,
                                             uint64_t input_length, uint32_t trace_block_size);

}  // namespace kvmock
