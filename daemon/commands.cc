#include "daemon/commands.h"

#include <cstdio>
#include <string_view>

#include "daemon/check_config_command.h"
#include "daemon/daemon.h"
#include "daemon/decode_command.h"
#include "daemon/replay_command.h"
#include "daemon/version.h"

namespace kvmock {
namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  kvmockd run [--config FILE] [--set KEY=VALUE ...] [--log-format text|json]\n"
    "  kvmockd replay [--config FILE] (--trace FILE | --synthetic ...) [--report OUT.json]\n"
    "  kvmockd decode [--block-size N] [--worker-id ID] [--hex] < PAYLOAD\n"
    "  kvmockd check-config [--config FILE] [--set KEY=VALUE ...] [--reference]\n"
    "  kvmockd --version | --help\n"
    "`kvmockd COMMAND --help` describes each command.\n";

}  // namespace

int run_command_line(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view command = argv[1];
  if (command == "--version" || command == "version") {
    std::printf("kvmockd %s\n", kVersion);
    return 0;
  }
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "decode") return run_decode_command(argc - 1, argv + 1);
  if (command == "replay") return run_replay_command(argc - 1, argv + 1);
  if (command == "run") return run_daemon_command(argc - 1, argv + 1);
  if (command == "check-config") return run_check_config_command(argc - 1, argv + 1);
  std::fprintf(stderr, "kvmockd: unknown command '%s'\n%s", argv[1], kUsage);
  return 2;
}

}  // namespace kvmock
