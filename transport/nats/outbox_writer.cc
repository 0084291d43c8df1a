#include "transport/nats/outbox_writer.h"

#include <chrono>
#include <string>

#include "transport/log/logger.h"

namespace kvmock {
namespace {

// How long one wait for room lasts before it is counted again (and the log line renewed).
constexpr auto kBackpressureSlice = std::chrono::milliseconds(100);

}  // namespace

OutboxWriter::OutboxWriter(Outbox& outbox, MetricsRegistry& metrics)
    : outbox_(outbox),
      backpressure_waits_(&metrics.counter(
          "kvmock_pipeline_backpressure_waits_total",
          "Times a source waited because the outbox was full (sources slowed, nothing dropped).")) {
}

void OutboxWriter::push_all(std::vector<OutboundMessage>& messages) {
  // Backpressure, not loss: wait for room however long NATS stays away.
  size_t sent = 0;
  while (sent < messages.size()) {
    sent += outbox_.push_all(messages, sent, kBackpressureSlice);
    if (sent < messages.size()) note_backpressure();
  }
}

void OutboxWriter::push(OutboundMessage message) {
  std::vector<OutboundMessage> one;
  one.push_back(std::move(message));
  push_all(one);
}

void OutboxWriter::note_backpressure() {
  backpressure_waits_->inc();
  Logger::instance().log_limited(LogSeverity::kWarn, "outbox-full", "pipeline",
                                 "outbox full (" + std::to_string(outbox_.capacity()) +
                                     " events): slowing sources until NATS catches up",
                                 std::chrono::seconds(5));
}

}  // namespace kvmock
