#include "daemon/engine_actor.h"

#include <boost/asio/post.hpp>

namespace kvmock {
namespace {

// An engine whose queue holds work but whose pass did nothing (for example a request
// waiting for blocks another request holds) retries after this long instead of spinning.
constexpr auto kStalledRetry = std::chrono::milliseconds(1);

// Pass ends are rounded up to this grid (from the shared epoch), so the engines of a
// thread whose passes end close together are woken by one timer expiry. Without it a
// thousand engines wake their threads once per pass, and the timerfd re-arm and the
// context switch of each wake-up cost more than the pass itself. A pass ends late by at
// most this much, which the lateness histogram records.
constexpr auto kPassEndGrid = std::chrono::microseconds(100);

Clock::SteadyTime on_grid(Clock::SteadyTime epoch, Clock::SteadyTime at) {
  const auto grid = std::chrono::duration_cast<Clock::SteadyTime::duration>(kPassEndGrid);
  const auto since = at - epoch;
  const auto slots = (since + grid - Clock::SteadyTime::duration(1)) / grid;
  return epoch + slots * grid;
}

double seconds_between(Clock::SteadyTime from, Clock::SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

EngineActor::EngineActor(boost::asio::io_context& io, const EngineArgs& args, WorkerId worker,
                         DpRank rank, std::unique_ptr<TimingModel> timing, RouterEventSink& sink,
                         EngineActorHistograms histograms, EngineTime time, size_t max_waiting)
    : executor_(io.get_executor()),
      core_(args, worker, rank, std::move(timing)),
      worker_(worker),
      rank_(rank),
      g2_enabled_(core_.g2_enabled()),
      sink_(sink),
      histograms_(histograms),
      clock_(time.clock),
      epoch_(time.epoch),
      max_waiting_(max_waiting),
      timer_(time.timers.make(io, [this] { on_pass_end(); })) {
  counters_.engine = core_.metrics();
  publish_stats();
}

double EngineActor::now_ms() const {
  return std::chrono::duration<double, std::milli>(clock_.steady_now() - epoch_).count();
}

EngineActorStats EngineActor::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void EngineActor::submit(RequestId id, GenerationRequest request, GenerationCallbacks callbacks) {
  in_flight_.fetch_add(1);
  boost::asio::post(executor_, [this, id, request = std::move(request),
                                callbacks = std::move(callbacks)]() mutable {
    GenerationFinish refusal;
    refusal.prompt_tokens = static_cast<uint32_t>(request.prompt.size());
    refusal.finish_reason = "error";
    if (waiting_.load(std::memory_order_relaxed) >= max_waiting_) {
      refusal.error = "queue_full";
    } else {
      if (observer_) observer_->on_request(id, request);
      Request engine_request;
      engine_request.id = id;
      engine_request.prompt = std::move(request.prompt);
      engine_request.max_tokens = request.max_tokens;
      engine_request.lora_name = std::move(request.lora_name);
      engine_request.lora_id = request.lora_id;
      engine_request.cache_salt = std::move(request.cache_salt);
      engine_request.excluded_output_tokens = std::move(request.eos_token_ids);
      if (request.output_vocab_end > 0) engine_request.output_vocab_end = request.output_vocab_end;
      engine_request.output_vocabulary = std::move(request.output_vocabulary);
      engine_request.ignore_eos = request.ignore_eos;
      engine_request.min_tokens = request.min_tokens;
      engine_request.stop_token_ids = std::move(request.stop_token_ids);
      engine_request.seed = request.seed;
      engine_request.arrival_ms = now_ms();
      const uint32_t handle = claim_live();
      engine_request.handle = handle;
      const uint32_t prompt_tokens = static_cast<uint32_t>(engine_request.prompt.size());
      auto added = core_.add_request(std::move(engine_request));
      if (added) {
        Live& live = lives_[handle];
        live.id = id;
        live.callbacks = std::move(callbacks);
        live.prompt_tokens = prompt_tokens;
        live.max_tokens = request.max_tokens;
        live.arrival = clock_.steady_now();
        counters_.prompt_tokens += prompt_tokens;
        waiting_.fetch_add(1, std::memory_order_relaxed);
        maybe_start_pass();
        return;
      }
      release_live(handle);
      refusal.error = std::string(added.error().reason);
      if (observer_) observer_->on_request_done(id);
    }
    if (callbacks.on_finish) callbacks.on_finish(refusal);
    in_flight_.fetch_sub(1);
  });
}

void EngineActor::cancel(RequestId id) {
  boost::asio::post(executor_, [this, id] {
    // The engine knows exactly the requests accepted and not finished.
    if (core_.cancel(id)) maybe_start_pass();
  });
}

void EngineActor::stop(RequestId id) {
  boost::asio::post(executor_, [this, id] {
    if (core_.stop(id)) maybe_start_pass();
  });
}

void EngineActor::cancel_all() {
  boost::asio::post(executor_, [this] {
    for (const Live& live : lives_) {
      if (live.in_use) core_.cancel(live.id);
    }
    // Shutting down ends a pause: only a pass reports the aborts and ends the requests.
    paused_ = false;
    maybe_start_pass();
  });
}

void EngineActor::set_pacing(PassPacing pacing, bool paused, uint64_t seed) {
  boost::asio::post(executor_, [this, pacing, paused, seed] {
    pacing_ = pacing;
    pacing_seed_ = seed;
    const bool resumed = paused_ && !paused;
    paused_ = paused;
    if (resumed) maybe_start_pass();
  });
}

void EngineActor::clear_kv_cache() {
  boost::asio::post(executor_, [this] {
    clear_pending_ = true;
    if (!pass_running_) clear_if_pending();
  });
}

void EngineActor::clear_if_pending() {
  if (!clear_pending_ || !core_.reset_prefix_cache()) return;
  clear_pending_ = false;
  RouterEvent cleared;
  cleared.worker_id = worker_;
  cleared.event.dp_rank = rank_;
  cleared.event.data = ClearData{};
  if (observer_) observer_->on_pass_events({cleared});
  sink_.publish_cleared(worker_, rank_);
}

void EngineActor::maybe_start_pass() {
  if (pass_running_) return;
  clear_if_pending();
  if (!core_.has_work() || paused_) {
    // Idle now. A cancellation between passes changed the figures (running requests,
    // blocks in use) and no pass will come to report them.
    counters_.engine = core_.metrics();
    publish_stats();
    publish_load();
    return;
  }
  run_pass();
}

void EngineActor::run_pass() {
  pass_running_ = true;
  pass_started_ = clock_.steady_now();
  pass_ = core_.step(now_ms());
  ++counters_.passes;
  if (!pass_.events.empty()) {
    if (observer_) observer_->on_pass_events(pass_.events);
    sink_.publish(worker_, rank_, std::move(pass_.events));
    pass_.events.clear();
  }
  waiting_.store(pass_.metrics.waiting_requests, std::memory_order_relaxed);
  // The engine's figures describe the batch just scheduled: a scraper must see a request
  // running while its (possibly long) prefill pass runs, as vLLM reports it.
  counters_.engine = pass_.metrics;
  publish_stats();
  publish_load();
  if (!pacing_.is_identity()) {
    const double factor =
        pass_time_factor(pacing_, pass_.metrics.running_requests, core_.args().max_num_seqs,
                         pacing_seed_ ^ (uint64_t{worker_} << 8 | rank_), counters_.passes);
    pass_.end_ms = pass_.start_ms + (pass_.end_ms - pass_.start_ms) * factor;
  }
  pass_idle_ = pass_.outputs.empty() && pass_.end_ms <= pass_.start_ms;
  pass_modeled_end_ = epoch_ + std::chrono::duration_cast<Clock::SteadyTime::duration>(
                                   std::chrono::duration<double, std::milli>(pass_.end_ms));
  timer_->schedule_at(pass_idle_ ? clock_.steady_now() + kStalledRetry
                                 : on_grid(epoch_, pass_modeled_end_));
}

void EngineActor::on_pass_end() {
  const auto now = clock_.steady_now();
  if (!pass_idle_ && histograms_.pass_lateness) {
    histograms_.pass_lateness->observe(std::max(0.0, seconds_between(pass_modeled_end_, now)));
  }
  for (const RequestOutput& request_output : pass_.outputs) deliver(request_output, now);
  publish_stats();  // the tokens and requests this pass delivered
  pass_running_ = false;
  maybe_start_pass();
}

void EngineActor::deliver(const RequestOutput& output, Clock::SteadyTime now) {
  if (output.handle >= lives_.size()) return;
  Live& live = lives_[output.handle];
  if (!live.in_use || live.id != output.id) return;
  if (output.admitted) {
    live.cached_tokens = output.cached_tokens;
    if (!live.scheduled) live.scheduled = pass_started_;
  }
  if (!output.tokens.empty()) {
    if (live.generated == 0) {
      live.first_token = now;
      if (histograms_.time_to_first_token) {
        histograms_.time_to_first_token->observe(seconds_between(live.arrival, now));
      }
    } else {
      const double since_last = seconds_between(live.last_token, now);
      if (histograms_.inter_token_latency) histograms_.inter_token_latency->observe(since_last);
      if (histograms_.time_per_output_token) {
        histograms_.time_per_output_token->observe(since_last);
      }
    }
    live.generated += static_cast<uint32_t>(output.tokens.size());
    live.last_token = now;
    counters_.generation_tokens += output.tokens.size();
    if (observer_) observer_->on_tokens(output.id, output.tokens);
    if (live.callbacks.on_tokens) live.callbacks.on_tokens(output.tokens);
  }
  if (!output.finished) return;
  GenerationFinish finish;
  finish.finish_reason = std::string(finish_reason_name(output.finish_reason));
  finish.error = std::string(output.error);
  finish.prompt_tokens = live.prompt_tokens;
  finish.completion_tokens = live.generated;
  finish.cached_tokens = std::max(live.cached_tokens, output.cached_tokens);
  finish.matched_stop_token = output.matched_stop_token;
  record_finished(live, output.finish_reason, now);
  GenerationCallbacks callbacks = std::move(live.callbacks);
  release_live(output.handle);
  if (observer_) observer_->on_request_done(output.id);
  ++counters_.requests_finished;
  // After the callback: whatever it hands on (the last chunk to the client's connection)
  // is under way before shutdown, which waits for in_flight() to reach 0, closes it.
  if (callbacks.on_finish) callbacks.on_finish(finish);
  in_flight_.fetch_sub(1);
}

uint32_t EngineActor::claim_live() {
  uint32_t handle;
  if (free_lives_.empty()) {
    handle = static_cast<uint32_t>(lives_.size());
    lives_.emplace_back();
  } else {
    handle = free_lives_.back();
    free_lives_.pop_back();
  }
  lives_[handle].in_use = true;
  return handle;
}

void EngineActor::release_live(uint32_t handle) {
  lives_[handle] = Live{};
  free_lives_.push_back(handle);
}

void EngineActor::record_finished(const Live& live, FinishReason reason, Clock::SteadyTime now) {
  Counter* success = nullptr;
  switch (reason) {
    case FinishReason::kStop:
      success = histograms_.success_stop;
      break;
    case FinishReason::kLength:
      success = histograms_.success_length;
      break;
    case FinishReason::kAbort:
      success = histograms_.success_abort;
      break;
    case FinishReason::kNone:
    case FinishReason::kError:
      return;  // never ran to a vLLM finish: not a finished request to vLLM's metrics
  }
  auto observe = [](Histogram* histogram, double value) {
    if (histogram) histogram->observe(value);
  };
  // A request that never got a token ends its prefill (or its queueing) at the abort.
  const Clock::SteadyTime scheduled = live.scheduled.value_or(now);
  const Clock::SteadyTime first_token = live.generated > 0 ? live.first_token : now;
  const Clock::SteadyTime last_token = live.generated > 0 ? live.last_token : now;
  observe(histograms_.e2e_latency, seconds_between(live.arrival, now));
  observe(histograms_.queue_time, seconds_between(live.arrival, scheduled));
  observe(histograms_.prefill_time, seconds_between(scheduled, first_token));
  observe(histograms_.decode_time, seconds_between(first_token, last_token));
  observe(histograms_.inference_time, seconds_between(scheduled, last_token));
  observe(histograms_.prompt_tokens, live.prompt_tokens);
  observe(histograms_.generation_tokens, live.generated);
  observe(histograms_.params_max_tokens, live.max_tokens);
  // Counted in the same call as the histograms; a scrape that races this call (it is not
  // a snapshot) may show one without the other, the next one shows both.
  if (success) success->inc();
}

void EngineActor::publish_load() {
  const uint64_t decode = core_.active_decode_blocks();
  const uint64_t used = core_.kv_used_blocks();
  if (decode == last_load_decode_ && used == last_load_used_) return;
  last_load_decode_ = decode;
  last_load_used_ = used;
  sink_.update_load(ActiveLoad{worker_, rank_, decode, std::nullopt, used});
}

void EngineActor::publish_stats() {
  counters_.updated_unix_s =
      std::chrono::duration<double>(clock_.system_now().time_since_epoch()).count();
  std::lock_guard lock(stats_mutex_);
  stats_ = counters_;
}

void EngineActor::detach_observer(std::function<void()> detached) {
  boost::asio::post(executor_, [this, detached = std::move(detached)] {
    observer_ = nullptr;
    if (detached) detached();
  });
}

}  // namespace kvmock
