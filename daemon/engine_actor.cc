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

EngineActor::Clock::time_point on_grid(EngineActor::Clock::time_point epoch,
                                       EngineActor::Clock::time_point at) {
  const auto grid = std::chrono::duration_cast<EngineActor::Clock::duration>(kPassEndGrid);
  const auto since = at - epoch;
  const auto slots = (since + grid - EngineActor::Clock::duration(1)) / grid;
  return epoch + slots * grid;
}

double seconds_between(EngineActor::Clock::time_point from, EngineActor::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

EngineActor::EngineActor(boost::asio::io_context& io, const EngineArgs& args, WorkerId worker,
                         DpRank rank, std::unique_ptr<TimingModel> timing,
                         RouterEventSink& pipeline, EngineActorHistograms histograms,
                         Clock::time_point epoch, size_t max_waiting)
    : executor_(io.get_executor()),
      timer_(io),
      core_(args, worker, rank, std::move(timing)),
      worker_(worker),
      rank_(rank),
      g2_enabled_(core_.g2_enabled()),
      pipeline_(pipeline),
      histograms_(histograms),
      epoch_(epoch),
      max_waiting_(max_waiting) {
  update_stats(core_.metrics());
}

double EngineActor::now_ms() const {
  return std::chrono::duration<double, std::milli>(Clock::now() - epoch_).count();
}

void EngineActor::submit(RequestId id, GenerationRequest request, GenerationCallbacks callbacks) {
  stats_.in_flight.fetch_add(1);
  boost::asio::post(executor_, [this, id, request = std::move(request),
                                callbacks = std::move(callbacks)]() mutable {
    GenerationFinish refusal;
    refusal.prompt_tokens = static_cast<uint32_t>(request.prompt.size());
    refusal.finish_reason = "error";
    if (stats_.waiting.load() >= max_waiting_) {
      refusal.error = "queue_full";
    } else {
      if (observer_) observer_->on_request(id, request);
      Request engine_request;
      engine_request.id = id;
      engine_request.prompt = std::move(request.prompt);
      engine_request.max_tokens = request.max_tokens;
      engine_request.lora_name = std::move(request.lora_name);
      engine_request.cache_salt = std::move(request.cache_salt);
      engine_request.arrival_ms = now_ms();
      const uint32_t prompt_tokens = static_cast<uint32_t>(engine_request.prompt.size());
      auto added = core_.add_request(std::move(engine_request));
      if (added) {
        Live& live = live_[id];
        live.callbacks = std::move(callbacks);
        live.prompt_tokens = prompt_tokens;
        live.arrival = Clock::now();
        stats_.prompt_tokens.fetch_add(prompt_tokens);
        stats_.waiting.fetch_add(1);
        maybe_start_pass();
        return;
      }
      refusal.error = std::string(added.error().reason);
      if (observer_) observer_->on_request_done(id);
    }
    stats_.in_flight.fetch_sub(1);
    if (callbacks.on_finish) callbacks.on_finish(refusal);
  });
}

void EngineActor::cancel(RequestId id) {
  boost::asio::post(executor_, [this, id] {
    if (live_.count(id) && core_.cancel(id)) maybe_start_pass();
  });
}

void EngineActor::cancel_all() {
  boost::asio::post(executor_, [this] {
    for (const auto& [id, live] : live_) core_.cancel(id);
    maybe_start_pass();
  });
}

void EngineActor::maybe_start_pass() {
  if (pass_running_ || !core_.has_work()) return;
  run_pass();
}

void EngineActor::run_pass() {
  pass_running_ = true;
  PassOutput output = core_.step(now_ms());
  stats_.passes.fetch_add(1);
  if (!output.events.empty()) {
    if (observer_) observer_->on_pass_events(output.events);
    pipeline_.publish(worker_, rank_, std::move(output.events));
    output.events.clear();
  }
  update_stats(output.metrics);
  publish_load();
  const double end_ms = output.end_ms;
  const bool idle_pass = output.outputs.empty() && end_ms <= output.start_ms;
  const auto modeled_end = epoch_ + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double, std::milli>(end_ms));
  timer_.expires_at(idle_pass ? Clock::now() + kStalledRetry : on_grid(epoch_, modeled_end));
  timer_.async_wait([this, output = std::move(output), modeled_end,
                     idle_pass](const boost::system::error_code& ec) {
    if (ec) return;
    if (!idle_pass && histograms_.pass_lateness) {
      histograms_.pass_lateness->observe(std::max(0.0, seconds_between(modeled_end, Clock::now())));
    }
    finish_pass(output);
  });
}

