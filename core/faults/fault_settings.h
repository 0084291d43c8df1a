// The faults a worker shows a router on purpose, as its runtime-adjustable settings
// (docs/faults.md): which share of requests fail and how. The names are a contract with
// tests outside the project (issue #18): `failure_injection_rate` in percent and
// `failure_types` from the list below. Pure data and pure functions: the worker keeps the
// current settings, the admin endpoints merge JSON into them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

// A request fault as a client sees it: an HTTP status with OpenAI's error body.
enum class FaultType : uint8_t {
  kRateLimit,           // 429
  kServerError,         // 500
  kServiceUnavailable,  // 503
  kInvalidRequest,      // 400
  kContextLength,       // 400, vLLM's context-length message
  kModelNotFound,       // 404, vLLM's unknown-model message
  // Faults of the connection, not of the answer:
  kTimeout,          // accepted and never answered until the client gives up
  kConnectionReset,  // the connection is reset (TCP RST) without an answer
  kStreamCut,        // a stream ends mid-way without [DONE] (the connection is closed)
};
inline constexpr size_t kFaultTypeCount = 9;

std::string_view fault_type_name(FaultType type);
// The type named `name` (as fault_type_name writes it), or nullopt.
std::optional<FaultType> fault_type_from_name(std::string_view name);
std::array<FaultType, kFaultTypeCount> all_fault_types();
// Whether the fault answers with an HTTP status and OpenAI's error JSON (the others act on
// the connection).
bool fault_has_status(FaultType type);
// The HTTP status and OpenAI error `code` a client sees for a fault with a status.
int fault_status(FaultType type);
std::string_view fault_code(FaultType type);

struct FaultSettings {
  double failure_injection_rate = 0;  // percent of requests that fail, [0, 100]
  // What an injected failure is, drawn evenly; empty: every type.
  std::vector<FaultType> failure_types;
  // The engine's pacing: every modeled pass time is multiplied by latency_scale (> 0), by
  // a draw of 1 + jitter * N(0, 1) (floored at 0.05), and by the load factor, which grows
  // from 1 with an idle batch to time_factor_under_load (>= 1) with max_num_seqs running.
  double latency_scale = 1;
  double jitter = 0;  // relative standard deviation of the pass time, >= 0
  double time_factor_under_load = 1;
  bool paused = false;  // requests queue; no pass starts until unpaused
  // The KV events a router receives: the share dropped and duplicated (percent) and the
  // delay before each is sent. The worker's own indexer keeps every event.
  double event_drop_rate = 0;
  double event_duplicate_rate = 0;
  double event_delay_ms = 0;

  bool operator==(const FaultSettings&) const = default;
};

// `current` with the keys of the JSON object `patch` replaced. Errors ("bad_request") name
// the key: an unknown key, a value of the wrong type or out of range, an unknown fault type.
// On error nothing is changed (the caller keeps `current`).
Result<FaultSettings> merge_fault_settings(const FaultSettings& current, std::string_view patch);

// The settings as the JSON object GET /admin/config answers (every key, types by name).
std::string fault_settings_json(const FaultSettings& settings);

// Whether the request numbered `sequence` of a worker fails under `settings`, and how: a
// pure function of (seed, worker, sequence), so a seed replays the same faults.
std::optional<FaultType> pick_fault(const FaultSettings& settings, uint64_t seed, uint64_t worker,
                                    uint64_t sequence);

}  // namespace kvmock
