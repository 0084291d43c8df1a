#include "daemon/flags.h"

#include <cstdio>

#include "config/scalar_text.h"
#include "config/schema.h"

namespace kvmock {
namespace {

Error usage_error(std::string message) { return make_error("usage", std::move(message)); }

bool is_help(std::string_view arg) { return arg == "--help" || arg == "-h"; }

const FlagSpec* find_flag(std::span<const FlagSpec> flags, std::string_view name) {
  for (const FlagSpec& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

Error unknown_flag(std::span<const FlagSpec> flags, std::string_view name) {
  std::vector<std::string> names{"--help"};
  for (const FlagSpec& flag : flags) names.emplace_back(flag.name);
  const std::string hint = closest_name(name, names);
  std::string message = "unknown flag " + std::string(name);
  if (!hint.empty()) message += " (did you mean " + hint + "?)";
  return usage_error(std::move(message));
}

}  // namespace

Result<ParsedCommandLine> parse_flags(std::span<char* const> args,
                                      std::span<const FlagSpec> flags) {
  // Help wins over every other problem: "run --bogus --help" still shows the help.
  for (const char* arg : args) {
    if (is_help(arg)) return ParsedCommandLine::kHelp;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (!arg.starts_with("--")) {
      return usage_error("unexpected argument '" + std::string(arg) + "'");
    }
    const size_t equals = arg.find('=');
    const std::string_view name = arg.substr(0, equals);
    const FlagSpec* flag = find_flag(flags, name);
    if (flag == nullptr) return unknown_flag(flags, name);
    std::string_view value;
    if (equals != std::string_view::npos) {
      if (!flag->takes_value) return usage_error(std::string(name) + " takes no value");
      value = arg.substr(equals + 1);
    } else if (flag->takes_value) {
      if (i + 1 >= args.size()) return usage_error(std::string(name) + " needs a value");
      value = args[++i];
    }
    Result<bool> handled = flag->handler(value);
    if (!handled) return usage_error(handled.error().message);
  }
  return ParsedCommandLine::kRun;
}

std::optional<int> handle_command_line(int argc, char** argv, std::span<const FlagSpec> flags,
                                       std::string_view usage) {
  const auto args = std::span<char* const>(argv, static_cast<size_t>(argc));
  const Result<ParsedCommandLine> parsed = parse_flags(args.subspan(1), flags);
  if (!parsed) {
    std::fprintf(stderr, "kvmockd %s: %s\n%.*s", args[0], parsed.error().message.c_str(),
                 static_cast<int>(usage.size()), usage.data());
    return 2;
  }
  if (*parsed == ParsedCommandLine::kHelp) {
    std::fwrite(usage.data(), 1, usage.size(), stdout);
    return 0;
  }
  return std::nullopt;
}

FlagSpec switch_flag(std::string_view name, bool& out) {
  return {name, false, [&out](std::string_view) -> Result<bool> { return out = true; }};
}

FlagSpec string_flag(std::string_view name, std::string& out) {
  return {name, true, [&out](std::string_view value) -> Result<bool> {
            out = value;
            return true;
          }};
}

Result<uint64_t> parse_unsigned_flag(std::string_view flag, std::string_view text, uint64_t min,
                                     uint64_t max) {
  const ParsedUnsigned parsed = parse_unsigned(text);
  const std::string got = ", got '" + std::string(text) + "'";
  if (parsed.status == UnsignedParse::kNotAnInteger) {
    return usage_error(std::string(flag) + ": expected a non-negative integer" + got);
  }
  if (parsed.status == UnsignedParse::kNegative ||
      (parsed.status == UnsignedParse::kOk && parsed.value < min)) {
    return usage_error(std::string(flag) + ": must be at least " + std::to_string(min) + got);
  }
  if (parsed.status != UnsignedParse::kOk || parsed.value > max) {
    return usage_error(std::string(flag) + ": must be at most " + std::to_string(max) + got);
  }
  return parsed.value;
}

Result<double> parse_number_flag(std::string_view flag, std::string_view text) {
  const std::optional<double> value = parse_double(text);
  if (!value) {
    return usage_error(std::string(flag) + ": expected a number, got '" + std::string(text) + "'");
  }
  return *value;
}

FlagSpec unsigned_flag(std::string_view name, uint64_t min, uint64_t max,
                       std::function<void(uint64_t)> store) {
  return {name, true,
          [name, min, max, store = std::move(store)](std::string_view text) -> Result<bool> {
            Result<uint64_t> value = parse_unsigned_flag(name, text, min, max);
            if (!value) return value.error();
            store(*value);
            return true;
          }};
}

FlagSpec number_flag(std::string_view name, std::function<Result<bool>(double)> store) {
  return {name, true, [name, store = std::move(store)](std::string_view text) -> Result<bool> {
            Result<double> value = parse_number_flag(name, text);
            if (!value) return value.error();
            return store(*value);
          }};
}

std::vector<FlagSpec> config_flags(ConfigSource& source, bool with_log) {
  std::vector<FlagSpec> flags = {
      string_flag("--config", source.path),
      {"--set", true,
       [&source](std::string_view value) -> Result<bool> {
         source.sets.emplace_back(value);
         return true;
       }},
  };
  if (!with_log) return flags;
  for (const auto& flag_and_key :
       {std::pair{"--log-format", "log.format="}, std::pair{"--log-level", "log.level="}}) {
    // A copy, not a structured binding: clang 14 cannot capture those.
    const char* key = flag_and_key.second;
    flags.push_back(
        {flag_and_key.first, true, [&source, key](std::string_view value) -> Result<bool> {
           source.sets.push_back(key + std::string(value));
           return true;
         }});
  }
  return flags;
}

}  // namespace kvmock