void EngineActor::finish_pass(const PassOutput& output) {
  const auto now = Clock::now();
  for (const RequestOutput& request_output : output.outputs) deliver(request_output, now);
  pass_running_ = false;
  maybe_start_pass();
}

void EngineActor::deliver(const RequestOutput& output, Clock::time_point now) {
  auto it = live_.find(output.id);
  if (it == live_.end()) return;
  Live& live = it->second;
  if (output.admitted) {
    live.cached_tokens = output.cached_tokens;
  }
  if (!output.tokens.empty()) {
    if (live.generated == 0) {
      if (histograms_.time_to_first_token) {
        histograms_.time_to_first_token->observe(seconds_between(live.arrival, now));
      }
    } else if (histograms_.inter_token_latency) {
      histograms_.inter_token_latency->observe(seconds_between(live.last_token, now));
    }
    live.generated += static_cast<uint32_t>(output.tokens.size());
    live.last_token = now;
    stats_.generation_tokens.fetch_add(output.tokens.size());
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
  if (histograms_.e2e_latency && output.finish_reason == FinishReason::kLength) {
    histograms_.e2e_latency->observe(seconds_between(live.arrival, now));
  }
  GenerationCallbacks callbacks = std::move(live.callbacks);
  live_.erase(it);
  if (observer_) observer_->on_request_done(output.id);
  stats_.requests_finished.fetch_add(1);
  stats_.in_flight.fetch_sub(1);
  if (callbacks.on_finish) callbacks.on_finish(finish);
}

void EngineActor::publish_load() {
  const uint64_t decode = core_.active_decode_blocks();
  const uint64_t used = core_.kv_used_blocks();
  if (decode == last_load_decode_ && used == last_load_used_) return;
  last_load_decode_ = decode;
  last_load_used_ = used;
  pipeline_.update_load(ActiveLoad{worker_, rank_, decode, std::nullopt, used});
}

void EngineActor::update_stats(const EngineMetrics& metrics) {
  // Relaxed: each figure is read on its own by metrics callbacks, and a sequentially
  // consistent store is a locked instruction, sixteen of them on every pass.
  auto store = [](std::atomic<uint64_t>& figure, uint64_t value) {
    figure.store(value, std::memory_order_relaxed);
  };
  store(stats_.running, metrics.running_requests);
  store(stats_.waiting, metrics.waiting_requests);
  store(stats_.active_blocks, metrics.active_blocks);
  store(stats_.total_blocks, metrics.total_blocks);
  store(stats_.preemptions, metrics.preemptions_total);
  store(stats_.prefix_queries_tokens, metrics.prefix_cache_queries_tokens);
  store(stats_.prefix_hits_tokens, metrics.prefix_cache_hits_tokens);
  store(stats_.g2_total_blocks, metrics.g2_total_blocks);
  store(stats_.g2_used_blocks, metrics.g2_used_blocks);
  store(stats_.g2_offloads_in_flight, metrics.offload_transfers_in_flight);
  store(stats_.g2_onboards_in_flight, metrics.onboard_transfers_in_flight);
  store(stats_.g2_offload_queued_blocks, metrics.offload_queued_blocks);
  store(stats_.g2_bytes_offloaded, metrics.g2_bytes_offloaded);
  store(stats_.g2_bytes_onboarded, metrics.g2_bytes_onboarded);
  store(stats_.g2_onboard_hit_tokens, metrics.g2_onboard_hit_tokens);
  store(stats_.g2_offloads_dropped, metrics.g2_offloads_dropped);
}

}  // namespace kvmock
