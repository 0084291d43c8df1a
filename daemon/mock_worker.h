// One fake inference worker: `dp_size` simulated engines (EngineActor) behind one worker
// id, serving the WorkerBackend interface the HTTP and NATS intakes use. Requests are
// routed to a dp rank by the request (NATS routing.dp_rank) or round-robin.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/lora_modules.h"
#include "config/model_directory.h"
#include "daemon/engine_actor.h"
#include "daemon/engine_threads.h"
#include "transport/http/worker_backend.h"

namespace kvmock {

// Who a mock worker is to its clients.
struct MockWorkerIdentity {
  uint64_t worker_id = 0;  // also its Dynamo instance id when discovery is on
  std::string model_name;  // the served name (OpenAI `model`, vLLM's model_name label)
  // Generated ids stay below it (the model's vocabulary size); 0: the engine's default.
  TokenId output_vocab_end = 0;
  std::vector<std::string> aliases;  // more served names (workers.model.aliases)
  // The model's tokenizer and chat template; null: the mock tokenizer.
  std::shared_ptr<const TextCodec> codec;
  // The context length clients are told (/v1/models, /tokenize); 0: the engine's limit.
  uint64_t max_model_len = 0;
  // LoRA adapters served from the start (workers.lora.modules).
  std::vector<LoraModule> lora_modules;
};

// What every mock worker of `config` serves: the served name and aliases, and - when
// `model` (the directory of workers.model.path) is given - its codec, vocabulary bound and
// context length. The worker id is left 0 for the caller.
MockWorkerIdentity served_model_identity(const Config& config, const ModelDirectory* model);

class MockWorker : public WorkerBackend {
 public:
  // Requests a single engine holds waiting (besides those running) before new ones get 429.
  static constexpr size_t kMaxWaitingPerEngine = 4096;

  // `profile_text` is the timing profile file's contents (timing.model profile); the
  // caller has checked that make_timing_model accepts it. Each engine (dp rank) goes to
  // the next of `threads`.
  MockWorker(EngineThreads& threads, const Config& config, const MockWorkerIdentity& identity,
             const std::string& profile_text, RouterEventSink& sink, MetricsRegistry& metrics,
             Histogram* pass_lateness, EngineTime time,
             size_t max_waiting_per_engine = kMaxWaitingPerEngine);

  Result<uint64_t> submit(GenerationRequest request, GenerationCallbacks callbacks) override;
  void cancel(uint64_t request_id) override;
  void stop(uint64_t request_id) override;
  // Ready unless shutting down or while the event outbox is full (the worker could not
  // publish the KV events of new work).
  bool ready() const override { return ready_.load() && !sink_.outbox_full() && !starting_up(); }
  std::string not_ready_reason() const override;
  uint64_t worker_id() const override { return worker_id_; }
  const std::string& model_name() const override { return served_names_.front(); }
  std::span<const std::string> served_model_names() const override { return served_names_; }
  const TextCodec& text_codec() const override { return *codec_; }
  uint64_t max_model_len() const override { return max_model_len_; }
  std::string render_metrics() const override;
  LoraAdapters* lora_adapters() override { return &lora_adapters_; }
  WorkerFaults* faults() override { return &faults_; }
  // Also hands the worker's event faults to `follower` (the vLLM-format ZMQ outputs of its
  // engines), now and after every change. Set before the worker serves, as
  // EngineActor::set_observer.
  void follow_event_faults(std::function<void(const EventFaults&)> follower);
  // Sleep cancels what is in flight and clears every engine's KV cache (a Cleared event
  // each); requests get 503 until wake_up().
  bool has_sleep_mode() const override { return true; }
  void sleep(uint32_t level) override;
  void wake_up() override { sleeping_ = false; }
  bool is_sleeping() const override { return sleeping_.load(); }

  void set_ready(bool ready) { ready_ = ready; }
  void cancel_all();
  uint64_t in_flight() const;
  EngineActor& engine(DpRank rank) { return *engines_.at(rank); }
  const EngineActor& engine(DpRank rank) const { return *engines_.at(rank); }
  size_t dp_size() const { return engines_.size(); }

 private:
  // The vllm:* series (model_name and worker_id labels) and, for workers whose engines
  // have a G2 tier, the kvmock_g2_* series (worker_id label; link="offload"|"onboard"
  // where per link).
  void register_metrics(MetricsRegistry& metrics);
  // What the worker does with new fault settings (the listener of faults_): hands the KV
  // event faults to the sink and the pacing to the engines.
  void on_fault_settings(const FaultSettings& settings);
  // Hands latency_scale, jitter, time_factor_under_load and paused to every engine.
  void apply_pacing(const FaultSettings& settings);
  void apply_event_faults(const FaultSettings& settings);

  // Takes one waiting slot on `rank` and the prompt's tokens from the worker's budget,
  // or names what is full. Exact under concurrent submits, so the engine thread itself
  // never has to refuse a request the intake already reported as accepted.
  Result<bool> reserve(DpRank rank, uint64_t prompt_tokens);
  void release(DpRank rank, uint64_t prompt_tokens);

  const EngineArgs config_args_;  // for vllm:cache_config_info
  const uint64_t worker_id_;
  const TokenId output_vocab_end_;
  const std::vector<std::string> served_names_;  // the served name first, then the aliases
  const std::shared_ptr<const TextCodec> codec_;
  // Ids generated output is drawn from (the codec's readable words); null: a range.
  const std::shared_ptr<const std::vector<TokenId>> output_vocabulary_;
  const uint64_t max_context_tokens_;
  const uint64_t max_model_len_;
  const uint64_t max_queued_prompt_tokens_;
  const size_t max_waiting_per_engine_;
  // Waiting plus the most that can run, so the waiting queue holds max_waiting_per_engine_
  // however many run.
  const uint64_t max_held_per_engine_;
  RouterEventSink& sink_;
  MetricsRegistry& metrics_;
  std::vector<std::unique_ptr<EngineActor>> engines_;
  // Per engine: requests accepted and not finished (waiting or running).
  std::unique_ptr<std::atomic<uint64_t>[]> held_;
  std::atomic<uint64_t> queued_prompt_tokens_{0};
  LoraAdapters lora_adapters_;
  WorkerFaults faults_;
  std::function<void(const EventFaults&)> event_fault_follower_;  // may be empty
  // kvmock_worker_refused_requests_total by reason.
  Counter* refused_context_ = nullptr;
  Counter* refused_queue_full_ = nullptr;
  Counter* refused_prompt_tokens_ = nullptr;
  Counter* refused_outbox_full_ = nullptr;
  std::atomic<uint64_t> next_request_{1};
  std::atomic<uint32_t> next_rank_{0};
  std::atomic<bool> ready_{true};
  std::atomic<bool> sleeping_{false};
  // workers.startup_delay_s: not ready before this time.
  const Clock& clock_;
  const Clock::SteadyTime ready_at_;
  bool starting_up() const { return clock_.steady_now() < ready_at_; }
};

}  // namespace kvmock
