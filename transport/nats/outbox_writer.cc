#include "transport/nats/outbox_writer.h"

#include <algorithm>
#include <limits>
#include <string>

#include "transport/log/logger.h"

namespace kvmock {
namespace {

// How long one wait for room lasts before it is counted again, the shutdown signals are
// checked again and the log line renewed.
constexpr auto kBackpressureSlice = std::chrono::milliseconds(100);

int64_t to_ns(Clock::SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

OutboxWriter::OutboxWriter(Outbox& outbox, MetricsRegistry& metrics, const Clock& clock)
    : outbox_(outbox),
      clock_(clock),
      give_up_at_ns_(std::numeric_limits<int64_t>::max()),
      backpressure_waits_(&metrics.counter(
          "kvmock_pipeline_backpressure_waits_total",
          "Times a source waited because the outbox was full (sources slowed, nothing dropped).")),
      abandoned_(&metrics.counter(
          "kvmock_pipeline_events_abandoned_total",
          "Messages never queued for NATS because shutdown ended the wait for outbox room.")) {}

void OutboxWriter::stop_waiting_at(Clock::SteadyTime deadline) {
  give_up_at_ns_.store(to_ns(deadline));
}

bool OutboxWriter::may_wait() const {
  return !outbox_.closed() && to_ns(clock_.steady_now()) < give_up_at_ns_.load();
}

size_t OutboxWriter::push_all(std::vector<OutboundMessage>& messages) {
  // Backpressure, not loss, while the daemon runs: wait for room however long NATS stays
  // away. Shutdown bounds the wait (the loop ends once may_wait() turns false).
  size_t sent = 0;
  while (sent < messages.size()) {
    const bool waiting_allowed = may_wait();
    sent += outbox_.push_all(messages, sent,
                             waiting_allowed ? kBackpressureSlice : std::chrono::milliseconds(0));
    if (sent == messages.size()) break;
    if (!waiting_allowed || !may_wait()) {
      const size_t left = messages.size() - sent;
      abandoned_->inc(left);
      Logger::instance().log_limited(
          LogSeverity::kWarn, "outbox-abandoned", "pipeline",
          "shutting down with the outbox full: " + std::to_string(left) +
              " events will not reach NATS (kvmock_pipeline_events_abandoned_total)",
          std::chrono::seconds(1));
      break;
    }
    note_backpressure();
  }
  return sent;
}

size_t OutboxWriter::push_some(std::vector<OutboundMessage>& messages,
                               std::chrono::milliseconds max_wait) {
  // The wait is spent in slices of real time on the outbox's condition variable, so it is
  // bounded by `max_wait` whatever the clock (a test's manual clock does not move).
  size_t sent = outbox_.push_all(messages, 0, std::chrono::milliseconds(0));
  for (auto left = max_wait; sent < messages.size() && left.count() > 0 && may_wait();
       left -= std::min(left, kBackpressureSlice)) {
    note_backpressure();
    sent += outbox_.push_all(messages, sent, std::min(left, kBackpressureSlice));
  }
  return sent;
}

size_t OutboxWriter::push(OutboundMessage message) {
  std::vector<OutboundMessage> one;
  one.push_back(std::move(message));
  return push_all(one);
}

void OutboxWriter::note_backpressure() {
  backpressure_waits_->inc();
  Logger::instance().log_limited(LogSeverity::kWarn, "outbox-full", "pipeline",
                                 "outbox full (" + std::to_string(outbox_.capacity()) +
                                     " events): slowing sources until NATS catches up",
                                 std::chrono::seconds(5));
}

}  // namespace kvmock
