#include "daemon/replay_command.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.h"
#include "core/replay/replay_driver.h"
#include "core/workload/mooncake_trace.h"
#include "core/workload/synthetic_workload.h"
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
  SyntheticSpec spec;
  bool requests_set = false;
  bool isl_set = false;
  bool osl_set = false;
  bool synthetic_flag_seen = false;
  bool omit_wall_time = false;
};

Error usage(std::string message) { return make_error("usage", std::move(message)); }

// Accepts "--flag VALUE" and "--flag=VALUE"; advances `i` past what it consumed. Sets
// `missing` when the flag matched but had no value.
bool take_value(std::string_view flag, int argc, char** argv, int& i, std::string& out,
                bool& missing) {
  const std::string_view arg = argv[i];
  if (arg == flag) {
    if (i + 1 >= argc) {
      missing = true;
      return true;
    }
    out = argv[++i];
    return true;
  }
  if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=') {
    out = std::string(arg.substr(flag.size() + 1));
    return true;
  }
  return false;
}

template <typename T>
Result<T> parse_unsigned(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return usage(std::string(flag) + ": expected a non-negative integer, got '" +
                 std::string(text) + "'");
  }
  return value;
}

Result<double> parse_number(std::string_view flag, std::string_view text) {
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(value)) {
    return usage(std::string(flag) + ": expected a number, got '" + copy + "'");
  }
  return value;
}

// MEAN or MEAN,STD.
Result<LengthSpec> parse_length(std::string_view flag, std::string_view text) {
  const size_t comma = text.find(',');
  Result<double> mean = parse_number(flag, text.substr(0, comma));
  if (!mean.ok()) return mean.error();
  LengthSpec length{*mean, 0};
  if (comma != std::string_view::npos) {
    Result<double> stddev = parse_number(flag, text.substr(comma + 1));
    if (!stddev.ok()) return stddev.error();
    length.stddev = *stddev;
  }
  return length;
}

Result<Flags> parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string v;
    bool missing = false;
    auto flag = [&](std::string_view name) { return take_value(name, argc, argv, i, v, missing); };
    if (arg == "--synthetic") {
      f.synthetic = true;
    } else if (arg == "--omit-wall-time") {
      f.omit_wall_time = true;
    } else if (flag("--config")) {
      f.config.path = v;
    } else if (flag("--set")) {
      f.config.sets.push_back(v);
    } else if (flag("--trace")) {
      f.trace_path = v;
    } else if (flag("--report")) {
      f.report_path = v;
    } else if (flag("--requests-out")) {
      f.requests_out = v;
    } else if (flag("--workers")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<uint32_t> n = parse_unsigned<uint32_t>("--workers", v);
      if (!n.ok()) return n.error();
      f.workers = *n;
    } else if (flag("--placement")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<Placement> p = parse_placement(v);
      if (!p.ok()) return usage("--placement: " + p.error().message);
      f.placement = *p;
    } else if (flag("--trace-block-size")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<uint32_t> n = parse_unsigned<uint32_t>("--trace-block-size", v);
      if (!n.ok()) return n.error();
      f.trace.trace_block_size = *n;
      f.trace_block_size_set = true;
    } else if (flag("--arrival-speedup")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<double> x = parse_number("--arrival-speedup", v);
      if (!x.ok()) return x.error();
      if (!(*x > 0)) return usage("--arrival-speedup: must be > 0");
      f.trace.arrival_speedup = *x;
      f.spec.arrival_speedup = *x;
    } else if (flag("--requests")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<uint64_t> n = parse_unsigned<uint64_t>("--requests", v);
      if (!n.ok()) return n.error();
      f.spec.num_requests = *n;
      f.requests_set = f.synthetic_flag_seen = true;
    } else if (flag("--isl") || flag("--osl")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      const bool input = arg.starts_with("--isl");
      Result<LengthSpec> length = parse_length(input ? "--isl" : "--osl", v);
      if (!length.ok()) return length.error();
      (input ? f.spec.input : f.spec.output) = *length;
      (input ? f.isl_set : f.osl_set) = true;
      f.synthetic_flag_seen = true;
    } else if (flag("--prefix-ratio")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<double> r = parse_number("--prefix-ratio", v);
      if (!r.ok()) return r.error();
      f.spec.shared_prefix_ratio = *r;
      f.synthetic_flag_seen = true;
    } else if (flag("--prefix-groups")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<uint32_t> g = parse_unsigned<uint32_t>("--prefix-groups", v);
      if (!g.ok()) return g.error();
      f.spec.num_prefix_groups = *g;
      f.synthetic_flag_seen = true;
    } else if (flag("--arrival")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<ArrivalSpec> a = parse_arrival_spec(v);
      if (!a.ok()) return usage("--arrival: " + a.error().message);
      f.spec.arrival = *a;
      f.synthetic_flag_seen = true;
    } else if (flag("--seed")) {
      if (missing) return usage(std::string(arg) + ": missing value");
      Result<uint64_t> s = parse_unsigned<uint64_t>("--seed", v);
      if (!s.ok()) return s.error();
      f.spec.seed = *s;
      f.synthetic_flag_seen = true;
    } else {
      return usage("unknown argument '" + std::string(arg) + "'");
    }
    if (missing) return usage(std::string(arg) + ": missing value");
  }

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
  return f;
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

