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
};
inline constexpr size_t kFaultTypeCount = 6;

std::string_view fault_type_name(FaultType type);
// The type named `name` (as fault_type_name writes it), or nullopt.
std::optional<FaultType> fault_type_from_name(std::string_view name);
std::array<FaultType, kFaultTypeCount> all_fault_types();
// The HTTP status and OpenAI error `code` a client sees for the fault.
int fault_status(FaultType type);
std::string_view fault_code(FaultType type);

struct FaultSettings {
  double failure_injection_rate = 0;  // percent of requests that fail, [0, 100]
  // What an injected failure is, drawn evenly; empty: every type.
  std::vector<FaultType> failure_types;

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
