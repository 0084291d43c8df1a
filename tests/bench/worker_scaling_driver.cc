// Worker-scaling driver: how many mock workers one `kvmockd run` process sustains at a
// fixed per-worker load (built-in load driver, wall clock, speedup 1) while the pass
// lateness p99 stays under 2 ms.
//
// For each worker count N it starts a real nats-server and a kvmockd subprocess with
// N workers (no worker HTTP ports: the admin port is the only listener), waits for
// warm-up, then scrapes admin /metrics at the start and the end of a measurement window
// and reports over that window:
//   lateness p99  kvmock_worker_pass_lateness_seconds, bucket-count differences, linearly
//                 interpolated inside the bucket that holds the 99th percentile,
//   done/s        requests finished (vllm_request_success_total, summed over workers)
//                 against the offered 2·N/s (Poisson: the realized arrivals are shown too,
//                 from vllm_prompt_tokens_total / input_tokens),
//   TTFT          mean, from vllm_time_to_first_token_seconds _sum/_count,
//   events/s      kvmock_pipeline_events_queued_total (router events) and NATS messages,
//   CPU           utime+stime of the daemon (/proc/<pid>/stat) per wall second, in cores,
//                 and the nats-server's, since both share the machine's cores,
//   RSS           VmRSS of the daemon at the end of the window.
// The machine is shared: the 1-minute load average is printed before each point.
//
// Usage: worker_scaling_driver [--workers=16,64,256,512,1000] [--seconds=20] [--warmup=5]
//          [--kvmockd=PATH] [--rate=2] [--input=1000] [--output=100] [--wrap="CMD ARGS"]
//          [--set=key=value]...
// --wrap prefixes the daemon's command line (e.g. "valgrind --tool=callgrind"); --set
// passes extra config overrides to every run.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
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

using Clock = std::chrono::steady_clock;
using bench::cpu_seconds;
using bench::load_average;
using bench::parse_exposition;
using bench::rss_mib;
using bench::Samples;
using bench::sum_of;
using bench::wait_ready;
using testing::ChildProcess;
using testing::http_request;
using testing::NatsServer;

constexpr double kLatenessLimitSeconds = 0.002;
constexpr double kCompletionLimit = 0.95;

struct Flags {
  std::vector<uint32_t> workers = {16, 64, 256, 512, 1000};
  double seconds = 20;
  double warmup = 5;
  std::string kvmockd = testing::kvmockd_path();
  double rate = 2;
  uint32_t input = 1000;
  uint32_t output = 100;
  std::vector<std::string> wrap;
  std::vector<std::string> sets;
};

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(separator, start), text.size());
    if (end > start) parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::optional<Flags> parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const auto flag = bench::split_flag(argv[i]);
    if (!flag) return std::nullopt;
    const std::string_view key = flag->key;
    const std::string& value = flag->value;
    char* end = nullptr;
    if (key == "workers") {
      flags.workers.clear();
      for (const std::string& n : split(value, ',')) {
        flags.workers.push_back(static_cast<uint32_t>(std::strtoul(n.c_str(), &end, 10)));
        if (*end != '\0' || flags.workers.back() == 0) return std::nullopt;
      }
    } else if (key == "seconds" || key == "warmup" || key == "rate") {
      const double v = std::strtod(value.c_str(), &end);
      if (*end != '\0' || !(v > 0)) return std::nullopt;
      (key == "seconds" ? flags.seconds : key == "warmup" ? flags.warmup : flags.rate) = v;
    } else if (key == "input" || key == "output") {
      const auto v = static_cast<uint32_t>(std::strtoul(value.c_str(), &end, 10));
      if (*end != '\0' || v == 0) return std::nullopt;
      (key == "input" ? flags.input : flags.output) = v;
    } else if (key == "kvmockd") {
      flags.kvmockd = value;
    } else if (key == "wrap") {
      flags.wrap = split(value, ' ');
    } else if (key == "set") {
      flags.sets.push_back(value);
    } else {
      std::fprintf(stderr, "unknown flag '--%.*s'\n", static_cast<int>(key.size()), key.data());
      return std::nullopt;
    }
  }
  if (flags.workers.empty()) return std::nullopt;
  return flags;
}

// Cumulative bucket counts of an unlabelled histogram, by upper bound (+Inf as infinity).
std::map<double, double> buckets_of(const Samples& samples, const std::string& name) {
  std::map<double, double> buckets;
  const std::string prefix = name + "_bucket{le=\"";
  for (auto it = samples.lower_bound(prefix); it != samples.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    const std::string le = it->first.substr(prefix.size(), it->first.size() - prefix.size() - 2);
    buckets[le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr)] = it->second;
  }
  return buckets;
}

