// Memory driver: what one `kvmockd run` process holds per idle worker and per request in
// flight, and whether it grows under a steady load (issue #19, target 5).
//
// Three phases, each a fresh nats-server and kvmockd (no worker HTTP ports, wall clock):
//   idle      1 worker, then N workers, no load: VmRSS once ready and settled; per idle
//             worker = the difference / (N - 1).
//   in flight N workers paused from the start (a fault scenario, docs/faults.md) with the
//             built-in load at RATE requests/s each: requests are accepted and wait. After
//             HOLD seconds, VmRSS and the requests waiting (vllm:num_requests_waiting over
//             the workers); per request = (VmRSS - idle VmRSS of N workers) / waiting.
//   growth    N workers at RATE requests/s each for MINUTES, VmRSS sampled every SAMPLE s;
//             growth = the last sample minus the one at half the run. The first part of
//             the run fills each worker's prefix cache (16,384 blocks by default, at about
//             140 blocks/s for the default load: two minutes), which the process holds by
//             design. The requests running and waiting are shown at both samples, since a
//             backlog that builds because the machine cannot keep up is not a leak either.
//
// Usage: memory_driver [--workers=1000] [--rate=2] [--input=1000] [--output=100]
//          [--hold=10] [--minutes=10] [--sample=30] [--kvmockd=PATH] [--set=key=value]...
//          [--phases=idle,inflight,growth]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/bench/driver_support.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using bench::parse_exposition;
using bench::rss_mib;
using bench::sum_of;
using bench::wait_ready;
using testing::ChildProcess;
using testing::http_request;
using testing::NatsServer;

struct Flags {
  uint32_t workers = 1000;
  double rate = 2;
  uint32_t input = 1000;
  uint32_t output = 100;
  double hold = 10;
  double minutes = 10;
  double sample = 30;
  std::string kvmockd = testing::kvmockd_path();
  std::vector<std::string> sets;
  bool idle = true;
  bool inflight = true;
  bool growth = true;
};

constexpr const char* kUsage =
    "usage: memory_driver [--workers=1000] [--rate=2] [--input=1000] [--output=100] "
    "[--hold=10] [--minutes=10] [--sample=30] [--kvmockd=PATH] [--set=key=value]... "
    "[--phases=idle,inflight,growth]\n"
    "  idle:     VmRSS of kvmockd with 1 and with WORKERS idle workers: bytes per idle worker.\n"
    "  inflight: WORKERS paused workers under RATE requests/s each (INPUT prompt tokens):\n"
    "            after HOLD s, bytes per waiting request over the idle figure.\n"
    "  growth:   WORKERS workers at RATE requests/s each (INPUT/OUTPUT tokens) for MINUTES,\n"
    "            VmRSS every SAMPLE s, and its growth over the second half of the run.\n"
    "  Each phase runs its own nats-server and kvmockd; --set passes a config override.\n";

std::optional<Flags> parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const auto flag = bench::split_flag(argv[i]);
    if (!flag) return std::nullopt;
    const std::string_view key = flag->key;
    const std::string& value = flag->value;
    char* end = nullptr;
    if (key == "workers" || key == "input" || key == "output") {
      const auto v = static_cast<uint32_t>(std::strtoul(value.c_str(), &end, 10));
      if (*end != '\0' || v == 0) return std::nullopt;
      (key == "workers" ? flags.workers : key == "input" ? flags.input : flags.output) = v;
    } else if (key == "rate" || key == "hold" || key == "minutes" || key == "sample") {
      const double v = std::strtod(value.c_str(), &end);
      if (*end != '\0' || !(v > 0)) return std::nullopt;
      (key == "rate"      ? flags.rate
       : key == "hold"    ? flags.hold
       : key == "minutes" ? flags.minutes
                          : flags.sample) = v;
    } else if (key == "kvmockd") {
      flags.kvmockd = value;
    } else if (key == "set") {
      flags.sets.push_back(value);
    } else if (key == "phases") {
      flags.idle = value.find("idle") != std::string::npos;
      flags.inflight = value.find("inflight") != std::string::npos;
      flags.growth = value.find("growth") != std::string::npos;
      if (!flags.idle && !flags.inflight && !flags.growth) return std::nullopt;
    } else {
      std::fprintf(stderr, "unknown flag '--%.*s'\n", static_cast<int>(key.size()), key.data());
      return std::nullopt;
    }
  }
  return flags;
}

