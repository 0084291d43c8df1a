// What one engine pass reports: per-request outputs, KV events, load metrics and the
// forward-pass metrics of docs/wire-formats.md#prometheus-metrics. Plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/request.h"
#include "core/events/router_event.h"

namespace kvmock {

// vLLM's finish reasons (RequestStatus.get_finished_reason), so intakes and metrics use
// vLLM's words unchanged.
enum class FinishReason : uint8_t {
  kNone,    // still running
  kLength,  // reached max_tokens (or max_model_len)
  kStop,    // an EOS, a stop token, or stop() (a stop string matched)
  kAbort,   // cancel() was called
  kError,   // can never run; see RequestOutput::error
};

// Wire name of a finish reason: "length", "stop", "abort", "error" ("" for kNone).
std::string_view finish_reason_name(FinishReason reason);

// One request's news from one pass. A live request appears at most once per pass;
// cancellations made since the previous pass come first.
struct RequestOutput {
  RequestId id = 0;
  uint32_t handle = 0;          // Request::handle
  std::vector<TokenId> tokens;  // emitted this pass (at most one today)
  bool admitted = false;        // first admitted to running in this pass
  bool first_token = false;     // tokens[0] is the request's first output token
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  std::string_view error;      // kError only: a stable reason literal
  uint32_t cached_tokens = 0;  // prompt tokens served from the prefix cache at first admission
  uint32_t num_generated = 0;  // output tokens so far, including this pass
  // kStop by a stop_token_ids entry: that id (also the last of `tokens`, as vLLM keeps it).
  std::optional<TokenId> matched_stop_token;
};

// Engine load, as of the end of the pass (MockerMetrics / ActiveLoad).
struct EngineMetrics {
  uint64_t active_blocks = 0;  // G1 blocks that cannot be evicted (referenced, pinned, private)
  uint64_t total_blocks = 0;
  double gpu_cache_usage = 0;  // active / total, in [0, 1]
  uint32_t running_requests = 0;
  uint32_t waiting_requests = 0;
  // Names of the LoRA adapters with running / waiting requests, sorted (vLLM's
  // lora_requests_info labels); empty when no request names an adapter.
  std::vector<std::string> running_lora_adapters;
  std::vector<std::string> waiting_lora_adapters;
  uint64_t preemptions_total = 0;
  uint64_t prefix_cache_queries_tokens = 0;  // cumulative: sequence tokens looked up at admission
  uint64_t prefix_cache_hits_tokens = 0;     // cumulative: of those, served from cache
                                             // (G1 hits, including blocks onboarded from G2)
  // G2 (host) offload tier; all zero when G2 is off.
  uint64_t g2_total_blocks = 0;
  uint64_t g2_used_blocks = 0;
  double g2_usage = 0;                       // used / total, in [0, 1]
  uint64_t g2_pinned_blocks = 0;             // G2 blocks pinned by onboard transfers
  uint32_t onboarding_requests = 0;          // parked while their G2->G1 transfer runs
  uint64_t g1_held_blocks = 0;               // evicted G1 slots held until their copy ends
  uint64_t offload_transfers_in_flight = 0;  // G1->G2 link
  uint64_t onboard_transfers_in_flight = 0;  // G2->G1 link
  uint64_t offload_queued_blocks = 0;        // evicted, waiting for a G1->G2 transfer
  uint64_t g2_bytes_offloaded = 0;           // cumulative bytes of finished G1->G2 copies
  uint64_t g2_bytes_onboarded = 0;           // cumulative bytes of finished G2->G1 copies
  uint64_t g2_blocks_offloaded = 0;          // cumulative blocks newly stored in G2
  uint64_t g2_onboard_hit_tokens = 0;        // cumulative prompt tokens onboarded from G2
  uint64_t g2_offloads_dropped = 0;          // cumulative blocks lost: G2 full of pinned blocks
};

// Per-pass forward-pass metrics (Dynamo ForwardPassMetrics). Variances are population
// variances.
struct ForwardPassMetrics {
  // Scheduled prefill: requests that computed prompt tokens in this pass.
  uint32_t num_prefill_requests = 0;
  uint64_t sum_prefill_tokens = 0;     // prompt tokens computed this pass
  double var_prefill_length = 0;       // over full prompt lengths
  uint64_t sum_prefill_kv_tokens = 0;  // prompt tokens already in KV before the pass
  // Scheduled decode: requests emitting a token in this pass.
  uint32_t num_decode_requests = 0;
  uint64_t sum_decode_kv_tokens = 0;  // sequence lengths
  double var_decode_kv_tokens = 0;
  // Queued at the end of the pass: fresh waiting requests (prefill) and preempted
  // ones (decode, prompt + generated).
  uint32_t num_queued_prefill = 0;
  uint64_t sum_queued_prefill_tokens = 0;
  double var_queued_prefill_length = 0;
  uint32_t num_queued_decode = 0;
  uint64_t sum_queued_decode_kv_tokens = 0;
  double var_queued_decode_kv_tokens = 0;
  double wall_time_secs = 0;  // modeled pass duration
};

}  // namespace kvmock