// The q-quantile of the observations made between two scrapes, interpolated linearly
// within the bucket that holds it (as Prometheus' histogram_quantile does). +Inf when
// it falls in the last bucket; NaN with no observations.
double window_quantile(const std::map<double, double>& start, const std::map<double, double>& end,
                       double q, double* observations) {
  std::vector<std::pair<double, double>> cumulative;  // (upper bound, count in window)
  for (const auto& [bound, count] : end) {
    auto before = start.find(bound);
    cumulative.emplace_back(bound, count - (before == start.end() ? 0 : before->second));
  }
  const double total = cumulative.empty() ? 0 : cumulative.back().second;
  *observations = total;
  if (total <= 0) return NAN;
  const double rank = q * total;
  double lower_bound = 0, lower_count = 0;
  for (const auto& [bound, count] : cumulative) {
    if (count >= rank) {
      if (std::isinf(bound)) return INFINITY;
      const double in_bucket = count - lower_count;
      return in_bucket <= 0
                 ? bound
                 : lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket;
    }
    lower_bound = bound;
    lower_count = count;
  }
  return INFINITY;
}

void sleep_seconds(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

struct Point {
  uint32_t workers = 0;
  bool ok = false;  // the run itself worked (daemon up, both scrapes answered)
  std::string failure;
  double lateness_p99_ms = NAN;
  double lateness_mean_ms = NAN;
  double passes_per_s = 0;
  double offered_per_s = 0;
  double arrived_per_s = 0;
  double done_per_s = 0;
  double ttft_mean_ms = NAN;
  double events_per_s = 0;
  double nats_msgs_per_s = 0;
  double cpu_cores = NAN;
  double nats_cpu_cores = NAN;
  double rss = NAN;
  double scrape_ms = NAN;  // the second /metrics request, end to end
  double scrape_mib = NAN;
  bool sustained() const {
    return ok && lateness_p99_ms < kLatenessLimitSeconds * 1000 &&
           done_per_s >= kCompletionLimit * offered_per_s;
  }
};

Point measure(const Flags& flags, uint32_t workers) {
  Point point;
  point.workers = workers;
  point.offered_per_s = flags.rate * workers;
  NatsServer nats;
  if (!nats.start()) {
    point.failure = "nats-server did not start";
    return point;
  }
  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  std::vector<std::string> argv = flags.wrap;
  argv.insert(argv.end(), {flags.kvmockd, "run", "--log-level", "warn"});
  std::vector<std::string> sets = bench::kvmockd_run_sets(
      nats.url(), admin_port, workers, /*load=*/true, flags.rate, flags.input, flags.output);
  sets.insert(sets.end(), flags.sets.begin(), flags.sets.end());
  for (const std::string& set : sets) argv.insert(argv.end(), {"--set", set});
  ChildProcess daemon(argv);
  // Startup of a wrapped (valgrind) daemon with many workers takes long.
  const auto ready_timeout = std::chrono::seconds(flags.wrap.empty() ? 60 : 600);
  if (!wait_ready(admin_port, daemon, ready_timeout)) {
    point.failure = "daemon not ready: " + daemon.output().substr(0, 2000);
    return point;
  }
  sleep_seconds(flags.warmup);

  const auto scrape_timeout = std::chrono::seconds(30);
  const double cpu0 = cpu_seconds(daemon.pid());
  const double nats_cpu0 = cpu_seconds(nats.pid());
  const auto t0 = Clock::now();
  const auto first = http_request(admin_port, "GET", "/metrics", "", scrape_timeout);
  sleep_seconds(flags.seconds);
  const auto scrape_start = Clock::now();
  const auto second = http_request(admin_port, "GET", "/metrics", "", scrape_timeout);
  point.scrape_ms = std::chrono::duration<double, std::milli>(Clock::now() - scrape_start).count();
  point.scrape_mib = static_cast<double>(second.body.size()) / (1 << 20);
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu1 = cpu_seconds(daemon.pid());
  const double nats_cpu1 = cpu_seconds(nats.pid());
  point.rss = rss_mib(daemon.pid());

  daemon.signal(SIGTERM);
  if (daemon.wait(std::chrono::seconds(30)) < 0) {
    std::fprintf(stderr, "N=%u: daemon did not stop within 30 s; killed\n", workers);
    daemon.signal(SIGKILL);
    daemon.wait(std::chrono::seconds(5));
  }
  nats.stop();
  if (first.status != 200 || second.status != 200) {
    point.failure = "scrape failed: " + first.error + " " + second.error;
    return point;
  }
  point.ok = true;
  // The window runs from the first scrape's start to the second's end; both scrapes
  // are fast next to it, and the CPU figures cover exactly the same span.
  const Samples a = parse_exposition(first.body);
  const Samples b = parse_exposition(second.body);
  auto rate = [&](const std::string& name) { return (sum_of(b, name) - sum_of(a, name)) / wall; };
  const std::string lateness = "kvmock_worker_pass_lateness_seconds";
  double observations = 0;
  point.lateness_p99_ms =
      1000 * window_quantile(buckets_of(a, lateness), buckets_of(b, lateness), 0.99, &observations);
  const double lateness_sum = sum_of(b, lateness + "_sum") - sum_of(a, lateness + "_sum");
  point.lateness_mean_ms = observations > 0 ? 1000 * lateness_sum / observations : NAN;
  point.passes_per_s = observations / wall;
  point.done_per_s = rate("vllm_request_success_total");
  point.arrived_per_s = rate("vllm_prompt_tokens_total") / flags.input;
  const double ttft_count = sum_of(b, "vllm_time_to_first_token_seconds_count") -
                            sum_of(a, "vllm_time_to_first_token_seconds_count");
  const double ttft_sum = sum_of(b, "vllm_time_to_first_token_seconds_sum") -
                          sum_of(a, "vllm_time_to_first_token_seconds_sum");
  point.ttft_mean_ms = ttft_count > 0 ? 1000 * ttft_sum / ttft_count : NAN;
  point.events_per_s = rate("kvmock_pipeline_events_queued_total");
  point.nats_msgs_per_s = rate("kvmock_nats_published_total");
  point.cpu_cores = (cpu1 - cpu0) / wall;
  point.nats_cpu_cores = (nats_cpu1 - nats_cpu0) / wall;
  return point;
}

void print_header() {
  std::printf("%6s %6s %10s %9s %8s %8s %8s %6s %9s %9s %9s %6s %6s %7s %8s %7s %s\n", "N", "load1",
              "late_p99ms", "late_mean", "passes/s", "offer/s", "arrive/s", "done%", "TTFTms",
              "events/s", "natsmsg/s", "cpu", "natcpu", "rssMiB", "scrapems", "scrapeMB", "ok");
}

void print_row(const Point& p, const std::string& load) {
  if (!p.ok) {
    std::printf("%6u %6s  run failed: %s\n", p.workers, load.c_str(), p.failure.c_str());
    return;
  }
  char p99[32];
  if (std::isinf(p.lateness_p99_ms)) {
    std::snprintf(p99, sizeof p99, ">1000");
  } else {
    std::snprintf(p99, sizeof p99, "%.3f", p.lateness_p99_ms);
  }
  std::printf(
      "%6u %6s %10s %9.3f %8.0f %8.0f %8.1f %6.1f %9.1f %9.0f %9.0f %6.2f %6.2f %7.0f %8.0f %7.1f "
      "%s\n",
      p.workers, load.c_str(), p99, p.lateness_mean_ms, p.passes_per_s, p.offered_per_s,
      p.arrived_per_s, 100 * p.done_per_s / p.offered_per_s, p.ttft_mean_ms, p.events_per_s,
      p.nats_msgs_per_s, p.cpu_cores, p.nats_cpu_cores, p.rss, p.scrape_ms, p.scrape_mib,
      p.sustained() ? "yes" : "no");
}

constexpr const char* kUsage =
    "usage: worker_scaling_driver [--workers=16,64,256,512,1000] [--seconds=20] "
    "[--warmup=5] [--kvmockd=PATH] [--rate=2] [--input=1000] [--output=100] "
    "[--wrap=\"CMD ARGS\"] [--set=key=value]...\n"
    "  For each worker count, runs kvmockd with that many workers at RATE requests/s each\n"
    "  (INPUT prompt tokens, OUTPUT output tokens, wall-clock speed) beside a local\n"
    "  nats-server and prints pass-lateness p99, passes/s, completion, events/s, CPU and RSS\n"
    "  over SECONDS after WARMUP. --wrap prefixes the daemon's command line (a profiler);\n"
    "  --set passes a config override to every run.\n";

int run(int argc, char** argv) {
  if (bench::answered_help(argc, argv, kUsage)) return 0;
  const auto flags = parse_flags(argc, argv);
  if (const auto status = bench::cannot_run(flags.has_value(), kUsage)) return *status;
  std::printf(
      "worker scaling: %g requests/s per worker, %u prompt tokens, %u output tokens, speedup 1; "
      "%g s warm-up, %g s window; %ld online CPUs\n"
      "lateness p99 interpolated linearly inside its histogram bucket; done%% = finished "
      "requests / offered (rate x N); sustained = p99 < %.0f ms and done%% >= %.0f\n",
      flags->rate, flags->input, flags->output, flags->warmup, flags->seconds,
      ::sysconf(_SC_NPROCESSORS_ONLN), kLatenessLimitSeconds * 1000, kCompletionLimit * 100);
  print_header();
  std::fflush(stdout);
  std::optional<uint32_t> best;
  for (uint32_t n : flags->workers) {
    const std::string load = split(load_average(), ' ').front();
    const Point point = measure(*flags, n);
    print_row(point, load);
    std::fflush(stdout);
    if (point.sustained() && (!best || n > *best)) best = n;
  }
  if (best) {
    std::printf(
        "largest sustained: %u workers (lateness p99 < %.0f ms, done >= %.0f%% of offered)\n",
        *best, kLatenessLimitSeconds * 1000, kCompletionLimit * 100);
  } else {
    std::printf("largest sustained: none of the tested worker counts\n");
  }
  return 0;
}

}  // namespace
}  // namespace kvmock

int main(int argc, char** argv) { return kvmock::run(argc, argv); }
