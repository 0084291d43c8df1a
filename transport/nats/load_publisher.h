// Publishes ActiveLoad on `namespace.{ns}.kv_metrics` (msgpack in the event-plane envelope,
// one publisher id for the process): changes debounced, the last value of every rank
// repeated as a heartbeat (LoadDebouncer decides when).
//
// Time is the caller's monotonic milliseconds: update() records a sample, tick() queues
// what is due and says when it next has work. The pipeline's tick thread calls tick(); a
// test calls it directly with a manual clock.
//
// Thread-safe: update() from every producer, tick() from one timer.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/common/clock.h"
#include "core/pipeline/load_debouncer.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/outbox_writer.h"

namespace kvmock {

struct LoadPublisherOptions {
  std::string ns = "dynamo";
  uint64_t debounce_ms = kDefaultLoadDebounceMs;
  uint64_t heartbeat_ms = kDefaultLoadHeartbeatMs;
};

class LoadPublisher {
 public:
  // `clock` stamps the envelopes' published_at.
  LoadPublisher(OutboxWriter& writer, const LoadPublisherOptions& options, MetricsRegistry& metrics,
                const Clock& clock);

  // Records a sample. True when the timer must look earlier than it planned to: the
  // change is due before the time tick() last returned. With a thousand engines the loads
  // change thousands of times a second, and a wake-up per change would cost a fifth of a
  // core.
  bool update(const ActiveLoad& load, uint64_t now_ms);
  // Publishes nothing more of `worker` (a crashed worker), heartbeats included.
  void forget(WorkerId worker);
  // Queues every load due at `now_ms`; returns when tick() next has work (nullopt: not
  // before the next update()).
  std::optional<uint64_t> tick(uint64_t now_ms);

 private:
  // Takes the loads due at `now_ms` from the debouncer (under mutex_); returns tick()'s
  // answer.
  std::optional<uint64_t> collect_due(uint64_t now_ms, std::vector<OutboundMessage>& due);
  OutboundMessage encode(const ActiveLoad& load);  // with mutex_ held

  OutboxWriter& writer_;
  const uint64_t debounce_ms_;
  const std::shared_ptr<const std::string> subject_;
  const Clock& clock_;
  Counter* loads_queued_;

  std::mutex mutex_;
  LoadDebouncer debouncer_;
  // When the timer next looks at the debouncer (UINT64_MAX: not before a change).
  uint64_t wake_ms_ = 0;
  // debouncer_.counters().updates when the timer last looked.
  uint64_t updates_seen_ = 0;
  const uint64_t publisher_id_;
  uint64_t sequence_ = 0;
};

}  // namespace kvmock
