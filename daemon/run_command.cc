// `kvmockd run`: load the config, start the daemon, wait for SIGINT/SIGTERM, shut down in
// order. A second signal during shutdown exits at once.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "config/config_loader.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "transport/log/logger.h"

namespace kvmock {
namespace {

constexpr const char* kRunUsage =
    "usage: kvmockd run [--config FILE] [--set KEY=VALUE ...] [--log-format text|json]\n"
    "                   [--log-level debug|info|warn|error]\n"
    "Plays the configured mock workers and relays until SIGINT/SIGTERM. Without --config the\n"
    "built-in defaults apply; KVMOCK_<KEY> and NATS_SERVER environment variables override the\n"
    "file, --set overrides both (--log-format F and --log-level L are short for --set\n"
    "log.format=F and --set log.level=L). Every key: config/README.md or\n"
    "`kvmockd check-config`. A flag's value may also be written --flag=VALUE.\n";

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

int run_daemon_command(int argc, char** argv) {
  ConfigSource source;
  const std::vector<FlagSpec> flags = config_flags(source, /*with_log=*/true);
  if (auto status = handle_command_line(argc, argv, flags, kRunUsage)) return *status;
  source.env = config_environment();
  auto config = load_config(source);
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
