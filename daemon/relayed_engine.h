// One `relays:` entry at work: follows a real engine's KV-event sockets (one per dp rank),
// decodes and converts each batch with Dynamo's relay semantics, and hands the router
// events to the publishing pipeline. An engine restart (seq going backwards) becomes a
// Cleared for that rank. The relay's load metric is the number of blocks its local
// indexer holds for the rank.
//
// Nothing an engine sends can stop the relay: undecodable payloads are counted by reason
// and logged at a rate limit.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "config/config.h"
#include "core/events/engine_event_converter.h"
#include "core/pipeline/router_event_sink.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/outbox.h"
#include "transport/zmq/relayed_engine_subscriber.h"

namespace kvmock {

class RelayedEngine : public RelayedEngineStreamSink {
 public:
  RelayedEngine(const RelayConfig& config, zmq::context_t& context, RouterEventSink& pipeline,
                Outbox& outbox, MetricsRegistry& metrics);
  ~RelayedEngine() override;

  // Starts one subscriber per dp rank. Error on a bad endpoint.
  Result<bool> start();
  // Stops receiving (intake). Idempotent.
  void stop();

  void on_batch(uint32_t dp_rank, uint64_t seq, std::span<const uint8_t> payload,
                bool replayed) override;
  void on_restart(uint32_t dp_rank) override;

  uint64_t decode_errors() const { return decode_errors_total_.load(); }
  const ConversionCounters& conversion() const { return conversion_; }
  std::vector<const RelayedEngineSubscriberCounters*> subscriber_counters() const;

 private:
  void register_metrics(MetricsRegistry& metrics);

  const RelayConfig config_;
  zmq::context_t& context_;
  RouterEventSink& pipeline_;
  Outbox& outbox_;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<RelayedEngineSubscriber>> subscribers_;
  // One per dp rank, each touched only by that rank's subscriber thread: the batch every
  // payload of the rank is decoded into, so the steady path reuses its storage.
  std::vector<EngineBatch> decoded_;
  std::mutex mutex_;  // guards conversion_ (one thread per rank may convert)
  ConversionCounters conversion_;
  std::atomic<uint64_t> decode_errors_total_{0};
  std::atomic<uint64_t> events_in_{0};
  std::atomic<uint64_t> events_out_{0};
  MetricLabels labels_;
  MetricsRegistry& metrics_;
};

}  // namespace kvmock
