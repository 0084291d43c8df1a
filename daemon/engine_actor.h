// The wall-clock driver of one simulated engine (one worker, one dp rank). It lives on an
// io_context that exactly one thread runs (EngineThreads), so the EngineCore inside needs
// no lock and no strand: every call from another thread is posted there.
//
// A pass: run step(now), publish its KV events at once (vLLM makes blocks visible at
// the start of the pass), sleep until the modeled end with a steady timer, then deliver
// the pass's tokens. An idle engine has no timer armed and costs nothing. Lateness
// (actual minus modeled pass end) goes to a histogram.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <unordered_map>

#include "core/engine/engine_core.h"
#include "core/pipeline/router_event_sink.h"
#include "transport/http/worker_backend.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

// Per-engine figures read by metrics callbacks on other threads.
struct EngineActorStats {
  std::atomic<uint64_t> running{0};
  std::atomic<uint64_t> waiting{0};
  std::atomic<uint64_t> active_blocks{0};
  std::atomic<uint64_t> total_blocks{0};
  std::atomic<uint64_t> preemptions{0};
  std::atomic<uint64_t> prefix_queries_tokens{0};
  std::atomic<uint64_t> prefix_hits_tokens{0};
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generation_tokens{0};
  std::atomic<uint64_t> requests_finished{0};
  std::atomic<uint64_t> in_flight{0};  // accepted and not yet finished
  std::atomic<uint64_t> passes{0};
  // G2 (host) offload tier; all zero when the engine has none.
  std::atomic<uint64_t> g2_total_blocks{0};
  std::atomic<uint64_t> g2_used_blocks{0};
  std::atomic<uint64_t> g2_offloads_in_flight{0};     // G1->G2 transfers
  std::atomic<uint64_t> g2_onboards_in_flight{0};     // G2->G1 transfers
  std::atomic<uint64_t> g2_offload_queued_blocks{0};  // evicted, waiting for a transfer
  std::atomic<uint64_t> g2_bytes_offloaded{0};
  std::atomic<uint64_t> g2_bytes_onboarded{0};
  std::atomic<uint64_t> g2_onboard_hit_tokens{0};
  std::atomic<uint64_t> g2_offloads_dropped{0};
};

// Histograms shared by the engines of one worker (vLLM names, worker_id label).
struct EngineActorHistograms {
  Histogram* time_to_first_token = nullptr;
  Histogram* inter_token_latency = nullptr;
  Histogram* e2e_latency = nullptr;
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
  using Clock = std::chrono::steady_clock;

  // `io` must be run by one thread only: the actor relies on it to serialize its work.
  EngineActor(boost::asio::io_context& io, const EngineArgs& args, WorkerId worker, DpRank rank,
              std::unique_ptr<TimingModel> timing, RouterEventSink& pipeline,
              EngineActorHistograms histograms, Clock::time_point epoch, size_t max_waiting);

  // Queues a request (from any thread). Errors come back through callbacks.on_finish.
  void submit(RequestId id, GenerationRequest request, GenerationCallbacks callbacks);
  void cancel(RequestId id);
  // Cancels everything still queued or running (shutdown after the grace period).
  void cancel_all();
  // Set before the first submit; `observer` must outlive the actor's work.
  void set_observer(EngineObserver* observer) { observer_ = observer; }

  const EngineActorStats& stats() const { return stats_; }
  WorkerId worker_id() const { return worker_; }
  DpRank dp_rank() const { return rank_; }
  // Whether the engine has a G2 tier; fixed at construction, safe from any thread.
  bool g2_enabled() const { return g2_enabled_; }

 private:
  struct Live {
    GenerationCallbacks callbacks;
    uint32_t prompt_tokens = 0;
    uint32_t cached_tokens = 0;
    uint32_t generated = 0;
    Clock::time_point arrival{};
    Clock::time_point last_token{};
  };

  double now_ms() const;
  void maybe_start_pass();
  void run_pass();
  void finish_pass(const PassOutput& output);
  void deliver(const RequestOutput& output, Clock::time_point now);
  void publish_load();
  void update_stats(const EngineMetrics& metrics);

  boost::asio::io_context::executor_type executor_;
  boost::asio::steady_timer timer_;
  EngineCore core_;
  const WorkerId worker_;
  const DpRank rank_;
  const bool g2_enabled_;
  RouterEventSink& pipeline_;
  EngineActorHistograms histograms_;
  const Clock::time_point epoch_;
  const size_t max_waiting_;
  std::unordered_map<RequestId, Live> live_;
  bool pass_running_ = false;
  EngineActorStats stats_;
  EngineObserver* observer_ = nullptr;
  uint64_t last_load_decode_ = UINT64_MAX;
  uint64_t last_load_used_ = UINT64_MAX;
};

}  // namespace kvmock
