#include "daemon/replay_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.h"
#include "config/timing_profile.h"
#include "core/replay/replay_driver.h"
#include "core/workload/mooncake_trace.h"
#include "core/workload/synthetic_workload.h"
#include "daemon/flags.h"
#include "transport/time/system_clock.h"

namespace kvmock {
namespace {

constexpr const char* kReplayUsage =
    "usage: kvmockd replay [--config FILE] [--set KEY=VALUE ...] --report OUT.json\n"
    "         (--trace FILE [--trace-block-size N]\n"
    "          | --synthetic --requests N --isl MEAN[,STD] --osl MEAN[,STD]\n"
    "            [--prefix-ratio R] [--prefix-groups G] [--arrival SPEC] [--seed S])\n"
    "         [--requests-out OUT.jsonl] [--workers N] [--placement round_robin|kv_aware]\n"
    "         [--arrival-speedup X] [--omit-wall-time]\n"
    "  SPEC: burst | constant:RATE | poisson:RATE | gamma:RATE:CV | closed:CONCURRENCY\n";

struct Flags {
  ConfigSource config;
  std::string trace_path;
  bool synthetic = false;
  std::string report_path;
  std::string requests_out;
  std::optional<uint32_t> workers;
  Placement placement = Placement::kRoundRobin;
  TraceOptions trace;
  bool trace_block_size_set = false;
  // --prefix-groups defaults as workers.load.prefix_groups does, so --prefix-ratio alone
  // works.
  SyntheticSpec spec = [] {
    SyntheticSpec defaults;
    defaults.num_prefix_groups = LoadDriverConfig{}.prefix_groups;
    return defaults;
  }();
  bool requests_set = false;
  bool isl_set = false;
  bool osl_set = false;
  bool synthetic_flag_seen = false;
  bool omit_wall_time = false;
};

Error usage(std::string message) { return make_error("usage", std::move(message)); }

// MEAN or MEAN,STD.
Result<LengthSpec> parse_length(std::string_view flag, std::string_view text) {
  const size_t comma = text.find(',');
  Result<double> mean = parse_number_flag(flag, text.substr(0, comma));
  if (!mean.ok()) return mean.error();
  LengthSpec length{*mean, 0};
  if (comma != std::string_view::npos) {
    Result<double> stddev = parse_number_flag(flag, text.substr(comma + 1));
    if (!stddev.ok()) return stddev.error();
    length.stddev = *stddev;
  }
  return length;
}

// A flag that shapes the synthetic workload, so it needs --synthetic.
FlagSpec synthetic_only(FlagSpec flag, Flags& f) {
  return {flag.name, flag.takes_value,
          [&f, handler = std::move(flag.handler)](std::string_view value) {
            f.synthetic_flag_seen = true;
            return handler(value);
          }};
}

FlagSpec length_flag(std::string_view name, LengthSpec& out, bool& set) {
  return {name, true, [name, &out, &set](std::string_view text) -> Result<bool> {
            Result<LengthSpec> length = parse_length(name, text);
            if (!length.ok()) return length.error();
            out = *length;
            return set = true;
          }};
}

std::vector<FlagSpec> replay_flags(Flags& f) {
  std::vector<FlagSpec> flags = config_flags(f.config, /*with_log=*/false);
  const FlagSpec own[] = {
      string_flag("--trace", f.trace_path),
      switch_flag("--synthetic", f.synthetic),
      string_flag("--report", f.report_path),
      string_flag("--requests-out", f.requests_out),
      switch_flag("--omit-wall-time", f.omit_wall_time),
      unsigned_flag("--workers", 0, UINT32_MAX,
                    [&f](uint64_t n) { f.workers = static_cast<uint32_t>(n); }),
      {"--placement", true,
       [&f](std::string_view text) -> Result<bool> {
         Result<Placement> placement = parse_placement(text);
         if (!placement.ok()) return usage("--placement: " + placement.error().message);
         f.placement = *placement;
         return true;
       }},
      unsigned_flag("--trace-block-size", 0, UINT32_MAX,
                    [&f](uint64_t n) {
                      f.trace.trace_block_size = static_cast<uint32_t>(n);
                      f.trace_block_size_set = true;
                    }),
      number_flag("--arrival-speedup",
                  [&f](double x) -> Result<bool> {
                    if (!(x > 0)) return usage("--arrival-speedup: must be > 0");
                    f.trace.arrival_speedup = f.spec.arrival_speedup = x;
                    return true;
                  }),
      synthetic_only(unsigned_flag("--requests", 0, UINT64_MAX,
                                   [&f](uint64_t n) {
                                     f.spec.num_requests = n;
                                     f.requests_set = true;
                                   }),
                     f),
      synthetic_only(length_flag("--isl", f.spec.input, f.isl_set), f),
      synthetic_only(length_flag("--osl", f.spec.output, f.osl_set), f),
      synthetic_only(number_flag("--prefix-ratio",
                                 [&f](double r) -> Result<bool> {
                                   f.spec.shared_prefix_ratio = r;
                                   return true;
                                 }),
                     f),
      synthetic_only(unsigned_flag("--prefix-groups", f.spec.num_prefix_groups), f),
      synthetic_only({"--arrival", true,
                      [&f](std::string_view text) -> Result<bool> {
                        Result<ArrivalSpec> arrival = parse_arrival_spec(text);
                        if (!arrival.ok()) return usage("--arrival: " + arrival.error().message);
                        f.spec.arrival = *arrival;
                        return true;
                      }},
                     f),
      synthetic_only(unsigned_flag("--seed", f.spec.seed), f),
  };
  flags.insert(flags.end(), std::begin(own), std::end(own));
  return flags;
}

// How the flags combine; each flag's own value was checked as it was parsed.
Result<bool> check_combination(const Flags& f) {
  if (f.report_path.empty()) return usage("--report OUT.json is required");
  if (f.synthetic == !f.trace_path.empty()) {
    return usage("give exactly one of --trace FILE and --synthetic");
  }
  if (f.synthetic) {
    if (f.trace_block_size_set) return usage("--trace-block-size applies to --trace only");
    if (!f.requests_set || !f.isl_set || !f.osl_set) {
      return usage("--synthetic needs --requests, --isl and --osl");
    }
    if (f.spec.num_requests == 0) return usage("--requests: must be at least 1");
  } else if (f.synthetic_flag_seen) {
    return usage("--requests, --isl, --osl, --prefix-*, --arrival and --seed need --synthetic");
  }
  return true;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return std::nullopt;
  return std::move(text).str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return false;
  file << text;
  file.flush();
  return static_cast<bool>(file);
}

int fail(int status, const std::string& message) {
  std::fprintf(stderr, "kvmockd replay: %s\n", message.c_str());
  return status;
}

Result<ReplayOptions> replay_options(const Flags& flags, const Config& config) {
  ReplayOptions options;
  options.engine = config.workers.engine;
  options.workers = flags.workers.value_or(config.workers.count);
  options.placement = flags.placement;
  if (options.workers == 0) {
    return usage("no workers to replay on (workers.count is 0; give --workers N)");
  }
  Result<std::string> profile = load_timing_profile(config);
  if (!profile.ok()) return profile.error();
  options.profile_text = std::move(profile).value();
  return options;
}

// The requests to replay; a closed-loop synthetic workload also sets the concurrency.
Result<std::vector<WorkloadRequest>> load_workload(const Flags& flags, ReplayOptions& options) {
  if (!flags.synthetic) {
    std::optional<std::string> text = read_file(flags.trace_path);
    if (!text) return usage("cannot read trace '" + flags.trace_path + "'");
    Result<std::vector<WorkloadRequest>> trace = parse_mooncake_trace(*text, flags.trace);
    if (!trace.ok()) return usage(flags.trace_path + ": " + trace.error().message);
    return trace;
  }
  Result<SyntheticWorkload> generator = SyntheticWorkload::create(flags.spec);
  if (!generator.ok()) return generator.error();
  std::vector<WorkloadRequest> workload;
  while (std::optional<WorkloadRequest> request = generator->next()) {
    workload.push_back(std::move(*request));
  }
  if (flags.spec.arrival.kind == ArrivalKind::kClosedLoop) {
    options.closed_loop_concurrency = flags.spec.arrival.concurrency;
  }
  return workload;
}

void report_progress_every_tenth(ReplayOptions& options, uint64_t total) {
  options.progress_every_requests = total >= 10 ? total / 10 : 0;
  options.on_progress = [](const ReplayProgress& p) {
    std::fprintf(
        stderr, "replay: %llu/%llu requests finished, %.1f s simulated, %llu output tokens\n",
        static_cast<unsigned long long>(p.finished), static_cast<unsigned long long>(p.total),
        p.now_ms / 1000.0, static_cast<unsigned long long>(p.output_tokens));
  };
}

// Writes the report (and the per-request lines) and prints the closing summary.
int write_outputs(const Flags& flags, const ReplayResult& result, double wall_ms) {
  const std::optional<double> wall =
      flags.omit_wall_time ? std::nullopt : std::optional<double>(wall_ms);
  if (!write_file(flags.report_path, render_report_json(result.summary, wall))) {
    return fail(1, "cannot write report '" + flags.report_path + "'");
  }
  if (!flags.requests_out.empty()) {
    std::string lines;
    for (const RequestRecord& record : result.records) lines += render_request_line(record);
    if (!write_file(flags.requests_out, lines)) {
      return fail(1, "cannot write '" + flags.requests_out + "'");
    }
  }
  const ReplaySummary& s = result.summary;
  std::fprintf(stderr,
               "replay: done: %llu completed, %llu failed, %.3f s simulated in %.3f s wall, "
               "report in %s\n",
               static_cast<unsigned long long>(s.completed),
               static_cast<unsigned long long>(s.failed), s.duration_ms / 1000.0, wall_ms / 1000.0,
               flags.report_path.c_str());
  const std::string g2 = render_g2_text(s.g2);
  if (!g2.empty()) std::fprintf(stderr, "replay: %s\n", g2.c_str());
  return 0;
}

}  // namespace

int run_replay_command(int argc, char** argv) {
  Flags flags;
  const std::vector<FlagSpec> table = replay_flags(flags);
  if (auto status = handle_command_line(argc, argv, table, kReplayUsage)) return *status;
  if (Result<bool> combined = check_combination(flags); !combined.ok()) {
    std::fprintf(stderr, "kvmockd replay: %s\n%s", combined.error().message.c_str(), kReplayUsage);
    return 2;
  }
  flags.config.env = config_environment();
  Result<Config> config = load_config(flags.config);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 2;
  }
  Result<ReplayOptions> options = replay_options(flags, *config);
  if (!options.ok()) return fail(2, options.error().message);
  Result<std::vector<WorkloadRequest>> workload = load_workload(flags, *options);
  if (!workload.ok()) return fail(2, workload.error().message);
  report_progress_every_tenth(*options, workload->size());

  const Clock& clock = SystemClock::instance();
  const auto started = clock.steady_now();
  Result<ReplayResult> result = run_replay(std::move(workload).value(), *options);
  if (!result.ok()) return fail(2, result.error().message);
  const double wall_ms =
      std::chrono::duration<double, std::milli>(clock.steady_now() - started).count();
  return write_outputs(flags, *result, wall_ms);
}

}  // namespace kvmock
