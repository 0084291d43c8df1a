// Text <-> scalar conversions shared by the YAML file, --set and the environment, so a
// value means the same thing wherever it is written. Strict on purpose: YAML 1.2 core
// booleans only, decimal integers only, finite numbers only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvmock {

enum class UnsignedParse : uint8_t { kOk, kNotAnInteger, kNegative, kTooBig };

struct ParsedUnsigned {
  UnsignedParse status = UnsignedParse::kNotAnInteger;
  uint64_t value = 0;
};

// Decimal digits with an optional leading '+' or '-'. "-0" is 0.
ParsedUnsigned parse_unsigned(std::string_view text);

// true|True|TRUE|false|False|FALSE.
std::optional<bool> parse_bool(std::string_view text);

// A finite decimal number ("1", "1.5", "2e3", "+0.5"); rejects inf/nan and trailing text.
std::optional<double> parse_double(std::string_view text);

// Shortest text that parses back to exactly `value`; integral values keep a ".0" so the
// printed YAML shows the key is a number, not an integer.
std::string format_double(double value);

// A YAML double-quoted scalar that yaml-cpp reads back to exactly `text`.
std::string yaml_quote(std::string_view text);

}  // namespace kvmock
