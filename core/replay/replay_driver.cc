#include "core/replay/replay_driver.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <utility>

#include "core/engine/engine_core.h"
#include "core/indexer/radix_tree.h"
#include "core/timing/timing_model.h"
#include "core/tokens/block_hash.h"

namespace kvmock {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
// A zero-time pass can do invisible work (recomputing generated tokens after a preemption
// with a tiny token budget), so a worker is only declared stuck after this many such
// passes in a row. Far more than any real recompute needs, few enough to end quickly.
constexpr uint32_t kMaxIdlePasses = 1u << 16;

Error bad_options(std::string message) {
  return make_error("bad_replay_options", std::move(message));
}
Error bad_workload(std::string message) { return make_error("bad_workload", std::move(message)); }

struct Worker {
  std::unique_ptr<EngineCore> engine;
  bool busy = false;
  // Set after kMaxIdlePasses passes in a row that showed no progress; cleared when a
  // request is added. Keeps a worker that cannot progress from spinning the clock in place.
  bool stalled = false;
  uint32_t idle_passes = 0;
  double pass_end_ms = 0;
  std::vector<RequestOutput> outputs;  // delivered at pass_end_ms
  // Requests given to this worker and not finished. Breaks load ties that blocks cannot:
  // requests queued in the same instant hold no blocks yet.
  uint64_t in_flight = 0;
};

// A session's later turn waiting for its release time. Ordered by (time, index).
struct Release {
  double at_ms;
  size_t index;
  bool operator>(const Release& other) const {
    return at_ms != other.at_ms ? at_ms > other.at_ms : index > other.index;
  }
};

class Driver {
 public:
  Driver(std::vector<WorkloadRequest> workload, const ReplayOptions& options)
      : workload_(std::move(workload)), options_(options) {}

  Result<bool> init();
  ReplayResult run();

 private:
  void deliver(Worker& worker);
  void finish(size_t index, double at_ms);
  void dispatch(size_t index, double now_ms);
  uint32_t choose_worker(const std::vector<TokenId>& prompt);
  void start_passes(double now_ms);
  double next_event_ms() const;
  void report_progress(double now_ms);

  std::vector<WorkloadRequest> workload_;
  const ReplayOptions& options_;
  std::vector<Worker> workers_;
  RadixTree tree_;
  uint64_t round_robin_ = 0;

  std::vector<RequestRecord> records_;
  std::vector<double> itl_ms_;
  std::vector<std::vector<size_t>> followers_;  // index -> later turns that wait on it
  std::vector<size_t> arrivals_;                // open-loop arrivals in due order
  size_t next_arrival_ = 0;
  std::priority_queue<Release, std::vector<Release>, std::greater<>> releases_;
  size_t next_closed_ = 0;  // closed loop: next workload index to dispatch

