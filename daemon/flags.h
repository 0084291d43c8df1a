// The command line of every subcommand: one parser, one convention. A flag is written
// "--name VALUE" or "--name=VALUE"; a switch (a flag without a value) is written "--name".
// "--help" or "-h" anywhere asks for the command's help. Numbers go through the config's
// strict text parsers (config/scalar_text.h), so "--workers 8" accepts exactly what
// "workers.count: 8" accepts.
//
// A command declares its flags as a table of {name, takes_value, handler} and calls
// parse_command_line; the handlers store the values, and the command checks how they
// combine afterwards.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.h"
#include "core/common/result.h"

namespace kvmock {

struct FlagSpec {
  std::string_view name;  // with the dashes: "--config"
  bool takes_value = false;
  // Called once per occurrence, with the value ("" for a switch). An error's message
  // should start with the flag's name.
  std::function<Result<bool>(std::string_view value)> handler;
};

enum class ParsedCommandLine : uint8_t { kRun, kHelp };

// Parses `args` (argv without the command name) against `flags`, calling the handlers in
// command-line order. Errors (reason "usage"): "unknown flag --x (did you mean --y?)",
// "--flag needs a value", "--switch takes no value", a positional argument, or the
// first error a handler returns.
Result<ParsedCommandLine> parse_flags(std::span<char* const> args, std::span<const FlagSpec> flags);

// The whole front end of a subcommand (argv[0] is the command's name, e.g. "run"): on
// --help prints `usage` to stdout and returns 0; on an error prints
// "kvmockd COMMAND: MESSAGE" and `usage` to stderr and returns 2; returns nullopt when
// the command should go on.
std::optional<int> handle_command_line(int argc, char** argv, std::span<const FlagSpec> flags,
                                       std::string_view usage);

// Handlers for the common kinds of value.
FlagSpec switch_flag(std::string_view name, bool& out);
FlagSpec string_flag(std::string_view name, std::string& out);
// A decimal integer in [min, max], parsed by config/scalar_text.h parse_unsigned.
FlagSpec unsigned_flag(std::string_view name, uint64_t min, uint64_t max,
                       std::function<void(uint64_t)> store);
// A finite decimal number, parsed by config/scalar_text.h parse_double.
FlagSpec number_flag(std::string_view name, std::function<Result<bool>(double)> store);

template <typename T>
FlagSpec unsigned_flag(std::string_view name, T& out, uint64_t min = 0) {
  return unsigned_flag(name, min, std::numeric_limits<T>::max(),
                       [&out](uint64_t value) { out = static_cast<T>(value); });
}

// The strict number parsers behind unsigned_flag and number_flag, for flag values with
// more structure (MEAN,STD). Errors name `flag`.
Result<uint64_t> parse_unsigned_flag(std::string_view flag, std::string_view text, uint64_t min,
                                     uint64_t max);
Result<double> parse_number_flag(std::string_view flag, std::string_view text);

// The flags every config-reading command shares: --config FILE and --set KEY=VALUE
// (repeatable, applied in order). with_log adds --log-format F and --log-level L, which
// are --set log.format=F and --set log.level=L.
std::vector<FlagSpec> config_flags(ConfigSource& source, bool with_log);

}  // namespace kvmock