void sleep_seconds(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

// A nats-server and a kvmockd beside it, stopped when this goes.
class Daemon {
 public:
  Daemon(const Flags& flags, uint32_t workers, bool load, const std::string& scenario) {
    if (!nats_.start()) {
      failure_ = "nats-server did not start";
      return;
    }
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    std::vector<std::string> sets = bench::kvmockd_run_sets(nats_.url(), admin_port_, workers, load,
                                                            flags.rate, flags.input, flags.output);
    if (!scenario.empty()) sets.push_back("faults.scenario=" + scenario);
    sets.insert(sets.end(), flags.sets.begin(), flags.sets.end());
    std::vector<std::string> argv = {flags.kvmockd, "run", "--log-level", "warn"};
    for (const std::string& set : sets) argv.insert(argv.end(), {"--set", set});
    daemon_ = std::make_unique<ChildProcess>(argv);
    if (!wait_ready(admin_port_, *daemon_, std::chrono::seconds(120))) {
      failure_ = "daemon not ready: " + daemon_->output().substr(0, 2000);
    }
  }
  ~Daemon() {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      if (daemon_->wait(std::chrono::seconds(30)) < 0) {
        daemon_->signal(SIGKILL);
        daemon_->wait(std::chrono::seconds(5));
      }
    }
    nats_.stop();
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& failure() const { return failure_; }
  double rss() const { return rss_mib(daemon_->pid()); }
  // Requests running and waiting over every worker; NaN when the scrape fails.
  std::pair<double, double> requests() const {
    const auto scrape = http_request(admin_port_, "GET", "/metrics", "", std::chrono::seconds(30));
    if (scrape.status != 200) return {NAN, NAN};
    const auto samples = parse_exposition(scrape.body);
    return {sum_of(samples, "vllm_num_requests_running"),
            sum_of(samples, "vllm_num_requests_waiting")};
  }

 private:
  NatsServer nats_;
  uint16_t admin_port_ = 0;
  std::unique_ptr<ChildProcess> daemon_;
  std::string failure_;
};

// VmRSS of `workers` idle workers, after they have settled.
std::optional<double> idle_rss(const Flags& flags, uint32_t workers) {
  Daemon daemon(flags, workers, /*load=*/false, "");
  if (!daemon.failure().empty()) {
    std::printf("idle run of %u workers failed: %s\n", workers, daemon.failure().c_str());
    return std::nullopt;
  }
  sleep_seconds(3);
  return daemon.rss();
}

int run(int argc, char** argv) {
  if (bench::answered_help(argc, argv, kUsage)) return 0;
  const auto flags = parse_flags(argc, argv);
  if (const auto status = bench::cannot_run(flags.has_value(), kUsage)) return *status;
  std::printf("memory: %u workers, %g requests/s each, %u prompt / %u output tokens; %ld CPUs\n",
              flags->workers, flags->rate, flags->input, flags->output,
              ::sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);
  int status = 0;
  std::optional<double> idle_n;
  if (flags->idle || flags->inflight) {
    idle_n = idle_rss(*flags, flags->workers);
    if (!idle_n) return 1;
  }
  if (flags->idle) {
    const auto idle_one = idle_rss(*flags, 1);
    if (!idle_one) return 1;
    std::printf("idle:      1 worker %.1f MiB, %u workers %.1f MiB: %.1f KiB per idle worker\n",
                *idle_one, flags->workers, *idle_n,
                flags->workers > 1 ? (*idle_n - *idle_one) * 1024 / (flags->workers - 1) : NAN);
    std::fflush(stdout);
  }
  if (flags->inflight) {
    const std::string scenario = "/tmp/kvmock-memory-driver-" + std::to_string(::getpid());
    std::ofstream(scenario) << "steps:\n  - at: 0\n    workers: all\n    set: {paused: true}\n";
    {
      Daemon daemon(*flags, flags->workers, /*load=*/true, scenario);
      if (!daemon.failure().empty()) {
        std::printf("in-flight run failed: %s\n", daemon.failure().c_str());
        status = 1;
      } else {
        sleep_seconds(flags->hold);
        const auto [running, waiting] = daemon.requests();
        const double rss = daemon.rss();
        std::printf(
            "in flight: %.0f waiting, %.0f running after %g s paused: %.1f MiB, %.0f bytes per "
            "request in flight over idle\n",
            waiting, running, flags->hold, rss,
            (rss - *idle_n) * 1024 * 1024 / std::max(1.0, waiting + running));
      }
    }
    std::remove(scenario.c_str());
    std::fflush(stdout);
  }
  if (flags->growth) {
    Daemon daemon(*flags, flags->workers, /*load=*/true, "");
    if (!daemon.failure().empty()) {
      std::printf("growth run failed: %s\n", daemon.failure().c_str());
      return 1;
    }
    const auto samples = static_cast<int>(std::ceil(flags->minutes * 60 / flags->sample));
    const int baseline_at = std::max(1, samples / 2);
    double baseline = NAN, baseline_s = 0, peak = 0;
    std::pair<double, double> baseline_requests{NAN, NAN};
    // Requests are read at the two samples compared only: a scrape of thousands of
    // workers' series is itself large (tens of MB) and would stretch the sampling.
    std::printf("%8s %8s\n", "t_s", "rss_MiB");
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    for (int i = 1; i <= samples; ++i) {
      sleep_seconds(std::max(0.0, i * flags->sample - elapsed));
      const double rss = daemon.rss();
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      peak = std::max(peak, rss);
      std::printf("%8.0f %8.1f\n", elapsed, rss);
      std::fflush(stdout);
      if (i == baseline_at) {
        baseline = rss;
        baseline_s = elapsed;
        baseline_requests = daemon.requests();
      }
      if (i == samples) {
        const auto requests = daemon.requests();
        std::printf(
            "growth:    %.1f MiB at %.0f s (%.0f running, %.0f waiting), %.1f MiB at the end "
            "(%.0f running, %.0f waiting): %+.1f MiB; peak %.1f MiB\n",
            baseline, baseline_s, baseline_requests.first, baseline_requests.second, rss,
            requests.first, requests.second, rss - baseline, peak);
      }
    }
  }
  return status;
}

}  // namespace
}  // namespace kvmock

int main(int argc, char** argv) { return kvmock::run(argc, argv); }
