#include "daemon/mock_worker.h"

#include <malloc.h>

namespace kvmock {
namespace {

// Requests a single engine holds waiting before new ones get 429.
constexpr size_t kMaxWaitingPerEngine = 4096;

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

}  // namespace

MockWorker::MockWorker(EngineThreads& threads, const Config& config, uint32_t index,
                       const std::string& profile_text, RouterEventSink& pipeline,
                       MetricsRegistry& metrics, Histogram* pass_lateness,
                       EngineActor::Clock::time_point epoch)
    : worker_id_(config.workers.worker_id_base + index),
      model_name_(kMockModelName),
      max_context_tokens_(max_context_tokens(config.workers.engine)),
      max_queued_prompt_tokens_(config.workers.max_queued_prompt_tokens),
      // Waiting plus the most that can run, so the waiting queue holds
      // kMaxWaitingPerEngine however many run.
      max_held_per_engine_(kMaxWaitingPerEngine + config.workers.engine.max_num_seqs),
      metrics_(metrics) {
  const MetricLabels labels{{"model_name", model_name_}, {"worker_id", std::to_string(worker_id_)}};
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
  histograms.pass_lateness = pass_lateness;
  const EngineArgs& args = config.workers.engine;
  for (DpRank rank = 0; rank < std::max<uint32_t>(1, args.dp_size); ++rank) {
    auto timing = make_timing_model(args.timing, profile_text);
    engines_.push_back(std::make_unique<EngineActor>(
        threads.next(), args, worker_id_, rank, timing ? std::move(*timing) : nullptr, pipeline,
        histograms, epoch, max_held_per_engine_));
  }
  held_ = std::make_unique<std::atomic<uint64_t>[]>(engines_.size());
  register_metrics(metrics);
}

Result<uint64_t> MockWorker::submit(GenerationRequest request, GenerationCallbacks callbacks) {
  if (!ready()) return make_error("not_ready", "worker is shutting down");
  if (request.prompt.empty()) return make_error("bad_request", "the prompt is empty");
  const uint64_t prompt_tokens = request.prompt.size();
  if (prompt_tokens + request.max_tokens > max_context_tokens_) {
    refused_context_->inc();
    return make_error("prompt_too_long", context_length_message(max_context_tokens_, prompt_tokens,
                                                                request.max_tokens));
  }
  DpRank rank = request.dp_rank;
  if (rank >= engines_.size()) {
    return make_error("bad_request", "dp_rank " + std::to_string(rank) + " out of range (dp_size " +
                                         std::to_string(engines_.size()) + ")");
  }
  if (engines_.size() > 1 && request.dp_rank == 0) {
    rank = next_rank_.fetch_add(1) % static_cast<uint32_t>(engines_.size());
  }
  if (auto reserved = reserve(rank, prompt_tokens); !reserved) return reserved.error();
  // The reservation ends with the request, however it ends.
  callbacks.on_finish = [this, rank, prompt_tokens,
                         inner = std::move(callbacks.on_finish)](const GenerationFinish& finish) {
    release(rank, prompt_tokens);
    if (inner) inner(finish);
  };
  const uint64_t id = (uint64_t{rank} << kRankShift) | next_request_.fetch_add(1);
  engines_[rank]->submit(id, std::move(request), std::move(callbacks));
  return id;
}

Result<bool> MockWorker::reserve(DpRank rank, uint64_t prompt_tokens) {
  if (!try_add(held_[rank], 1, max_held_per_engine_)) {
    refused_queue_full_->inc();
    return make_error("queue_full", "the waiting queue is full (" +
                                        std::to_string(kMaxWaitingPerEngine) + " requests)");
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

void MockWorker::cancel_all() {
  for (auto& engine : engines_) engine->cancel_all();
}

uint64_t MockWorker::in_flight() const {
  uint64_t total = 0;
  for (const auto& engine : engines_) total += engine->stats().in_flight.load();
  return total;
}

std::string MockWorker::render_metrics() const {
  return metrics_.render_matching("worker_id", std::to_string(worker_id_));
}

void MockWorker::register_metrics(MetricsRegistry& metrics) {
  const MetricLabels labels{{"model_name", model_name_}, {"worker_id", std::to_string(worker_id_)}};
  auto refused = [&](const char* reason) {
    return &metrics.counter("kvmock_worker_refused_requests_total",
                            "Requests the worker refused before queueing them, by reason "
                            "(context_length: 400; queue_full, prompt_tokens: 429).",
                            {{"worker_id", std::to_string(worker_id_)}, {"reason", reason}});
  };
  refused_context_ = refused("context_length");
  refused_queue_full_ = refused("queue_full");
  refused_prompt_tokens_ = refused("prompt_tokens");
  auto sum = [this](auto read) {
    return [this, read] {
      double total = 0;
      for (const auto& engine : engines_) total += static_cast<double>(read(engine->stats()));
      return total;
    };
  };
  metrics.gauge_callback("vllm:num_requests_running",
                         "Number of requests in model execution batches.", labels,
                         sum([](const EngineActorStats& s) { return s.running.load(); }));
  metrics.gauge_callback("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                         labels, sum([](const EngineActorStats& s) { return s.waiting.load(); }));
  metrics.gauge_callback("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                         labels, [this] {
                           double active = 0, total = 0;
                           for (const auto& e : engines_) {
                             active += static_cast<double>(e->stats().active_blocks.load());
                             total += static_cast<double>(e->stats().total_blocks.load());
                           }
                           return total > 0 ? active / total : 0.0;
                         });
  metrics.counter_callback(
      "vllm:prefix_cache_queries_total", "Prefix cache queries, in tokens.", labels,
      sum([](const EngineActorStats& s) { return s.prefix_queries_tokens.load(); }));
  metrics.counter_callback(
      "vllm:prefix_cache_hits_total", "Prefix cache hits, in tokens.", labels,
      sum([](const EngineActorStats& s) { return s.prefix_hits_tokens.load(); }));
  metrics.counter_callback("vllm:num_preemptions_total", "Cumulative number of preemptions.",
                           labels,
                           sum([](const EngineActorStats& s) { return s.preemptions.load(); }));
  metrics.counter_callback("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
                           labels,
                           sum([](const EngineActorStats& s) { return s.prompt_tokens.load(); }));
  metrics.counter_callback(
      "vllm:generation_tokens_total", "Number of generation tokens processed.", labels,
      sum([](const EngineActorStats& s) { return s.generation_tokens.load(); }));
  metrics.counter_callback(
      "vllm:request_success_total", "Count of finished requests.", labels,
      sum([](const EngineActorStats& s) { return s.requests_finished.load(); }));
  if (engines_.front()->g2_enabled()) register_g2_metrics(metrics);
}

void MockWorker::register_g2_metrics(MetricsRegistry& metrics) {
  const std::string worker = std::to_string(worker_id_);
  const MetricLabels labels{{"worker_id", worker}};
  const MetricLabels offload{{"worker_id", worker}, {"link", "offload"}};
  const MetricLabels onboard{{"worker_id", worker}, {"link", "onboard"}};
  // Sums one atomic of EngineActorStats over the worker's dp ranks.
  auto sum = [this](std::atomic<uint64_t> EngineActorStats::*field) {
    return [this, field] {
      double total = 0;
      for (const auto& engine : engines_) {
        total += static_cast<double>((engine->stats().*field).load());
      }
      return total;
    };
  };
  metrics.gauge_callback("kvmock_g2_blocks_used", "Blocks held in the G2 (host) tier.", labels,
                         sum(&EngineActorStats::g2_used_blocks));
  metrics.gauge_callback("kvmock_g2_blocks_capacity",
                         "Capacity of the G2 (host) tier in blocks (g2.num_blocks per dp rank).",
                         labels, sum(&EngineActorStats::g2_total_blocks));
  const char* in_flight_help = "KV transfers in flight between G1 and G2, by link.";
  metrics.gauge_callback("kvmock_g2_transfers_in_flight", in_flight_help, offload,
                         sum(&EngineActorStats::g2_offloads_in_flight));
  metrics.gauge_callback("kvmock_g2_transfers_in_flight", in_flight_help, onboard,
                         sum(&EngineActorStats::g2_onboards_in_flight));
  metrics.gauge_callback("kvmock_g2_offload_queued_blocks",
                         "Blocks evicted from G1 waiting for a G1->G2 transfer.", labels,
                         sum(&EngineActorStats::g2_offload_queued_blocks));
  const char* bytes_help = "Bytes of finished KV transfers between G1 and G2, by link.";
  metrics.counter_callback("kvmock_g2_bytes_moved_total", bytes_help, offload,
                           sum(&EngineActorStats::g2_bytes_offloaded));
  metrics.counter_callback("kvmock_g2_bytes_moved_total", bytes_help, onboard,
                           sum(&EngineActorStats::g2_bytes_onboarded));
  metrics.counter_callback("kvmock_g2_onboard_hit_tokens_total",
                           "Prompt tokens served by onboarding blocks from G2.", labels,
                           sum(&EngineActorStats::g2_onboard_hit_tokens));
  metrics.counter_callback("kvmock_g2_offloads_dropped_total",
                           "Evicted blocks not kept because G2 was full of pinned blocks.", labels,
                           sum(&EngineActorStats::g2_offloads_dropped));
}

}  // namespace kvmock