  uint64_t in_flight_ = 0;
  uint64_t max_in_flight_ = 0;
  uint64_t finished_ = 0;
  uint64_t output_tokens_ = 0;
  uint64_t passes_ = 0;
  double next_progress_ms_ = kNever;
  uint64_t next_progress_requests_ = std::numeric_limits<uint64_t>::max();
};

Result<bool> Driver::init() {
  if (options_.workers == 0 || options_.workers > kMaxReplayWorkers) {
    return bad_options("workers must be in [1, " + std::to_string(kMaxReplayWorkers) + "]");
  }
  if (options_.engine.dp_size != 1) {
    return bad_options("replay runs one rank per worker: dp_size must be 1");
  }
  const bool closed = options_.closed_loop_concurrency > 0;
  followers_.resize(workload_.size());
  records_.resize(workload_.size());
  for (size_t i = 0; i < workload_.size(); ++i) {
    const WorkloadRequest& r = workload_[i];
    if (r.prompt.size() > std::numeric_limits<uint32_t>::max()) {
      return bad_workload("request " + std::to_string(i) + ": prompt longer than 2^32 tokens");
    }
    records_[i].id = i;
    records_[i].input_tokens = static_cast<uint32_t>(r.prompt.size());
    if (r.after) {
      if (closed) return bad_options("closed-loop replay takes single-turn requests only");
      if (*r.after >= i) {
        return bad_workload("request " + std::to_string(i) + ": follows a later request");
      }
      if (!std::isfinite(r.delay_ms) || r.delay_ms < 0) {
        return bad_workload("request " + std::to_string(i) + ": delay must be finite and >= 0");
      }
      followers_[*r.after].push_back(i);
    } else if (!closed) {
      if (!std::isfinite(r.arrival_ms) || r.arrival_ms < 0) {
        return bad_workload("request " + std::to_string(i) + ": arrival must be finite and >= 0");
      }
      arrivals_.push_back(i);
    }
  }
  std::stable_sort(arrivals_.begin(), arrivals_.end(), [this](size_t a, size_t b) {
    return workload_[a].arrival_ms < workload_[b].arrival_ms;
  });

  workers_.resize(options_.workers);
  for (uint32_t w = 0; w < options_.workers; ++w) {
    Result<std::unique_ptr<TimingModel>> timing =
        make_timing_model(options_.engine.timing, options_.profile_text);
    if (!timing.ok()) return timing.error();
    workers_[w].engine = std::make_unique<EngineCore>(options_.engine, WorkerId{w}, DpRank{0},
                                                      std::move(timing).value());
  }
  if (options_.progress_every_ms > 0) next_progress_ms_ = options_.progress_every_ms;
  if (options_.progress_every_requests > 0) {
    next_progress_requests_ = options_.progress_every_requests;
  }
  return true;
}

uint32_t Driver::choose_worker(const std::vector<TokenId>& prompt) {
  const uint32_t n = static_cast<uint32_t>(workers_.size());
  if (options_.placement == Placement::kRoundRobin) {
    return static_cast<uint32_t>(round_robin_++ % n);
  }
  const std::vector<uint64_t> hashes =
      tokens_hashes(prompt, std::max<uint32_t>(1, options_.engine.block_size));
  const OverlapScores scores = tree_.find_matches(hashes);
  uint32_t best = 0;
  uint32_t best_overlap = 0;
  std::pair<uint64_t, uint64_t> best_load;
  for (uint32_t w = 0; w < n; ++w) {
    const uint32_t overlap = scores.score(WorkerRank{w, 0});
    const std::pair<uint64_t, uint64_t> load{workers_[w].engine->active_decode_blocks(),
                                             workers_[w].in_flight};
    if (w == 0 || overlap > best_overlap || (overlap == best_overlap && load < best_load)) {
      best = w;
      best_overlap = overlap;
      best_load = load;
    }
  }
  return best;
}

void Driver::dispatch(size_t index, double now_ms) {
  WorkloadRequest& source = workload_[index];
  RequestRecord& record = records_[index];
  const uint32_t w = choose_worker(source.prompt);
  record.worker = w;
  record.dispatched = true;
  record.arrival_ms = now_ms;
  ++in_flight_;
  ++workers_[w].in_flight;
  max_in_flight_ = std::max(max_in_flight_, in_flight_);

  Request request;
  request.id = index;
  request.prompt = std::move(source.prompt);
  request.max_tokens = source.max_tokens;
  request.arrival_ms = now_ms;
  Result<bool> added = workers_[w].engine->add_request(std::move(request));
  if (!added.ok()) {
    record.error = added.error().reason;
    finish(index, now_ms);
    return;
  }
  workers_[w].stalled = false;
  workers_[w].idle_passes = 0;
}

void Driver::finish(size_t index, double at_ms) {
  RequestRecord& record = records_[index];
  record.finish_ms = at_ms;
  --in_flight_;
  --workers_[record.worker].in_flight;
  ++finished_;
  for (size_t follower : followers_[index]) {
    releases_.push(Release{at_ms + workload_[follower].delay_ms, follower});
  }
  if (finished_ >= next_progress_requests_) {
    next_progress_requests_ += options_.progress_every_requests;
    report_progress(at_ms);
  }
}

void Driver::deliver(Worker& worker) {
  const double at = worker.pass_end_ms;
  for (const RequestOutput& out : worker.outputs) {
    if (out.id >= records_.size()) continue;  // not ours; cannot happen
    RequestRecord& record = records_[out.id];
    record.cached_tokens = out.cached_tokens;
    for (size_t t = 0; t < out.tokens.size(); ++t) {
      ++record.output_tokens;
      ++output_tokens_;
      if (record.output_tokens == 1) {
        record.first_token_ms = at;
      } else {
        if (record.output_tokens == 2) record.second_token_ms = at;
        itl_ms_.push_back(at - record.last_token_ms);
      }
      record.last_token_ms = at;
    }
    if (out.finished) {
      // An EOS or stop token ends a request as normally as max_tokens does.
      record.completed =
          out.finish_reason == FinishReason::kLength || out.finish_reason == FinishReason::kStop;
      if (!record.completed) {
        record.error = out.finish_reason == FinishReason::kError ? out.error : "abort";
      }
      finish(out.id, at);
    }
  }
  worker.outputs.clear();
  worker.busy = false;
}

void Driver::start_passes(double now_ms) {
  for (uint32_t w = 0; w < workers_.size(); ++w) {
    Worker& worker = workers_[w];
    if (worker.busy || worker.stalled || !worker.engine->has_work()) continue;
    PassOutput pass = worker.engine->step(now_ms);
    ++passes_;
    if (options_.placement == Placement::kKvAware) {
      // A refused event can only mean the tree and engine disagree; placement then just
      // scores that block lower, so it is not fatal to the run.
      for (const RouterEvent& event : pass.events) (void)tree_.apply(event);
    }
    const bool visible_progress = !pass.outputs.empty() || !pass.events.empty() ||
                                  pass.end_ms > now_ms || pass.fpm.num_prefill_requests > 0 ||
                                  pass.fpm.num_decode_requests > 0;
    if (visible_progress) {
      worker.idle_passes = 0;
    } else if (++worker.idle_passes >= kMaxIdlePasses) {
      worker.stalled = true;
      continue;
    }
    worker.busy = true;
    worker.pass_end_ms = pass.end_ms;
    worker.outputs = std::move(pass.outputs);
  }
}

double Driver::next_event_ms() const {
  double next = kNever;
  for (const Worker& worker : workers_) {
    if (worker.busy) next = std::min(next, worker.pass_end_ms);
  }
  if (next_arrival_ < arrivals_.size()) {
    next = std::min(next, workload_[arrivals_[next_arrival_]].arrival_ms);
  }
  if (!releases_.empty()) next = std::min(next, releases_.top().at_ms);
  return next;
}

void Driver::report_progress(double now_ms) {
  if (!options_.on_progress) return;
  ReplayProgress progress;
  progress.now_ms = now_ms;
  progress.finished = finished_;
  progress.total = records_.size();
  progress.output_tokens = output_tokens_;
  progress.in_flight = in_flight_;
  options_.on_progress(progress);
}

ReplayResult Driver::run() {
  const uint64_t concurrency = options_.closed_loop_concurrency;
  double now = 0;
  while (true) {
    for (Worker& worker : workers_) {
      if (worker.busy && worker.pass_end_ms <= now) deliver(worker);
    }
    while (next_arrival_ < arrivals_.size() &&
           workload_[arrivals_[next_arrival_]].arrival_ms <= now) {
      dispatch(arrivals_[next_arrival_++], now);
    }
    while (!releases_.empty() && releases_.top().at_ms <= now) {
      const size_t index = releases_.top().index;
      releases_.pop();
      dispatch(index, now);
    }
    if (concurrency > 0) {
      // A request rejected at dispatch frees its slot at once, so keep filling.
      while (in_flight_ < concurrency && next_closed_ < workload_.size()) {
        dispatch(next_closed_++, now);
      }
    }
    start_passes(now);

    const double next = next_event_ms();
    if (next == kNever) break;
    now = std::max(now, next);
    if (now >= next_progress_ms_) {
      // One line per crossing, however many multiples a long idle gap skips.
      report_progress(now);
      next_progress_ms_ =
          (std::floor(now / options_.progress_every_ms) + 1) * options_.progress_every_ms;
    }
  }

  uint64_t preemptions = 0;
  G2Summary g2;
  for (const Worker& worker : workers_) {
    const EngineMetrics m = worker.engine->metrics();
    preemptions += m.preemptions_total;
    g2.enabled = g2.enabled || worker.engine->g2_enabled();
    g2.onboard_hit_tokens += m.g2_onboard_hit_tokens;
    g2.bytes_offloaded += m.g2_bytes_offloaded;
    g2.bytes_onboarded += m.g2_bytes_onboarded;
    g2.blocks_offloaded += m.g2_blocks_offloaded;
    g2.offloads_dropped += m.g2_offloads_dropped;
  }
  for (RequestRecord& record : records_) {
    if (!record.completed && record.error.empty()) record.error = "incomplete";
  }

  ReplayResult result;
  result.summary = summarize_replay(records_, std::move(itl_ms_), preemptions, now);
  result.summary.workers = static_cast<uint32_t>(workers_.size());
  result.summary.placement = std::string(placement_name(options_.placement));
  result.summary.g2 = g2;
  result.records = std::move(records_);
  result.max_in_flight = max_in_flight_;
  result.passes = passes_;
  return result;
}

}  // namespace

Result<Placement> parse_placement(std::string_view text) {
  if (text == "round_robin") return Placement::kRoundRobin;
  if (text == "kv_aware") return Placement::kKvAware;
  return make_error("bad_placement",
                    "placement must be round_robin or kv_aware, not '" + std::string(text) + "'");
}

std::string_view placement_name(Placement placement) {
  return placement == Placement::kKvAware ? "kv_aware" : "round_robin";
}

Result<ReplayResult> run_replay(std::vector<WorkloadRequest> workload,
                                const ReplayOptions& options) {
  Driver driver(std::move(workload), options);
  Result<bool> ready = driver.init();
  if (!ready.ok()) return ready.error();
  return driver.run();
}

}  // namespace kvmock
