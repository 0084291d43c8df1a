#include "core/faults/fault_settings.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace kvmock {
namespace {

constexpr std::array<std::string_view, kFaultTypeCount> kNames = {
    "rate_limit",      "server_error",   "service_unavailable",
    "invalid_request", "context_length", "model_not_found"};

// splitmix64's finalizer: a well-mixed 64-bit value from any input.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Error bad_key(std::string_view key, const std::string& message) {
  return Error{"bad_request", std::string(key) + ": " + message};
}

std::string allowed_types() {
  std::string list;
  for (std::string_view name : kNames) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  return list;
}

}  // namespace

std::string_view fault_type_name(FaultType type) { return kNames[static_cast<size_t>(type)]; }

std::optional<FaultType> fault_type_from_name(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<FaultType>(i);
  }
  return std::nullopt;
}

std::array<FaultType, kFaultTypeCount> all_fault_types() {
  std::array<FaultType, kFaultTypeCount> types{};
  for (size_t i = 0; i < kFaultTypeCount; ++i) types[i] = static_cast<FaultType>(i);
  return types;
}

int fault_status(FaultType type) {
  switch (type) {
    case FaultType::kRateLimit:
      return 429;
    case FaultType::kServerError:
      return 500;
    case FaultType::kServiceUnavailable:
      return 503;
    case FaultType::kInvalidRequest:
    case FaultType::kContextLength:
      return 400;
    case FaultType::kModelNotFound:
      return 404;
  }
  return 500;
}

std::string_view fault_code(FaultType type) {
  switch (type) {
    case FaultType::kRateLimit:
      return "rate_limit_exceeded";
    case FaultType::kContextLength:
      return "context_length_exceeded";
    default:
      return fault_type_name(type);
  }
}

Result<FaultSettings> merge_fault_settings(const FaultSettings& current, std::string_view patch) {
  const nlohmann::json root = nlohmann::json::parse(patch, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return Error{"bad_request", "the body must be a JSON object of settings"};
  }
  FaultSettings merged = current;
  for (const auto& [key, value] : root.items()) {
    if (key == "failure_injection_rate") {
      if (!value.is_number()) return bad_key(key, "must be a number of percent, 0 to 100");
      const double rate = value.get<double>();
      if (!std::isfinite(rate) || rate < 0 || rate > 100) {
        return bad_key(key, "must be between 0 and 100, got " + value.dump());
      }
      merged.failure_injection_rate = rate;
    } else if (key == "failure_types") {
      if (!value.is_array()) return bad_key(key, "must be a list of fault types");
      std::vector<FaultType> types;
      for (const nlohmann::json& item : value) {
        const std::optional<FaultType> type =
            item.is_string() ? fault_type_from_name(item.get<std::string>()) : std::nullopt;
        if (!type) {
          return bad_key(key,
                         "unknown fault type " + item.dump() + " (one of " + allowed_types() + ")");
        }
        types.push_back(*type);
      }
      merged.failure_types = std::move(types);
    } else {
      return bad_key(key, "unknown setting (failure_injection_rate, failure_types)");
    }
  }
  return merged;
}

std::string fault_settings_json(const FaultSettings& settings) {
  nlohmann::ordered_json types = nlohmann::ordered_json::array();
  for (FaultType type : settings.failure_types) types.push_back(fault_type_name(type));
  nlohmann::ordered_json out;
  out["failure_injection_rate"] = settings.failure_injection_rate;
  out["failure_types"] = std::move(types);
  return out.dump();
}

std::optional<FaultType> pick_fault(const FaultSettings& settings, uint64_t seed, uint64_t worker,
                                    uint64_t sequence) {
  if (settings.failure_injection_rate <= 0) return std::nullopt;
  const uint64_t draw = mix(mix(seed ^ mix(worker)) + sequence);
  // 53 random bits as a fraction in [0, 1), compared with the rate's share.
  const double unit = static_cast<double>(draw >> 11) * 0x1.0p-53;
  if (unit * 100 >= settings.failure_injection_rate) return std::nullopt;
  const uint64_t which = mix(draw);
  if (settings.failure_types.empty()) {
    return static_cast<FaultType>(which % kFaultTypeCount);
  }
  return settings.failure_types[which % settings.failure_types.size()];
}

}  // namespace kvmock
