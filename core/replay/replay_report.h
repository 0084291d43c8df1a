// What an offline replay measured (docs/ARCHITECTURE.md#offline-replay): per-request records,
// latency distributions, throughput over simulated time, and their JSON rendering.
//
// Latencies count completed requests only (rejected ones are excluded), in simulated ms:
//   TTFT = first token - arrival           TTST = second token - first token
//   TPOT = (last - first) / (n - 1), n >= 2 tokens, one sample per request
//   ITL  = every gap between consecutive tokens of a request
//   E2E  = finish - arrival
// Percentiles are exact: linear interpolation between the two nearest ranks of the
// sorted sample (numpy's default), p in [0, 100]. std is the population deviation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvmock {

// One request's life in a replay.
struct RequestRecord {
  uint64_t id = 0;  // index in the workload
  uint32_t worker = 0;
  bool dispatched = false;
  double arrival_ms = 0;  // when it was given to a worker
  std::optional<double> first_token_ms;
  std::optional<double> second_token_ms;
  double last_token_ms = 0;
  std::optional<double> finish_ms;
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;
  uint32_t cached_tokens = 0;  // prompt tokens served from the prefix cache at first admission
  bool completed = false;      // finished with its full output
  // Why a request did not complete: an engine reason ("exceeds_kv_capacity", ...) or
  // "incomplete" when the run ended first. Empty when completed. Points at a literal.
  std::string_view error;
};

struct Distribution {
  uint64_t count = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  double p50 = 0;
  double p75 = 0;
  double p90 = 0;
  double p95 = 0;
  double p99 = 0;
  double std = 0;
};

// Linear-interpolated percentile of an ascending, non-empty sample.
double percentile(const std::vector<double>& sorted, double p);

// All statistics of a sample (any order). An empty sample gives all zeros.
Distribution summarize(std::vector<double> samples);

// The G2 (host) offload tier over a whole replay, summed over the workers' engine
// counters (core/engine/pass_output.h EngineMetrics). All zero when G2 is off.
struct G2Summary {
  bool enabled = false;
  uint64_t onboard_hit_tokens = 0;  // prompt tokens served by onboarding blocks from G2
  uint64_t bytes_offloaded = 0;     // finished G1->G2 copies
  uint64_t bytes_onboarded = 0;     // finished G2->G1 copies
  uint64_t blocks_offloaded = 0;    // blocks newly stored in G2
  uint64_t offloads_dropped = 0;    // evicted blocks lost because G2 was full of pinned blocks
};

struct ReplaySummary {
  uint32_t workers = 0;
  std::string placement;
  uint64_t requests = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;         // rejected by an engine or left incomplete
  double duration_ms = 0;      // simulated: from 0 to the last event
  uint64_t input_tokens = 0;   // completed requests
  uint64_t output_tokens = 0;  // completed requests
  uint64_t cached_tokens = 0;  // completed requests
  uint64_t preemptions = 0;
  double requests_per_s = 0;  // completed / simulated seconds
  double input_tokens_per_s = 0;
  double output_tokens_per_s = 0;
  double prefix_cache_reuse_ratio = 0;  // cached / input tokens
  Distribution ttft_ms;
  Distribution ttst_ms;
  Distribution tpot_ms;
  Distribution itl_ms;
  Distribution e2e_ms;
  G2Summary g2;
};

// Builds the summary. `itl_ms` holds every inter-token gap of the run (of completed
// requests); `records` all requests.
ReplaySummary summarize_replay(const std::vector<RequestRecord>& records,
                               std::vector<double> itl_ms, uint64_t preemptions,
                               double duration_ms);

// The report as pretty JSON with a fixed key order. wall_time_ms, the only field that
// differs between identical runs, is omitted when nullopt. The last key, "g2", is always
// present: {"enabled","onboard_hit_tokens","blocks_offloaded","offloads_dropped",
// "bytes_moved":{"offload","onboard"}}.
std::string render_report_json(const ReplaySummary& summary, std::optional<double> wall_time_ms);

// One human-readable line (no newline) on the G2 tier: onboard hit tokens, bytes moved per
// link, blocks offloaded and dropped. Empty when G2 is off.
std::string render_g2_text(const G2Summary& g2);

// One JSON line (ending in '\n') for the per-request output:
// {"id","worker","status","arrival_ms","first_token_ms","finish_ms","input_tokens",
//  "output_tokens","cached_tokens"}; absent times are null; status is "completed" or
// the failure reason.
std::string render_request_line(const RequestRecord& record);

}  // namespace kvmock
