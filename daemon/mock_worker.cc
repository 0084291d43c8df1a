#include "daemon/mock_worker.h"

#include <malloc.h>

#include <algorithm>

#include "config/endpoint.h"
#include "core/faults/event_faults.h"

namespace kvmock {
namespace {

// Adds `amount` to `counter` unless that passes `limit`; an empty counter always takes
// it (so one request bigger than the limit still runs on an idle worker).
bool try_add(std::atomic<uint64_t>& counter, uint64_t amount, uint64_t limit) {
  uint64_t current = counter.load();
  do {
    if (current != 0 && current + amount > limit) return false;
  } while (!counter.compare_exchange_weak(current, current + amount));
  return true;
}

// vLLM's 400 for a request over the context window (serving_engine._validate_input).
std::string context_length_message(uint64_t limit, uint64_t prompt, uint64_t max_tokens) {
  return "This model's maximum context length is " + std::to_string(limit) +
         " tokens. However, you requested " + std::to_string(prompt + max_tokens) + " tokens (" +
         std::to_string(prompt) + " in the messages, " + std::to_string(max_tokens) +
         " in the completion). Please reduce the length of the messages or completion.";
}

// A request with this many prompt tokens (1 MiB of ids) hands its freed storage back to
// the system when it ends: glibc keeps large freed blocks in the heap otherwise, and a
// burst of long queued prompts would stay resident after they are gone.
constexpr uint64_t kTrimAfterPromptTokens = uint64_t{1} << 18;

// Request ids are unique per worker: the high bits name the rank that serves them.
constexpr int kRankShift = 56;

// One series of a worker: the sum of a figure over the worker's engines (dp ranks).
struct WorkerSeries {
  enum Labels { kVllm, kG2, kG2Offload, kG2Onboard };
  MetricsRegistry::Type type;
  Labels labels;  // kVllm: model_name and worker_id; kG2*: worker_id (and link)
  const char* name;
  const char* help;
  uint64_t (*read)(const EngineActor& engine);
};

using Type = MetricsRegistry::Type;
constexpr const char* kInFlightHelp = "KV transfers in flight between G1 and G2, by link.";
constexpr const char* kBytesHelp = "Bytes of finished KV transfers between G1 and G2, by link.";

// vllm:kv_cache_usage_perc is a ratio, registered on its own.
const WorkerSeries kWorkerSeries[] = {
    {Type::kGauge, WorkerSeries::kVllm, "vllm:num_requests_running",
     "Number of requests in model execution batches.",
     [](const EngineActor& e) -> uint64_t { return e.stats().engine.running_requests; }},
    {Type::kGauge, WorkerSeries::kVllm, "vllm:num_requests_waiting",
     "Number of requests waiting to be processed.",
     [](const EngineActor& e) -> uint64_t { return e.waiting(); }},
    {Type::kCounter, WorkerSeries::kVllm, "vllm:prefix_cache_queries_total",
     "Prefix cache queries, in tokens.",
     [](const EngineActor& e) { return e.stats().engine.prefix_cache_queries_tokens; }},
    {Type::kCounter, WorkerSeries::kVllm, "vllm:prefix_cache_hits_total",
     "Prefix cache hits, in tokens.",
     [](const EngineActor& e) { return e.stats().engine.prefix_cache_hits_tokens; }},
    {Type::kCounter, WorkerSeries::kVllm, "vllm:num_preemptions_total",
     "Cumulative number of preemptions.",
     [](const EngineActor& e) { return e.stats().engine.preemptions_total; }},
    {Type::kCounter, WorkerSeries::kVllm, "vllm:prompt_tokens_total",
     "Number of prefill tokens processed.",
     [](const EngineActor& e) { return e.stats().prompt_tokens; }},
    {Type::kCounter, WorkerSeries::kVllm, "vllm:generation_tokens_total",
     "Number of generation tokens processed.",
     [](const EngineActor& e) { return e.stats().generation_tokens; }},
    {Type::kGauge, WorkerSeries::kG2, "kvmock_g2_blocks_used", "Blocks held in the G2 (host) tier.",
     [](const EngineActor& e) { return e.stats().engine.g2_used_blocks; }},
    {Type::kGauge, WorkerSeries::kG2, "kvmock_g2_blocks_capacity",
     "Capacity of the G2 (host) tier in blocks (g2.num_blocks per dp rank).",
     [](const EngineActor& e) { return e.stats().engine.g2_total_blocks; }},
    {Type::kGauge, WorkerSeries::kG2Offload, "kvmock_g2_transfers_in_flight", kInFlightHelp,
     [](const EngineActor& e) { return e.stats().engine.offload_transfers_in_flight; }},
    {Type::kGauge, WorkerSeries::kG2Onboard, "kvmock_g2_transfers_in_flight", kInFlightHelp,
     [](const EngineActor& e) { return e.stats().engine.onboard_transfers_in_flight; }},
    {Type::kGauge, WorkerSeries::kG2, "kvmock_g2_offload_queued_blocks",
     "Blocks evicted from G1 waiting for a G1->G2 transfer.",
     [](const EngineActor& e) { return e.stats().engine.offload_queued_blocks; }},
    {Type::kCounter, WorkerSeries::kG2Offload, "kvmock_g2_bytes_moved_total", kBytesHelp,
     [](const EngineActor& e) { return e.stats().engine.g2_bytes_offloaded; }},
    {Type::kCounter, WorkerSeries::kG2Onboard, "kvmock_g2_bytes_moved_total", kBytesHelp,
     [](const EngineActor& e) { return e.stats().engine.g2_bytes_onboarded; }},
    {Type::kCounter, WorkerSeries::kG2, "kvmock_g2_onboard_hit_tokens_total",
     "Prompt tokens served by onboarding blocks from G2.",
     [](const EngineActor& e) { return e.stats().engine.g2_onboard_hit_tokens; }},
    {Type::kCounter, WorkerSeries::kG2, "kvmock_g2_offloads_dropped_total",
     "Evicted blocks not kept because G2 was full of pinned blocks.",
     [](const EngineActor& e) { return e.stats().engine.g2_offloads_dropped; }},
};

// Why a worker refuses requests while NATS has not taken its events for longer than the
// outbox lasts (docs/ARCHITECTURE.md#publishing-pipeline).
constexpr const char* kOutboxFullMessage =
    "the event outbox is full (NATS is not taking KV events); new requests are refused until "
    "it drains";

std::vector<std::string> served_names(const MockWorkerIdentity& identity) {
  std::vector<std::string> names{identity.model_name};
  for (const std::string& alias : identity.aliases) {
    if (std::find(names.begin(), names.end(), alias) == names.end()) names.push_back(alias);
  }
  return names;
}

// Sorted, without repeats, comma-joined: the adapters of several engines as one label.
std::string join_distinct(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string joined;
  for (const std::string& name : names) {
    if (!joined.empty()) joined += ',';
    joined += name;
  }
  return joined;
}

}  // namespace

MockWorkerIdentity served_model_identity(const Config& config, const ModelDirectory* model) {
  MockWorkerIdentity identity;
  identity.model_name = config.workers.model.name;
  identity.aliases = split_comma_list(config.workers.model.aliases);
  // The loader checked the syntax (config/lora_modules.h).
  if (auto modules = parse_lora_modules(config.workers.lora.modules)) {
    identity.lora_modules = std::move(*modules);
  }
  if (model != nullptr) {
    identity.output_vocab_end = static_cast<TokenId>(model->vocab_size);
    identity.codec = model->codec;
    // vLLM: --max-model-len when given, else the model's own context length.
    identity.max_model_len = config.workers.engine.max_model_len > 0
                                 ? config.workers.engine.max_model_len
                                 : model->context_length;
  }
  return identity;
}

MockWorker::MockWorker(EngineThreads& threads, const Config& config,
                       const MockWorkerIdentity& identity, const std::string& profile_text,
                       RouterEventSink& sink, MetricsRegistry& metrics, Histogram* pass_lateness,
                       EngineTime time, size_t max_waiting_per_engine)
    : config_args_(config.workers.engine),
      worker_id_(identity.worker_id),
      output_vocab_end_(identity.output_vocab_end),
      served_names_(served_names(identity)),
      codec_(identity.codec ? identity.codec : make_mock_text_codec()),
      output_vocabulary_(codec_->output_vocabulary()),
      max_context_tokens_(max_context_tokens(config.workers.engine)),
      max_model_len_(identity.max_model_len > 0 ? identity.max_model_len : max_context_tokens_),
      max_queued_prompt_tokens_(config.workers.max_queued_prompt_tokens),
      max_waiting_per_engine_(max_waiting_per_engine),
      max_held_per_engine_(max_waiting_per_engine + config.workers.engine.max_num_seqs),
      sink_(sink),
      metrics_(metrics),
      lora_adapters_(served_names_.front()),
      faults_(config.faults.seed, identity.worker_id),
      clock_(time.clock),
      ready_at_(time.clock.steady_now() +
                std::chrono::duration_cast<Clock::SteadyTime::duration>(
                    std::chrono::duration<double>(config.workers.startup_delay_s))) {
  // A configured adapter has no weights to point at: its name stands in for vLLM's path.
  for (const LoraModule& module : identity.lora_modules) {
    (void)lora_adapters_.load(module.name, module.name, module.base);
  }
  const MetricLabels labels{{"model_name", model_name()},
                            {"worker_id", std::to_string(worker_id_)}};
  EngineActorHistograms histograms;
  histograms.time_to_first_token = &metrics.histogram(
      "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels,
      latency_buckets_seconds());
  histograms.inter_token_latency = &metrics.histogram(
      "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels,
      latency_buckets_seconds());
  histograms.e2e_latency = &metrics.histogram("vllm:e2e_request_latency_seconds",
                                              "Histogram of end to end request latency in seconds.",
                                              labels, latency_buckets_seconds());
  histograms.time_per_output_token = &metrics.histogram(
      "vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.",
      labels, vllm_time_per_output_token_buckets());
  auto interval = [&](const char* name, const char* help) {
    return &metrics.histogram(name, help, labels, vllm_request_latency_buckets());
  };
  histograms.queue_time = interval("vllm:request_queue_time_seconds",
                                   "Histogram of time spent in WAITING phase for request.");
  histograms.prefill_time = interval("vllm:request_prefill_time_seconds",
                                     "Histogram of time spent in PREFILL phase for request.");
  histograms.decode_time = interval("vllm:request_decode_time_seconds",
                                    "Histogram of time spent in DECODE phase for request.");
  histograms.inference_time = interval("vllm:request_inference_time_seconds",
                                       "Histogram of time spent in RUNNING phase for request.");
  // vLLM sizes its token-count buckets by the context length: 1, 2, 5, 10, ... up to it.
  const std::vector<double> token_buckets = vllm_1_2_5_buckets(max_model_len_);
  histograms.prompt_tokens = &metrics.histogram(
      "vllm:request_prompt_tokens", "Number of prefill tokens processed.", labels, token_buckets);
  histograms.generation_tokens =
      &metrics.histogram("vllm:request_generation_tokens", "Number of generation tokens processed.",
                         labels, token_buckets);
  histograms.params_max_tokens =
      &metrics.histogram("vllm:request_params_max_tokens",
                         "Histogram of the max_tokens request parameter.", labels, token_buckets);
  auto success = [&](const char* reason) {
    MetricLabels with_reason = labels;
    with_reason.emplace_back("finished_reason", reason);
    return &metrics.counter("vllm:request_success_total",
                            "Count of successfully processed requests.", std::move(with_reason));
  };
  histograms.success_stop = success("stop");
  histograms.success_length = success("length");
  histograms.success_abort = success("abort");
  histograms.pass_lateness = pass_lateness;
  const EngineArgs& args = config.workers.engine;
  for (DpRank rank = 0; rank < std::max<uint32_t>(1, args.dp_size); ++rank) {
    auto timing = make_timing_model(args.timing, profile_text);
    engines_.push_back(std::make_unique<EngineActor>(threads.next(), args, worker_id_, rank,
                                                     timing ? std::move(*timing) : nullptr, sink,
                                                     histograms, time, max_held_per_engine_));
  }
  held_ = std::make_unique<std::atomic<uint64_t>[]>(engines_.size());
  register_metrics(metrics);
  // One listener for every part that follows the settings. set_listener() applies the
  // initial settings through it too (so the sink's event-fault series exist, at 0, from
  // the start).
  faults_.set_listener([this](const FaultSettings& settings) { on_fault_settings(settings); });
}

void MockWorker::on_fault_settings(const FaultSettings& settings) {
  apply_event_faults(settings);
  apply_pacing(settings);
}

void MockWorker::sleep(uint32_t level) {
  (void)level;  // both levels discard the KV cache; the weights are not modeled
  if (sleeping_.exchange(true)) return;
  for (auto& engine : engines_) {
    engine->cancel_all();
    engine->clear_kv_cache();
  }
}

void MockWorker::apply_pacing(const FaultSettings& settings) {
  const PassPacing pacing{settings.latency_scale, settings.jitter, settings.time_factor_under_load};
  for (auto& engine : engines_) engine->set_pacing(pacing, settings.paused, faults_.seed());
}

void MockWorker::apply_event_faults(const FaultSettings& settings) {
  const EventFaults faults = event_faults_of(settings, faults_.seed());
  sink_.set_event_faults(worker_id_, faults);
  if (event_fault_follower_) event_fault_follower_(faults);
}

void MockWorker::follow_event_faults(std::function<void(const EventFaults&)> follower) {
  event_fault_follower_ = std::move(follower);
  if (event_fault_follower_)
    event_fault_follower_(event_faults_of(faults_.settings(), faults_.seed()));
}

Result<uint64_t> MockWorker::submit(GenerationRequest request, GenerationCallbacks callbacks) {
  if (!ready_.load()) return make_error("not_ready", "worker is shutting down");
  if (starting_up()) return make_error("not_ready", not_ready_reason());
  if (sleeping_.load()) {
    return make_error("not_ready", "the model is sleeping (POST /wake_up to wake it)");
  }
  if (sink_.outbox_full()) {
    refused_outbox_full_->inc();
    return make_error("not_ready", kOutboxFullMessage);
  }
  if (request.prompt.empty()) return make_error("bad_request", "the prompt is empty");
  const uint64_t prompt_tokens = request.prompt.size();
  if (prompt_tokens + request.max_tokens > max_context_tokens_) {
    refused_context_->inc();
    return make_error("prompt_too_long", context_length_message(max_context_tokens_, prompt_tokens,
                                                                request.max_tokens));
  }
  DpRank rank = 0;
  if (request.dp_rank) {
    rank = *request.dp_rank;
    if (rank >= engines_.size()) {
      return make_error("bad_request", "data_parallel_rank " + std::to_string(rank) +
                                           " is out of range [0, " +
                                           std::to_string(engines_.size()) + ")");
    }
  } else if (engines_.size() > 1) {
    rank = next_rank_.fetch_add(1) % static_cast<uint32_t>(engines_.size());
  }
  if (auto reserved = reserve(rank, prompt_tokens); !reserved) return reserved.error();
  // The reservation ends with the request, however it ends.
  callbacks.on_finish = [this, rank, prompt_tokens,
                         inner = std::move(callbacks.on_finish)](const GenerationFinish& finish) {
    release(rank, prompt_tokens);
    if (inner) inner(finish);
  };
  if (output_vocab_end_ > 0) request.output_vocab_end = output_vocab_end_;
  request.output_vocabulary = output_vocabulary_;
  const uint64_t id = (uint64_t{rank} << kRankShift) | next_request_.fetch_add(1);
  engines_[rank]->submit(id, std::move(request), std::move(callbacks));
  return id;
}

Result<bool> MockWorker::reserve(DpRank rank, uint64_t prompt_tokens) {
  if (!try_add(held_[rank], 1, max_held_per_engine_)) {
    refused_queue_full_->inc();
    return make_error("queue_full", "the waiting queue is full (" +
                                        std::to_string(max_waiting_per_engine_) + " requests)");
  }
  if (!try_add(queued_prompt_tokens_, prompt_tokens, max_queued_prompt_tokens_)) {
    held_[rank].fetch_sub(1);
    refused_prompt_tokens_->inc();
    return make_error("queue_full",
                      "the worker holds too many queued prompt tokens "
                      "(workers.max_queued_prompt_tokens " +
                          std::to_string(max_queued_prompt_tokens_) + ")");
  }
  return true;
}

void MockWorker::release(DpRank rank, uint64_t prompt_tokens) {
  held_[rank].fetch_sub(1);
  queued_prompt_tokens_.fetch_sub(prompt_tokens);
  if (prompt_tokens >= kTrimAfterPromptTokens) malloc_trim(0);
}

void MockWorker::cancel(uint64_t request_id) {
  const size_t rank = request_id >> kRankShift;
  if (rank < engines_.size()) engines_[rank]->cancel(request_id);
}

void MockWorker::stop(uint64_t request_id) {
  const size_t rank = request_id >> kRankShift;
  if (rank < engines_.size()) engines_[rank]->stop(request_id);
}

void MockWorker::cancel_all() {
  for (auto& engine : engines_) engine->cancel_all();
}

uint64_t MockWorker::in_flight() const {
  uint64_t total = 0;
  for (const auto& engine : engines_) total += engine->in_flight();
  return total;
}

std::string MockWorker::not_ready_reason() const {
  if (!ready_.load()) return "the worker is shutting down";
  if (sink_.outbox_full()) return kOutboxFullMessage;
  if (starting_up()) return "the worker is starting up (workers.startup_delay_s)";
  return {};
}

std::string MockWorker::render_metrics() const {
  return metrics_.render_matching("worker_id", std::to_string(worker_id_));
}

void MockWorker::register_metrics(MetricsRegistry& metrics) {
  const std::string worker = std::to_string(worker_id_);
  auto refused = [&](const char* reason) {
    return &metrics.counter("kvmock_worker_refused_requests_total",
                            "Requests the worker refused before queueing them, by reason "
                            "(context_length: 400; queue_full, prompt_tokens: 429; "
                            "event_outbox_full: 503).",
                            {{"worker_id", worker}, {"reason", reason}});
  };
  refused_context_ = refused("context_length");
  refused_queue_full_ = refused("queue_full");
  refused_prompt_tokens_ = refused("prompt_tokens");
  refused_outbox_full_ = refused("event_outbox_full");
  for (const FaultType type : all_fault_types()) {
    metrics.counter_callback("kvmock_faults_injected_total", kFaultsInjectedHelp,
                             {{"worker_id", worker}, {"type", std::string(fault_type_name(type))}},
                             [this, type] { return static_cast<double>(faults_.injected(type)); });
  }
  const MetricLabels vllm{{"model_name", model_name()}, {"worker_id", worker}};
  const bool g2 = engines_.front()->g2_enabled();
  for (const WorkerSeries& series : kWorkerSeries) {
    if (series.labels != WorkerSeries::kVllm && !g2) continue;
    MetricLabels labels = vllm;
    if (series.labels != WorkerSeries::kVllm) labels = {{"worker_id", worker}};
    if (series.labels == WorkerSeries::kG2Offload) labels.emplace_back("link", "offload");
    if (series.labels == WorkerSeries::kG2Onboard) labels.emplace_back("link", "onboard");
    auto sum = [this, read = series.read] {
      double total = 0;
      for (const auto& engine : engines_) total += static_cast<double>(read(*engine));
      return total;
    };
    if (series.type == Type::kGauge) {
      metrics.gauge_callback(series.name, series.help, std::move(labels), sum);
    } else {
      metrics.counter_callback(series.name, series.help, std::move(labels), sum);
    }
  }
  // vLLM's info gauges. cache_config_info: one series per engine (vLLM's `engine` label),
  // labelled with the CacheConfig fields kvmock models (strings, as vLLM writes them;
  // gpu_memory_utilization and cache_dtype are vLLM's defaults, as nothing sizes memory here).
  const EngineArgs& args = config_args_;
  for (size_t rank = 0; rank < engines_.size(); ++rank) {
    metrics.gauge_callback(
        "vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
        {{"block_size", std::to_string(args.block_size)},
         {"cache_dtype", "auto"},
         {"enable_prefix_caching", args.enable_prefix_caching ? "True" : "False"},
         {"engine", std::to_string(rank)},
         {"gpu_memory_utilization", "0.9"},
         {"num_cpu_blocks", args.g2.enabled() ? std::to_string(args.g2.num_blocks) : "None"},
         {"num_gpu_blocks", std::to_string(args.num_gpu_blocks)},
         {"worker_id", worker}},
        [] { return 1.0; });
  }
  // lora_requests_info: vLLM sets it to the current time at each engine step, labelled with
  // the adapters of the running and waiting requests (comma-joined); its value here is the
  // time of the engines' last update, and the labels are the adapters in use right now.
  metrics.gauge_callback(
      "vllm:lora_requests_info", "Running stats on lora requests.",
      {{"max_lora", std::to_string(config_args_.max_loras)}, {"worker_id", worker}},
      [this] {
        double latest = 0;
        for (const auto& engine : engines_) {
          latest = std::max(latest, engine->stats().updated_unix_s);
        }
        return latest;
      },
      [this] {
        std::vector<std::string> running;
        std::vector<std::string> waiting;
        for (const auto& engine : engines_) {
          const EngineActorStats stats = engine->stats();
          running.insert(running.end(), stats.engine.running_lora_adapters.begin(),
                         stats.engine.running_lora_adapters.end());
          waiting.insert(waiting.end(), stats.engine.waiting_lora_adapters.begin(),
                         stats.engine.waiting_lora_adapters.end());
        }
        return MetricLabels{{"running_lora_adapters", join_distinct(std::move(running))},
                            {"waiting_lora_adapters", join_distinct(std::move(waiting))}};
      });
  metrics.gauge_callback("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                         vllm, [this] {
                           double active = 0, total = 0;
                           for (const auto& engine : engines_) {
                             const EngineActorStats stats = engine->stats();
                             active += static_cast<double>(stats.engine.active_blocks);
                             total += static_cast<double>(stats.engine.total_blocks);
                           }
                           return total > 0 ? active / total : 0.0;
                         });
}

}  // namespace kvmock
