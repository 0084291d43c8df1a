#include "daemon/load_driver.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "transport/log/logger.h"
#include "transport/log/thread_name.h"

namespace kvmock {
namespace {

SyntheticSpec spec_for(const LoadDriverConfig& config, size_t workers) {
  SyntheticSpec spec;
  spec.num_requests = uint64_t{1} << 62;  // until stopped
  spec.input = {static_cast<double>(config.input_tokens), 0};
  spec.output = {static_cast<double>(config.output_tokens), 0};
  spec.shared_prefix_ratio = config.shared_prefix_ratio;
  spec.num_prefix_groups = std::max<uint32_t>(1, config.prefix_groups);
  spec.arrival.kind = ArrivalKind::kPoisson;
  spec.arrival.rate = config.requests_per_s * static_cast<double>(workers);
  spec.seed = config.seed;
  return spec;
}

}  // namespace

LoadDriver::LoadDriver(const LoadDriverConfig& config, std::vector<WorkerBackend*> workers,
                       const Clock& clock)
    : config_(config), workers_(std::move(workers)), clock_(clock) {}

LoadDriver::~LoadDriver() { stop(); }

Result<bool> LoadDriver::begin() {
  if (workers_.empty()) return make_error("config", "workers.load: no workers to drive");
  auto workload = SyntheticWorkload::create(spec_for(config_, workers_.size()));
  if (!workload) return make_error("config", "workers.load: " + workload.error().message);
  workload_.emplace(std::move(*workload));
  next_ = workload_->next();
  start_ = clock_.steady_now();
  return true;
}

Result<bool> LoadDriver::start() {
  auto begun = begin();
  if (!begun) return begun.error();
  thread_ = std::thread([this] {
    name_this_thread("kvmock-load");
    run();
  });
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", config_.requests_per_s);
  log_info("load", "driving " + std::to_string(workers_.size()) + " workers at " + rate +
                       " requests/s each (" + std::to_string(config_.input_tokens) + " prompt, " +
                       std::to_string(config_.output_tokens) + " output tokens)");
  return true;
}

void LoadDriver::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

LoadWindow LoadDriver::take_window() {
  std::lock_guard lock(mutex_);
  LoadWindow window = std::move(window_);
  window_ = LoadWindow{};
  std::sort(window.ttft_ms.begin(), window.ttft_ms.end());
  return window;
}

void LoadDriver::record_first_token(double ttft_ms) {
  std::lock_guard lock(mutex_);
  window_.ttft_ms.push_back(ttft_ms);
}

void LoadDriver::record_done(bool ok) {
  in_flight_.fetch_sub(1);
  std::lock_guard lock(mutex_);
  if (ok) ++window_.completed;
}

void LoadDriver::run() {
  while (true) {
    const Clock::SteadyTime due = issue_due();
    if (due == Clock::SteadyTime::max()) return;
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, due, [this] { return stopping_; })) return;
  }
}

Clock::SteadyTime LoadDriver::issue_due() {
  const Clock::SteadyTime now = clock_.steady_now();
  while (next_) {
    const auto due = start_ + std::chrono::duration_cast<Clock::SteadyTime::duration>(
                                  std::chrono::duration<double, std::milli>(next_->arrival_ms));
    if (due > now) return due;
    submit(std::move(*next_));
    next_ = workload_->next();
  }
  return Clock::SteadyTime::max();
}

void LoadDriver::submit(WorkloadRequest request) {
  WorkerBackend& worker = *workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % workers_.size();
  GenerationRequest generation;
  generation.prompt = std::move(request.prompt);
  generation.max_tokens = request.max_tokens;
  const auto submitted_at = clock_.steady_now();
  auto first = std::make_shared<std::atomic<bool>>(false);
  GenerationCallbacks callbacks;
  callbacks.on_tokens = [this, submitted_at, first](const std::vector<TokenId>&) {
    // Called for every token; the plain load keeps the hot path free of a locked RMW.
    if (!first->load(std::memory_order_relaxed) && !first->exchange(true)) {
      record_first_token(
          std::chrono::duration<double, std::milli>(clock_.steady_now() - submitted_at).count());
    }
  };
  callbacks.on_finish = [this](const GenerationFinish& finish) {
    // An EOS (workers.engine.output_length) ends a request as completely as max_tokens.
    record_done(finish.finish_reason == "length" || finish.finish_reason == "stop");
  };
  in_flight_.fetch_add(1);
  auto accepted = worker.submit(std::move(generation), std::move(callbacks));
  std::lock_guard lock(mutex_);
  if (accepted) {
    ++window_.submitted;
  } else {
    in_flight_.fetch_sub(1);
    ++window_.rejected;
  }
}

}  // namespace kvmock
