#include "daemon/relayed_engine.h"

#include "core/events/engine_payload_codec.h"
#include "transport/log/logger.h"

namespace kvmock {

RelayedEngine::RelayedEngine(const RelayConfig& config, zmq::context_t& context,
                             RouterEventSink& pipeline, Outbox& outbox, MetricsRegistry& metrics)
    : config_(config),
      context_(context),
      pipeline_(pipeline),
      outbox_(outbox),
      decoded_(std::max<uint32_t>(1, config.dp_size)),
      labels_{{"relay", config.endpoint}, {"worker_id", std::to_string(config.worker_id)}},
      metrics_(metrics) {}

RelayedEngine::~RelayedEngine() { stop(); }

Result<bool> RelayedEngine::start() {
  for (uint32_t rank = 0; rank < std::max<uint32_t>(1, config_.dp_size); ++rank) {
    RelayedEngineSubscriberOptions options;
    options.endpoint = config_.endpoint;
    options.replay_endpoint = config_.replay_endpoint;
    options.dp_rank = rank;
    options.topic = config_.topic;
    options.replay_timeout_ms = static_cast<int>(config_.replay_timeout_ms);
    options.max_message_bytes = static_cast<int64_t>(config_.max_message_bytes);
    options.max_buffered_bytes = config_.max_buffered_bytes;
    options.max_gap = config_.max_gap;
    // Backpressure: while the outbox is full the socket is not read, so the engine's HWM
    // and replay buffer carry the rest. Returns promptly once stop() begins.
    options.wait_for_room = [this] {
      while (!stopping_.load() && !outbox_.wait_for_room(std::chrono::milliseconds(100))) {
      }
    };
    const std::string component = "relay " + config_.endpoint;
    options.log = [component](std::string_view line) {
      Logger::instance().log_limited(LogSeverity::kWarn,
                                     component + std::string(line.substr(0, 24)), component, line);
    };
    auto subscriber = RelayedEngineSubscriber::start(context_, options, *this);
    if (!subscriber) {
      stop();
      return make_error(subscriber.error().reason,
                        "relay " + config_.endpoint + ": " + subscriber.error().message);
    }
    subscribers_.push_back(std::move(*subscriber));
  }
  register_metrics(metrics_);
  log_info("relay", "following " + config_.endpoint + " (dp_size " +
                        std::to_string(config_.dp_size) + ") as worker " +
                        std::to_string(config_.worker_id));
  return true;
}

void RelayedEngine::stop() {
  stopping_ = true;
  for (auto& subscriber : subscribers_) subscriber->stop();
}

void RelayedEngine::on_batch(uint32_t dp_rank, uint64_t seq, std::span<const uint8_t> payload,
                             bool) {
  // Ranks come from start(), so dp_rank always has its batch; anything else gets its own.
  EngineBatch one_off;
  EngineBatch& batch = dp_rank < decoded_.size() ? decoded_[dp_rank] : one_off;
  auto decoded = decode_engine_payload(payload, batch);
  if (!decoded) {
    decode_errors_total_.fetch_add(1, std::memory_order_relaxed);
    metrics_
        .counter("kvmock_relay_decode_errors_total", "Engine payloads that could not be decoded.",
                 [&] {
                   MetricLabels l = labels_;
                   l.emplace_back("reason", std::string(decoded.error().reason));
                   return l;
                 }())
        .inc();
    Logger::instance().log_limited(LogSeverity::kWarn, "relay-decode-" + config_.endpoint, "relay",
                                   "undecodable payload from " + config_.endpoint + " rank " +
                                       std::to_string(dp_rank) + " seq " + std::to_string(seq) +
                                       ": " + std::string(decoded.error().reason) + ": " +
                                       decoded.error().message);
    return;
  }
  ConversionOptions options;
  options.worker_id = config_.worker_id;
  options.block_size = config_.block_size;
  options.default_dp_rank = dp_rank;
  ConvertedBatch converted = convert_engine_batch(batch, options);
  {
    std::lock_guard lock(mutex_);
    conversion_.add(batch, converted);
  }
  events_in_.fetch_add(batch.events.size(), std::memory_order_relaxed);
  events_out_.fetch_add(converted.events.size(), std::memory_order_relaxed);
  for (const ConversionIssue& issue : converted.issues) {
    Logger::instance().log_limited(
        LogSeverity::kWarn,
        "relay-convert-" + config_.endpoint + std::string(conversion_issue_reason(issue.kind)),
        "relay", config_.endpoint + ": " + issue.message);
  }
  const DpRank rank = converted.dp_rank;
  if (!converted.events.empty())
    pipeline_.publish(config_.worker_id, rank, std::move(converted.events));
  const uint64_t blocks = pipeline_.block_count(config_.worker_id, rank);
  pipeline_.update_load(ActiveLoad{config_.worker_id, rank, blocks, std::nullopt, blocks});
}

void RelayedEngine::on_restart(uint32_t dp_rank) {
  log_warn("relay", config_.endpoint + " rank " + std::to_string(dp_rank) +
                        " restarted (sequence went backwards): publishing Cleared");
  pipeline_.publish_cleared(config_.worker_id, dp_rank);
  pipeline_.update_load(ActiveLoad{config_.worker_id, dp_rank, 0, std::nullopt, 0});
}

std::vector<const RelayedEngineSubscriberCounters*> RelayedEngine::subscriber_counters() const {
  std::vector<const RelayedEngineSubscriberCounters*> counters;
  for (const auto& s : subscribers_) counters.push_back(&s->counters());
  return counters;
}

void RelayedEngine::register_metrics(MetricsRegistry& metrics) {
  auto sum = [this](auto field) {
    return [this, field] {
      double total = 0;
      for (const auto& s : subscribers_) total += static_cast<double>(field(s->counters()));
      return total;
    };
  };
  struct Series {
    const char* name;
    const char* help;
    std::function<uint64_t(const RelayedEngineSubscriberCounters&)> read;
  };
  const Series series[] = {
      {"kvmock_relay_frames_total", "ZMQ frames received from the engine.",
       [](const auto& c) { return c.frames.load(); }},
      {"kvmock_relay_batches_total", "Engine batches received live.",
       [](const auto& c) { return c.batches.load(); }},
      {"kvmock_relay_gaps_total", "Sequence gaps detected.",
       [](const auto& c) { return c.gaps.load(); }},
      {"kvmock_relay_replays_total", "Replay requests sent to the engine.",
       [](const auto& c) { return c.replays_requested.load(); }},
      {"kvmock_relay_replayed_batches_total", "Batches recovered through replay.",
       [](const auto& c) { return c.replayed_batches.load(); }},
      {"kvmock_relay_missing_batches_total", "Batches lost in gaps that replay could not heal.",
       [](const auto& c) { return c.missing_batches.load(); }},
      {"kvmock_relay_restarts_total", "Engine restarts detected (sequence went backwards).",
       [](const auto& c) { return c.restarts.load(); }},
      {"kvmock_relay_receive_errors_total", "ZMQ receive errors.",
       [](const auto& c) { return c.receive_errors.load(); }},
      {"kvmock_relay_disconnects_total",
       "Engine connections lost (engine gone, or a message over max_message_bytes refused).",
       [](const auto& c) { return c.disconnects.load(); }},
  };
  for (const Series& s : series) metrics.counter_callback(s.name, s.help, labels_, sum(s.read));
  for (size_t r = 0; r < kSubscriberDropReasons; ++r) {
    MetricLabels labels = labels_;
    labels.emplace_back("reason",
                        std::string(subscriber_drop_reason(static_cast<SubscriberDrop>(r))));
    metrics.counter_callback(
        "kvmock_relay_dropped_messages_total", "Malformed ZMQ messages dropped.", labels,
        sum([r](const RelayedEngineSubscriberCounters& c) { return c.dropped[r].load(); }));
  }
  for (size_t r = 0; r < kReplayFailureReasons; ++r) {
    MetricLabels labels = labels_;
    labels.emplace_back("reason",
                        std::string(replay_failure_reason(static_cast<ReplayFailure>(r))));
    metrics.counter_callback(
        "kvmock_relay_replay_failures_total", "Sequence gaps replay did not fully heal, by reason.",
        labels,
        sum([r](const RelayedEngineSubscriberCounters& c) { return c.replay_failures[r].load(); }));
  }
  metrics.counter_callback("kvmock_relay_events_in_total", "Engine events decoded.", labels_,
                           [this] { return static_cast<double>(events_in_.load()); });
  metrics.counter_callback("kvmock_relay_events_out_total", "Router events produced by conversion.",
                           labels_, [this] { return static_cast<double>(events_out_.load()); });
  for (size_t k = 0; k < kConversionIssueKinds; ++k) {
    MetricLabels labels = labels_;
    labels.emplace_back("reason",
                        std::string(conversion_issue_reason(static_cast<ConversionIssueKind>(k))));
    metrics.counter_callback("kvmock_relay_conversion_issues_total",
                             "Engine events not converted as sent.", labels, [this, k] {
                               std::lock_guard lock(mutex_);
                               return static_cast<double>(conversion_.issues[k]);
                             });
  }
}

}  // namespace kvmock
