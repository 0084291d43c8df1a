#include "core/faults/fault_settings.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/common/splitmix.h"

namespace kvmock {
namespace {

constexpr std::array<std::string_view, kFaultTypeCount> kNames = {
    "rate_limit",      "server_error", "service_unavailable", "invalid_request", "context_length",
    "model_not_found", "timeout",      "connection_reset",    "stream_cut"};

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

// The settings that are one number in a range.
struct NumberSetting {
  std::string_view name;
  double FaultSettings::*field;
  double min;
  double max;
  bool exclusive_min;
  const char* range;  // as the error message says it
};

const std::array<NumberSetting, 6>& number_settings() {
  static const std::array<NumberSetting, 6> settings = {{
      {"latency_scale", &FaultSettings::latency_scale, 0, 1000, true,
       "greater than 0 and at most 1000"},
      {"jitter", &FaultSettings::jitter, 0, 10, false, "between 0 and 10"},
      {"time_factor_under_load", &FaultSettings::time_factor_under_load, 1, 1000, false,
       "between 1 and 1000"},
      {"event_drop_rate", &FaultSettings::event_drop_rate, 0, 100, false,
       "between 0 and 100 (percent)"},
      {"event_duplicate_rate", &FaultSettings::event_duplicate_rate, 0, 100, false,
       "between 0 and 100 (percent)"},
      {"event_delay_ms", &FaultSettings::event_delay_ms, 0, 3600000, false,
       "between 0 and 3600000"},
  }};
  return settings;
}

const NumberSetting* number_setting(std::string_view name) {
  for (const NumberSetting& setting : number_settings()) {
    if (setting.name == name) return &setting;
  }
  return nullptr;
}

std::string setting_names() {
  std::string names = "failure_injection_rate, failure_types, paused";
  for (const NumberSetting& setting : number_settings()) {
    names += ", ";
    names += setting.name;
  }
  return names;
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

bool fault_has_status(FaultType type) {
  return type != FaultType::kTimeout && type != FaultType::kConnectionReset &&
         type != FaultType::kStreamCut;
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
    case FaultType::kTimeout:
    case FaultType::kConnectionReset:
    case FaultType::kStreamCut:
      break;  // no status: the connection is the fault
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
    } else if (key == "paused") {
      if (!value.is_boolean()) return bad_key(key, "must be true or false");
      merged.paused = value.get<bool>();
    } else if (const NumberSetting* setting = number_setting(key)) {
      if (!value.is_number())
        return bad_key(key, std::string("must be a number, ") + setting->range);
      const double number = value.get<double>();
      if (!std::isfinite(number) || number < setting->min || number > setting->max ||
          (setting->exclusive_min && number <= setting->min)) {
        return bad_key(key, std::string("must be ") + setting->range + ", got " + value.dump());
      }
      merged.*(setting->field) = number;
    } else {
      return bad_key(key, "unknown setting (" + setting_names() + ")");
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
  out["paused"] = settings.paused;
  for (const NumberSetting& setting : number_settings()) {
    out[std::string(setting.name)] = settings.*(setting.field);
  }
  return out.dump();
}

std::optional<FaultType> pick_fault(const FaultSettings& settings, uint64_t seed, uint64_t worker,
                                    uint64_t sequence) {
  if (settings.failure_injection_rate <= 0) return std::nullopt;
  const uint64_t draw = splitmix64(splitmix64(seed ^ splitmix64(worker)) + sequence);
  // 53 random bits as a fraction in [0, 1), compared with the rate's share.
  const double unit = unit_fraction(draw);
  if (unit * 100 >= settings.failure_injection_rate) return std::nullopt;
  const uint64_t which = splitmix64(draw);
  if (settings.failure_types.empty()) {
    return static_cast<FaultType>(which % kFaultTypeCount);
  }
  return settings.failure_types[which % settings.failure_types.size()];
}

}  // namespace kvmock