int fail(int status, const std::string& message, bool show_usage = false) {
  std::fprintf(stderr, "kvmockd replay: %s\n", message.c_str());
  if (show_usage) std::fputs(kReplayUsage, stderr);
  return status;
}

}  // namespace

int run_replay_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kReplayUsage, stdout);
      return 0;
    }
  }
  Result<Flags> parsed = parse_flags(argc, argv);
  if (!parsed.ok()) return fail(2, parsed.error().message, /*show_usage=*/true);
  Flags& flags = parsed.value();

  flags.config.env = config_environment();
  Result<Config> config = load_config(flags.config);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 2;
  }

  ReplayOptions options;
  options.engine = config->workers.engine;
  options.workers = flags.workers.value_or(config->workers.count);
  options.placement = flags.placement;
  if (options.workers == 0) {
    return fail(2, "no workers to replay on (workers.count is 0; give --workers N)");
  }
  if (options.engine.timing.model == TimingModelKind::kProfile) {
    std::optional<std::string> profile = read_file(options.engine.timing.profile_path);
    if (!profile) {
      return fail(2, "workers.engine.timing.profile_path: cannot read '" +
                         options.engine.timing.profile_path + "'");
    }
    options.profile_text = std::move(*profile);
  }

  std::vector<WorkloadRequest> workload;
  if (flags.synthetic) {
    Result<SyntheticWorkload> generator = SyntheticWorkload::create(flags.spec);
    if (!generator.ok()) return fail(2, generator.error().message);
    while (std::optional<WorkloadRequest> request = generator->next()) {
      workload.push_back(std::move(*request));
    }
    if (flags.spec.arrival.kind == ArrivalKind::kClosedLoop) {
      options.closed_loop_concurrency = flags.spec.arrival.concurrency;
    }
  } else {
    std::optional<std::string> text = read_file(flags.trace_path);
    if (!text) return fail(2, "cannot read trace '" + flags.trace_path + "'");
    Result<std::vector<WorkloadRequest>> trace = parse_mooncake_trace(*text, flags.trace);
    if (!trace.ok()) return fail(2, flags.trace_path + ": " + trace.error().message);
    workload = std::move(trace).value();
  }

  const uint64_t total = workload.size();
  options.progress_every_requests = total >= 10 ? total / 10 : 0;
  options.on_progress = [](const ReplayProgress& p) {
    std::fprintf(
        stderr, "replay: %llu/%llu requests finished, %.1f s simulated, %llu output tokens\n",
        static_cast<unsigned long long>(p.finished), static_cast<unsigned long long>(p.total),
        p.now_ms / 1000.0, static_cast<unsigned long long>(p.output_tokens));
  };

  const Clock& clock = SystemClock::instance();
  const auto started = clock.steady_now();
  Result<ReplayResult> result = run_replay(std::move(workload), options);
  if (!result.ok()) return fail(2, result.error().message);
  const double wall_ms =
      std::chrono::duration<double, std::milli>(clock.steady_now() - started).count();

  const std::optional<double> wall =
      flags.omit_wall_time ? std::nullopt : std::optional<double>(wall_ms);
  if (!write_file(flags.report_path, render_report_json(result->summary, wall))) {
    return fail(1, "cannot write report '" + flags.report_path + "'");
  }
  if (!flags.requests_out.empty()) {
    std::string lines;
    for (const RequestRecord& record : result->records) lines += render_request_line(record);
    if (!write_file(flags.requests_out, lines)) {
      return fail(1, "cannot write '" + flags.requests_out + "'");
    }
  }
  const ReplaySummary& s = result->summary;
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

}  // namespace kvmock
