// `workers.zmq_events`: one engine's KV events in vLLM's own ZMQ wire format (PUB +
// replay ROUTER), one batch per pass, so engine-reading routers and kvmock's own relay
// can consume mock workers like real engines.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <zmq.hpp>

#include "config/config.h"
#include "core/events/engine_event_builder.h"
#include "core/events/engine_payload_codec.h"
#include "daemon/engine_actor.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {

class VllmZmqEventOutput : public EngineObserver {
 public:
  // Binds the PUB socket at bind_host:`port` - or connects it to config.connect - and the
  // replay ROUTER at `replay_port` (0: no replay socket). `topic` is config.topic already
  // expanded for this engine (config/zmq_topic.h).
  static Result<std::unique_ptr<VllmZmqEventOutput>> start(zmq::context_t& context,
                                                           const ZmqEventsConfig& config,
                                                           uint32_t block_size, DpRank rank,
                                                           uint16_t port, uint16_t replay_port,
                                                           std::string topic);

  void on_request(RequestId id, const GenerationRequest& request) override;
  void on_tokens(RequestId id, const std::vector<TokenId>& tokens) override;
  void on_request_done(RequestId id) override;
  void on_pass_events(const std::vector<RouterEvent>& events) override;

  // The event faults of the worker behind this engine (docs/faults.md#event-faults), on
  // its batches from now on. Thread-safe.
  void set_event_faults(const EventFaults& faults, WorkerId worker) {
    publisher_->set_event_faults(faults, worker, rank_);
  }

  void stop();
  std::string endpoint() const { return publisher_->endpoint(); }
  bool connects() const { return publisher_->connects(); }
  const std::string& topic() const { return topic_; }
  std::string replay_endpoint() const { return publisher_->replay_endpoint(); }
  const VllmZmqEventPublisherCounters& counters() const { return publisher_->counters(); }
  uint64_t untraced_stores() const { return builder_.untraced_stores(); }

 private:
  VllmZmqEventOutput(std::unique_ptr<VllmZmqEventPublisher> publisher, std::string topic,
                     EngineEventBuilderOptions options, EngineHashEncoding hashes, DpRank rank);

  std::unique_ptr<VllmZmqEventPublisher> publisher_;
  const std::string topic_;
  EngineEventBuilder builder_;  // touched only on the engine's thread
  const EngineEncodeOptions encode_options_;
  const DpRank rank_;
};

}  // namespace kvmock
