// `kvmockd run`: load the config, start the daemon, wait for SIGINT/SIGTERM, shut down in
// order. A second signal during shutdown exits at once.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string_view>
#include <thread>

#include "config/config_loader.h"
#include "daemon/daemon.h"
#include "transport/log/logger.h"

namespace kvmock {
namespace {

constexpr const char* kRunUsage =
    "usage: kvmockd run [--config FILE] [--set KEY=VALUE ...] [--log-format text|json]\n"
    "                   [--log-level debug|info|warn|error]\n"
    "Plays the configured mock workers and relays until SIGINT/SIGTERM. Without --config the\n"
    "built-in defaults apply; KVMOCK_<KEY> and NATS_SERVER environment variables override the\n"
    "file, --set overrides both. Every key: config/README.md or `kvmockd check-config`.\n";

struct RunFlags {
  bool help = false;
  ConfigSource source;
  std::optional<std::string> log_format;
  std::optional<std::string> log_level;
};

Result<RunFlags> parse_run_flags(int argc, char** argv) {
  RunFlags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return make_error("usage", std::string(flag) + ": missing value");
      return std::string(argv[++i]);
    };
    Result<std::string> v = std::string();
    if (flag == "--help" || flag == "-h") {
      flags.help = true;
      return flags;
    }
    if (flag == "--config" || flag == "--set" || flag == "--log-format" || flag == "--log-level") {
      v = value();
      if (!v) return v.error();
    } else {
      return make_error("usage", "run: unknown flag '" + std::string(flag) + "'");
    }
    if (flag == "--config") flags.source.path = *v;
    if (flag == "--set") flags.source.sets.push_back(*v);
    if (flag == "--log-format") flags.log_format = *v;
    if (flag == "--log-level") flags.log_level = *v;
  }
  if (flags.log_format) flags.source.sets.push_back("log.format=" + *flags.log_format);
  if (flags.log_level) flags.source.sets.push_back("log.level=" + *flags.log_level);
  flags.source.env = config_environment();
  return flags;
}

LogSeverity severity_of(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return LogSeverity::kDebug;
    case LogLevel::kInfo:
      return LogSeverity::kInfo;
    case LogLevel::kWarn:
      return LogSeverity::kWarn;
    case LogLevel::kError:
      return LogSeverity::kError;
  }
  return LogSeverity::kInfo;
}

int wait_for_signal(const sigset_t& signals) {
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0) {
  }
  return signal_number;
}

}  // namespace

int run_run_command(int argc, char** argv) {
  auto flags = parse_run_flags(argc, argv);
  if (!flags) {
    std::fprintf(stderr, "kvmockd run: %s\n%s", flags.error().message.c_str(), kRunUsage);
    return 2;
  }
  if (flags->help) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  auto config = load_config(flags->source);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 2;
  }
  Logger::instance().configure(severity_of(config->log.level),
                               config->log.format == LogFormat::kJson);

  // Every thread the daemon starts inherits this mask, so signals reach only sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Daemon daemon(std::move(*config));
  auto started = daemon.start();
  if (!started) {
    log_error("daemon", "cannot start: " + started.error().message);
    daemon.shutdown();
    return 2;
  }
  log_info("daemon", "running; SIGINT or SIGTERM stops it");
  const int first = wait_for_signal(signals);
  log_info("daemon", std::string("received ") + strsignal(first));
  std::thread([signals] {
    const int second = wait_for_signal(signals);
    std::fprintf(stderr, "kvmockd: second %s, exiting at once\n", strsignal(second));
    std::_Exit(130);
  }).detach();
  return daemon.shutdown();
}

}  // namespace kvmock
