#include "daemon/check_config_command.h"

#include <cstdio>
#include <string>
#include <string_view>

#include "config/config_loader.h"
#include "config/config_writer.h"

namespace kvmock {
namespace {

constexpr const char* kCheckConfigUsage =
    "usage: kvmockd check-config --config FILE [--set KEY=VALUE ...]\n"
    "       kvmockd check-config --reference\n";

// Accepts "--flag VALUE" and "--flag=VALUE"; advances `i` past what it consumed.
bool take_value(std::string_view flag, int argc, char** argv, int& i, std::string& out) {
  const std::string_view arg = argv[i];
  if (arg == flag) {
    if (i + 1 >= argc) return false;
    out = argv[++i];
    return true;
  }
  if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=') {
    out = std::string(arg.substr(flag.size() + 1));
    return true;
  }
  return false;
}

}  // namespace

int run_check_config_command(int argc, char** argv) {
  ConfigSource source;
  bool reference = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string value;
    if (arg == "--reference") {
      reference = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kCheckConfigUsage, stdout);
      return 0;
    } else if (take_value("--config", argc, argv, i, value)) {
      source.path = value;
    } else if (take_value("--set", argc, argv, i, value)) {
      source.sets.push_back(value);
    } else {
      std::fprintf(stderr, "kvmockd check-config: bad argument '%s'\n%s", argv[i],
                   kCheckConfigUsage);
      return 2;
    }
  }
  if (reference) {
    std::fputs(config_reference_markdown().c_str(), stdout);
    return 0;
  }
  source.env = config_environment();
  const Result<Config> config = load_config(source);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 2;
  }
  std::fputs(to_yaml(*config, Secrets::kRedact).c_str(), stdout);
  return 0;
}

}  // namespace kvmock
