#include "daemon/vllm_zmq_event_output.h"

#include <chrono>

#include "transport/time/system_clock.h"

namespace kvmock {
namespace {

EngineHashEncoding hash_encoding(HashEncoding encoding) {
  switch (encoding) {
    case HashEncoding::kUint64:
      return EngineHashEncoding::kUint64;
    case HashEncoding::kInt64:
      return EngineHashEncoding::kInt64;
    case HashEncoding::kBytes32:
      return EngineHashEncoding::kBytes32;
  }
  return EngineHashEncoding::kUint64;
}

}  // namespace

Result<std::unique_ptr<VllmZmqEventOutput>> VllmZmqEventOutput::start(
    zmq::context_t& context, const ZmqEventsConfig& config, uint32_t block_size, DpRank rank,
    uint16_t port, uint16_t replay_port, std::string topic) {
  VllmZmqEventPublisherOptions options;
  options.bind_host = config.bind_host;
  options.port = port;
  options.connect = config.connect;
  if (config.replay_base_port != 0) options.replay_port = replay_port;
  options.topic = topic;
  auto publisher = VllmZmqEventPublisher::start(context, options);
  if (!publisher) return publisher.error();
  EngineEventBuilderOptions builder;
  builder.block_size = block_size;
  builder.encoding = config.encoding == ZmqEncoding::kMap ? EngineEventEncoding::kMap
                                                          : EngineEventEncoding::kPositional;
  return std::unique_ptr<VllmZmqEventOutput>(new VllmZmqEventOutput(
      std::move(*publisher), std::move(topic), builder, hash_encoding(config.hash_encoding), rank));
}

VllmZmqEventOutput::VllmZmqEventOutput(std::unique_ptr<VllmZmqEventPublisher> publisher,
                                       std::string topic, EngineEventBuilderOptions options,
                                       EngineHashEncoding hashes, DpRank rank)
    : publisher_(std::move(publisher)),
      topic_(std::move(topic)),
      builder_(options),
      encode_options_{options.encoding, hashes},
      rank_(rank) {}

void VllmZmqEventOutput::on_request(RequestId id, const GenerationRequest& request) {
  builder_.add_request(id, request.prompt, request.lora_name, request.cache_salt, request.lora_id);
}

void VllmZmqEventOutput::on_tokens(RequestId id, const std::vector<TokenId>& tokens) {
  builder_.append_tokens(id, tokens);
}

void VllmZmqEventOutput::on_request_done(RequestId id) { builder_.remove_request(id); }

void VllmZmqEventOutput::on_pass_events(const std::vector<RouterEvent>& events) {
  const double ts =
      std::chrono::duration<double>(SystemClock::instance().system_now().time_since_epoch())
          .count();
  const EngineBatch batch = builder_.build(events, ts, rank_);
  if (batch.events.empty()) return;
  (void)publisher_->publish(encode_engine_payload(batch, encode_options_));
}

void VllmZmqEventOutput::stop() { publisher_->stop(); }

}  // namespace kvmock
