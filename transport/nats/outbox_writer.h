// The hand-off from the pipeline's stages to the Outbox: messages go in whole and in order,
// and while the outbox is full the calling source waits (backpressure: sources slow down,
// nothing is dropped while the daemon runs). Each wait is counted and logged at a rate limit.
//
// Every wait observes shutdown: once the outbox is closed, or the deadline given to
// stop_waiting_at() has passed, push_all() stops waiting, and the messages it could not
// queue are counted as abandoned (they never reach NATS; the shutdown report adds them to
// the undelivered events). See docs/ARCHITECTURE.md, shutdown order.
//
// Thread-safe (the Outbox is); callers that need their messages in order across calls
// serialise those calls themselves.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/common/clock.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/outbox.h"
#include "transport/time/system_clock.h"

namespace kvmock {

class OutboxWriter {
 public:
  OutboxWriter(Outbox& outbox, MetricsRegistry& metrics,
               const Clock& clock = SystemClock::instance());

  // Appends every message of `messages` in order, waiting for room until the outbox is
  // closed or the stop_waiting_at() deadline passes. Returns how many were queued (from
  // the front); the rest are counted as abandoned.
  size_t push_all(std::vector<OutboundMessage>& messages);
  size_t push(OutboundMessage message);
  // Appends messages from the front of `messages`, in order, waiting for room at most
  // `max_wait` in all (0: only what fits now). Returns how many were queued; the caller
  // keeps the rest and tries again later (nothing is counted as abandoned). Once shutdown
  // has ended waiting this never waits.
  size_t push_some(std::vector<OutboundMessage>& messages, std::chrono::milliseconds max_wait);

  // From `deadline` on, a full outbox no longer blocks: pushes that find no room give up.
  // Called when shutdown starts (with the end of the grace period). Thread-safe.
  void stop_waiting_at(Clock::SteadyTime deadline);
  // Messages that could not be queued because waiting had to end (shutdown).
  uint64_t abandoned() const { return abandoned_->value(); }

  Outbox& outbox() { return outbox_; }

 private:
  bool may_wait() const;
  void note_backpressure();

  Outbox& outbox_;
  const Clock& clock_;
  std::atomic<int64_t> give_up_at_ns_;
  Counter* backpressure_waits_;
  Counter* abandoned_;
};

}  // namespace kvmock
