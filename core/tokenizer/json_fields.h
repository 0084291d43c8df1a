// Checked accessors for tokenizer.json fields. nlohmann::json throws on a type mismatch;
// these return an Error naming the field instead, so a malformed file is a "bad_tokenizer"
// value and never an exception.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/common/result.h"

namespace kvmock::tokenizer {

inline Error bad_field(std::string_view owner, std::string_view field, std::string_view wanted) {
  return make_error("bad_tokenizer", std::string(owner) + ": field '" + std::string(field) +
                                         "' is missing or not " + std::string(wanted));
}

inline Error unsupported(std::string message) {
  return make_error("unsupported", std::move(message));
}

// The member `field` of `object`, or nullptr when absent (or `object` is not an object).
inline const nlohmann::json* member(const nlohmann::json& object, std::string_view field) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(field);
  return found == object.end() ? nullptr : &*found;
}

inline Result<std::string> string_field(const nlohmann::json& object, std::string_view owner,
                                        std::string_view field) {
  const nlohmann::json* value = member(object, field);
  if (value == nullptr || !value->is_string()) return bad_field(owner, field, "a string");
  return value->get_ref<const std::string&>();
}

// A boolean that may be absent (then `fallback`) but not of another type.
inline Result<bool> bool_field(const nlohmann::json& object, std::string_view owner,
                               std::string_view field, bool fallback) {
  const nlohmann::json* value = member(object, field);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) return bad_field(owner, field, "a boolean");
  return value->get<bool>();
}

inline Result<uint64_t> uint_field(const nlohmann::json& object, std::string_view owner,
                                   std::string_view field, uint64_t fallback) {
  const nlohmann::json* value = member(object, field);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_number_unsigned()) return bad_field(owner, field, "a non-negative integer");
  return value->get<uint64_t>();
}

// The "type" tag of a stage object.
inline Result<std::string> type_of(const nlohmann::json& spec, std::string_view stage) {
  if (!spec.is_object())
    return make_error("bad_tokenizer", std::string(stage) + " is not an object");
  return string_field(spec, stage, "type");
}

// A {"String": "..."} or {"Regex": "..."} pattern object: the text and whether it is a regex.
struct PatternSpec {
  std::string text;
  bool regex;
};
inline Result<PatternSpec> pattern_field(const nlohmann::json& object, std::string_view owner) {
  const nlohmann::json* pattern = member(object, "pattern");
  if (pattern == nullptr || !pattern->is_object()) return bad_field(owner, "pattern", "an object");
  if (const nlohmann::json* text = member(*pattern, "String"); text && text->is_string()) {
    return PatternSpec{text->get<std::string>(), false};
  }
  if (const nlohmann::json* text = member(*pattern, "Regex"); text && text->is_string()) {
    return PatternSpec{text->get<std::string>(), true};
  }
  return bad_field(owner, "pattern", "{\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace kvmock::tokenizer
