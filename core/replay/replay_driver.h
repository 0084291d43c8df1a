// Offline replay (docs/ARCHITECTURE.md#offline-replay): N simulated engines driven by one
// virtual clock, as a discrete-event loop with no sleeping.
//
// At each instant t, in this order:
//   1. passes ending at t deliver their outputs (tokens are stamped at pass end);
//      a finished request frees a closed-loop slot and releases its session's next turn
//      (at finish + delay);
//   2. requests due at t are placed on a worker and queued there, in (due time,
//      workload index) order;
//   3. every idle worker with work starts a pass at t; its KV events feed the placement
//      index at once (vLLM makes KV visible at pass start).
// Then t advances to the earliest of: a pass end, an arrival, a session release. The
// run ends when nothing is pending. Everything is iterated in index order, so the same
// inputs give the same records, bit for bit.
//
// Placement: round_robin cycles through workers in dispatch order; kv_aware picks the
// worker whose cached blocks cover the longest prefix of the prompt (a RadixTree fed by
// the workers' own events, hashed at the engine block size), ties broken by the lowest
// active_decode_blocks, then the fewest unfinished requests given to the worker (requests
// queued in the same instant hold no blocks yet, so a burst would otherwise all land on
// one worker), then the lowest worker index.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/engine/engine_args.h"
#include "core/replay/replay_report.h"
#include "core/workload/workload_request.h"

namespace kvmock {

enum class Placement : uint8_t { kRoundRobin, kKvAware };

// "round_robin" | "kv_aware"; Error "bad_placement" otherwise.
Result<Placement> parse_placement(std::string_view text);
std::string_view placement_name(Placement placement);

// A snapshot handed to the progress callback.
struct ReplayProgress {
  double now_ms = 0;
  uint64_t finished = 0;  // completed or failed
  uint64_t total = 0;
  uint64_t output_tokens = 0;  // delivered so far
  uint64_t in_flight = 0;
};

// Most workers one replay may simulate (each holds a whole block pool).
inline constexpr uint32_t kMaxReplayWorkers = 4096;

struct ReplayOptions {
  EngineArgs engine;         // every worker's; dp_size must be 1
  std::string profile_text;  // timing table content when engine.timing.model is kProfile
  uint32_t workers = 1;      // in [1, kMaxReplayWorkers]
  Placement placement = Placement::kRoundRobin;
  // Closed loop when > 0: at most this many requests in flight, dispatched in workload
  // order as slots free; arrival times are ignored and sessions are not allowed.
  uint32_t closed_loop_concurrency = 0;
  // The callback runs each time the simulated clock crosses a multiple of
  // progress_every_ms and each time progress_every_requests more requests finish
  // (0 disables either trigger).
  double progress_every_ms = 0;
  uint64_t progress_every_requests = 0;
  std::function<void(const ReplayProgress&)> on_progress;
};

struct ReplayResult {
  ReplaySummary summary;
  std::vector<RequestRecord> records;  // in workload order
  uint64_t max_in_flight = 0;          // most requests dispatched and not yet finished
  uint64_t passes = 0;
};

// Runs the whole workload. Errors (nothing is run): "bad_replay_options" (workers out
// of range, dp_size != 1, closed loop with sessions), "bad_workload" (an arrival that is
// negative or not finite, a session link to a later request, a prompt longer than 2^32),
// and make_timing_model's reasons.
Result<ReplayResult> run_replay(std::vector<WorkloadRequest> workload,
                                const ReplayOptions& options);

}  // namespace kvmock
