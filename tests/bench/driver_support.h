// What the load drivers share: readings of a process and the machine from /proc, the
// wait for a kvmockd child to be ready, and the samples of a /metrics scrape.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock::bench {

// utime + stime of a process, in seconds; NaN when it is gone.
inline double cpu_seconds(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return NAN;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::strtod(field.c_str(), nullptr);
    if (i == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

inline double rss_mib(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(file, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return NAN;
}

// "1-min 5-min 15-min": the machine is shared, so every figure is printed beside it.
inline std::string load_average() {
  std::ifstream file("/proc/loadavg");
  std::string one, five, fifteen;
  file >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// Polls the daemon's /ready until it answers 200; false if the daemon exits first or
// `timeout` passes.
inline bool wait_ready(uint16_t admin_port, testing::ChildProcess& daemon,
                       std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && daemon.running()) {
    if (testing::http_request(admin_port, "GET", "/ready", "", std::chrono::milliseconds(1000))
            .status == 200) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// The `--set` overrides of a measured `kvmockd run`: `workers` workers without HTTP ports
// at wall-clock speed beside the nats-server at `nats_url`, the admin API on
// `admin_port`, the built-in load on or off at `rate` requests/s per worker of `input`
// prompt and `output` output tokens, and a shutdown that does not wait for requests.
inline std::vector<std::string> kvmockd_run_sets(const std::string& nats_url, uint16_t admin_port,
                                                 uint32_t workers, bool load, double rate,
                                                 uint32_t input, uint32_t output) {
  return {
      "nats.url=" + nats_url,
      "admin.listen=127.0.0.1:" + std::to_string(admin_port),
      "workers.count=" + std::to_string(workers),
      "workers.http_base_port=0",
      "workers.engine.speedup_ratio=1",
      std::string("workers.load.enabled=") + (load ? "true" : "false"),
      "workers.load.requests_per_s=" + std::to_string(rate),
      "workers.load.input_tokens=" + std::to_string(input),
      "workers.load.output_tokens=" + std::to_string(output),
      "shutdown.grace_s=0",
      "shutdown.flush_deadline_s=5",
  };
}

// "--key=value" as its key and value; nullopt, with a message on stderr, for anything else.
struct DriverFlag {
  std::string_view key;
  std::string value;
};
inline std::optional<DriverFlag> split_flag(const char* arg) {
  const std::string_view text = arg;
  const size_t eq = text.find('=');
  if (text.substr(0, 2) != "--" || eq == std::string_view::npos) {
    std::fprintf(stderr, "unexpected argument '%s'\n", arg);
    return std::nullopt;
  }
  return DriverFlag{text.substr(2, eq - 2), std::string(text.substr(eq + 1))};
}

// --help or -h anywhere on the command line: prints `usage` on stdout.
inline bool answered_help(int argc, char** argv, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::fputs(usage, stdout);
      return true;
    }
  }
  return false;
}

// Why a driver whose flags parsed (or not) cannot run, as its exit status: 2 for a bad
// command line (with `usage` on stderr), 1 without a nats-server; nullopt when it can.
inline std::optional<int> cannot_run(bool flags_parsed, const char* usage) {
  if (!flags_parsed) {
    std::fputs(usage, stderr);
    return 2;
  }
  if (!testing::nats_server_available()) {
    std::fprintf(stderr, "nats-server is not installed\n");
    return 1;
  }
  return std::nullopt;
}

// One scrape of /metrics: each sample's value by its full series text (name{labels}).
using Samples = std::map<std::string, double>;

inline Samples parse_exposition(const std::string& text) {
  Samples samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return samples;
}

// Sum over every series of metric `name` (any labels).
inline double sum_of(const Samples& samples, const std::string& name) {
  double total = 0;
  for (auto it = samples.lower_bound(name); it != samples.end(); ++it) {
    const std::string& series = it->first;
    if (series.compare(0, name.size(), name) != 0) break;
    if (series.size() == name.size() || series[name.size()] == '{') total += it->second;
  }
  return total;
}

}  // namespace kvmock::bench
