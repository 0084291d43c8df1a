#include "transport/nats/load_publisher.h"

#include <algorithm>

#include "core/events/active_load_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/subjects.h"
#include "transport/nats/event_plane_encoder.h"

namespace kvmock {
namespace {

constexpr const char* kMetricsTopic = "kv_metrics";

}  // namespace

LoadPublisher::LoadPublisher(OutboxWriter& writer, const LoadPublisherOptions& options,
                             MetricsRegistry& metrics, const Clock& clock)
    : writer_(writer),
      debounce_ms_(options.debounce_ms),
      subject_(std::make_shared<const std::string>(kv_metrics_subject(options.ns))),
      clock_(clock),
      loads_queued_(&metrics.counter("kvmock_load_metrics_queued_total",
                                     "ActiveLoad messages queued (changes and heartbeats).")),
      debouncer_(options.debounce_ms, options.heartbeat_ms),
      publisher_id_(random_publisher_id()) {}

bool LoadPublisher::update(const ActiveLoad& load, uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  debouncer_.update(load, now_ms);
  // A change is due within debounce_ms; a timer already set to look by then sees it.
  const uint64_t due = now_ms + debounce_ms_;
  if (due >= wake_ms_) return false;
  wake_ms_ = due;
  return true;
}

void LoadPublisher::forget(WorkerId worker) {
  std::lock_guard lock(mutex_);
  debouncer_.forget(worker);
}

std::optional<uint64_t> LoadPublisher::tick(uint64_t now_ms) {
  std::vector<OutboundMessage> due;
  const std::optional<uint64_t> next = collect_due(now_ms, due);
  // Queued outside the lock: a full outbox makes this wait, and update() (called by every
  // engine) must not wait with it.
  if (!due.empty()) loads_queued_->inc(writer_.push_all(due));
  return next;
}

std::optional<uint64_t> LoadPublisher::collect_due(uint64_t now_ms,
                                                   std::vector<OutboundMessage>& due) {
  std::lock_guard lock(mutex_);
  for (const ActiveLoad& load : debouncer_.poll(now_ms)) due.push_back(encode(load));
  uint64_t wake = debouncer_.next_deadline_ms().value_or(UINT64_MAX);
  // While loads keep changing, look again one debounce period on without being woken. A
  // load that flaps between two values (a relay's block count at capacity: store, evict,
  // store) cancels and re-arms its change on every flap, and each re-arm after a cancel
  // would otherwise wake the timer: thousands of wake-ups a second.
  const uint64_t updates = debouncer_.counters().updates;
  if (updates != updates_seen_) {
    wake = std::min(wake, now_ms + std::max<uint64_t>(1, debounce_ms_));
    updates_seen_ = updates;
  }
  wake_ms_ = wake;
  if (wake == UINT64_MAX) return std::nullopt;
  return wake;
}

OutboundMessage LoadPublisher::encode(const ActiveLoad& load) {
  EventEnvelope envelope;
  envelope.publisher_id = publisher_id_;
  envelope.sequence = sequence_++;
  envelope.published_at = clock_.unix_ms();
  envelope.topic = kMetricsTopic;
  encode_active_load_msgpack(load, envelope.payload);
  OutboundMessage message;
  message.subject = subject_;
  encode_event_envelope_msgpack(envelope, message.data);
  return message;
}

}  // namespace kvmock
