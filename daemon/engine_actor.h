// The wall-clock driver of one simulated engine (one worker, one dp rank). It lives on an
// io_context that exactly one thread runs (EngineThreads), so the EngineCore inside needs
// no lock and no strand: every call from another thread is posted there.
//
// A pass: run step(now), publish its KV events at once (vLLM makes blocks visible at
// the start of the pass), sleep until the modeled end with the pass timer (EngineTime),
// then deliver the pass's tokens. An idle engine has no timer armed and costs nothing. Lateness
// (actual minus modeled pass end) goes to a histogram.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/engine/engine_core.h"
#include "core/faults/pass_pacing.h"
#include "core/pipeline/router_event_sink.h"
#include "daemon/pass_timer.h"
#include "transport/http/worker_backend.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

// An engine's figures as of the end of its last pass: the engine's metrics plus the
// actor's own counters. The actor publishes one snapshot per pass; metrics callbacks on
// other threads copy it whole, so the figures of one scrape agree with each other.
struct EngineActorStats {
  EngineMetrics engine;
  uint64_t passes = 0;
  uint64_t prompt_tokens = 0;  // of accepted requests
  uint64_t generation_tokens = 0;
  uint64_t requests_finished = 0;  // with any reason, errors included
  // Unix time (seconds) of the snapshot: vLLM's lora_requests_info value.
  double updated_unix_s = 0;
};

// Metrics shared by the engines of one worker (vLLM names, worker_id label). Each may be
// null (not recorded). Every request that finishes "stop", "length" or "abort" is counted
// once in its request_success counter and observed once in each per-request histogram, at
// the same moment, so a scrape sees them agree; refused and failed requests ("error") in
// neither, as vLLM counts only finished requests.
struct EngineActorHistograms {
  Histogram* time_to_first_token = nullptr;
  Histogram* inter_token_latency = nullptr;
  // vLLM 0.10's vllm:time_per_output_token_seconds: one observation per output token after
  // the first, the time since the previous one.
  Histogram* time_per_output_token = nullptr;
  Histogram* e2e_latency = nullptr;
  // vLLM's intervals of a finished request: queue = arrival to first scheduled, prefill =
  // first scheduled to first token, decode = first to last token, inference = first
  // scheduled to last token. A request aborted before it was scheduled queued until the
  // abort; one aborted before its first token prefilled until the abort.
  Histogram* queue_time = nullptr;
  Histogram* prefill_time = nullptr;
  Histogram* decode_time = nullptr;
  Histogram* inference_time = nullptr;
  Histogram* prompt_tokens = nullptr;      // per finished request
  Histogram* generation_tokens = nullptr;  // per finished request
  Histogram* params_max_tokens = nullptr;  // per finished request
  Counter* success_stop = nullptr;         // vllm:request_success_total by finished_reason
  Counter* success_length = nullptr;
  Counter* success_abort = nullptr;
  Histogram* pass_lateness = nullptr;  // process-wide
};

// Sees what the engine sees, on the engine's thread (the vLLM-format ZMQ output needs
// request tokens to announce blocks as vLLM does). Must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void on_request(RequestId id, const GenerationRequest& request) = 0;
  virtual void on_tokens(RequestId id, const std::vector<TokenId>& tokens) = 0;
  virtual void on_request_done(RequestId id) = 0;
  // A pass's KV events, before they go to the pipeline.
  virtual void on_pass_events(const std::vector<RouterEvent>& events) = 0;
};

class EngineActor {
 public:
  // `io` must be run by one thread only: the actor relies on it to serialize its work.
  // A request that arrives while `max_waiting` wait is refused with "queue_full".
  EngineActor(boost::asio::io_context& io, const EngineArgs& args, WorkerId worker, DpRank rank,
              std::unique_ptr<TimingModel> timing, RouterEventSink& sink,
              EngineActorHistograms histograms, EngineTime time, size_t max_waiting);

  // Queues a request (from any thread). Errors come back through callbacks.on_finish.
  void submit(RequestId id, GenerationRequest request, GenerationCallbacks callbacks);
  void cancel(RequestId id);
  // Ends a request like cancel(), reported and counted as "stop" (a stop string matched).
  void stop(RequestId id);
  // Cancels everything still queued or running (shutdown after the grace period).
  void cancel_all();
  // Set before the first submit; `observer` must outlive the actor's work.
  void set_observer(EngineObserver* observer) { observer_ = observer; }
  // The worker's fault settings for passes (docs/faults.md#pacing), from any thread: from
  // the next pass on, modeled pass times are stretched by `pacing` (its jitter drawn from
  // `seed` and the pass number); while `paused`, no pass starts and requests queue.
  void set_pacing(PassPacing pacing, bool paused, uint64_t seed);
  // vLLM's reset_prefix_cache, as sleep mode discards the KV cache (from any thread): once
  // the engine is idle (cancel its requests first), every cached block is forgotten and a
  // Cleared event goes to the router and the observer.
  void clear_kv_cache();

  // The figures as of the end of the last pass (any thread).
  EngineActorStats stats() const;
  // Requests waiting, counted as they are accepted (any thread): the queue-full check.
  uint64_t waiting() const { return waiting_.load(std::memory_order_relaxed); }
  // Requests accepted and not yet finished (any thread).
  uint64_t in_flight() const { return in_flight_.load(); }
  WorkerId worker_id() const { return worker_; }
  DpRank dp_rank() const { return rank_; }
  // Whether the engine has a G2 tier; fixed at construction, safe from any thread.
  bool g2_enabled() const { return g2_enabled_; }
  // Stops telling the observer anything (from any thread); `detached` runs on the engine's
  // thread once no observer call is in progress or to come. A crashed worker's engines
  // hand their vLLM-format outputs over to the restarted worker's engines this way.
  void detach_observer(std::function<void()> detached);

 private:
  // What the actor keeps of an accepted request until it finishes. Kept in a slab whose
  // index is the request's engine handle (Request::handle), so a pass's outputs find
  // theirs by index: a lookup by id per output token was the largest cost of delivery.
  struct Live {
    RequestId id = 0;
    bool in_use = false;
    GenerationCallbacks callbacks;
    uint32_t prompt_tokens = 0;
    uint32_t cached_tokens = 0;
    uint32_t generated = 0;
    uint32_t max_tokens = 0;
    Clock::SteadyTime arrival{};
    std::optional<Clock::SteadyTime> scheduled;  // start of the pass that first admitted it
    Clock::SteadyTime first_token{};
    Clock::SteadyTime last_token{};
  };

  double now_ms() const;
  void maybe_start_pass();
  void run_pass();
  // The pass timer expired: the running pass (pass_) has reached its end.
  void on_pass_end();
  void deliver(const RequestOutput& output, Clock::SteadyTime now);
  // A slot of lives_ for a new request; release_live() gives it back.
  uint32_t claim_live();
  void release_live(uint32_t handle);
  // Counts and observes a request finished with `reason` (see EngineActorHistograms).
  void record_finished(const Live& live, FinishReason reason, Clock::SteadyTime now);
  void publish_load();
  void publish_stats();
  // Runs a clear_kv_cache() that was waiting, if the engine is now idle.
  void clear_if_pending();

  boost::asio::io_context::executor_type executor_;
  EngineCore core_;
  const WorkerId worker_;
  const DpRank rank_;
  const bool g2_enabled_;
  RouterEventSink& sink_;
  EngineActorHistograms histograms_;
  const Clock& clock_;
  const Clock::SteadyTime epoch_;
  const size_t max_waiting_;
  std::unique_ptr<PassTimer> timer_;
  std::vector<Live> lives_;           // by handle; see Live
  std::vector<uint32_t> free_lives_;  // handles of slots not in use
  bool pass_running_ = false;
  // The running pass: its output is delivered at its modeled end.
  PassOutput pass_;
  Clock::SteadyTime pass_modeled_end_{};
  Clock::SteadyTime pass_started_{};
  bool pass_idle_ = false;
  // Counters of the engine thread; published with the engine's metrics.
  EngineActorStats counters_;
  mutable std::mutex stats_mutex_;  // guards stats_; held for one copy
  EngineActorStats stats_;
  std::atomic<uint64_t> waiting_{0};
  std::atomic<uint64_t> in_flight_{0};
  EngineObserver* observer_ = nullptr;
  PassPacing pacing_;
  bool clear_pending_ = false;  // clear_kv_cache() waits for the engine to be idle
  bool paused_ = false;
  uint64_t pacing_seed_ = 0;
  uint64_t last_load_decode_ = UINT64_MAX;
  uint64_t last_load_used_ = UINT64_MAX;
};

}  // namespace kvmock
