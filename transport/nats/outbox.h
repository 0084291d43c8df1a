// The bounded, ordered queue between event sources and the NATS publisher thread. While
// NATS is unreachable events wait here; when it is full, sources block in
// wait_for_room() (backpressure) rather than losing events. Thread-safe: many
// producers, one consumer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/common/clock.h"
#include "transport/time/system_clock.h"

namespace kvmock {

struct OutboundMessage {
  // Shared: a source sends thousands of messages a second to the same one or two subjects,
  // and a copy of each would be an allocation per message.
  std::shared_ptr<const std::string> subject;
  std::vector<uint8_t> data;
  // Durable messages go to JetStream (acknowledged, de-duplicated by msg_id); the rest
  // (load metrics) are plain core publishes even when the event plane is JetStream.
  bool durable = false;
  std::string msg_id;  // JetStream de-duplication id (Nats-Msg-Id)
  std::chrono::steady_clock::time_point enqueued_at{};
};

class Outbox {
 public:
  // `clock` stamps enqueued_at (the age of the oldest message).
  explicit Outbox(size_t capacity, const Clock& clock = SystemClock::instance());

  // Appends unless full; never blocks. Returns false (and counts a refusal) when full.
  bool try_push(OutboundMessage message);
  // Appends, first waiting up to `timeout` for room. Returns false on timeout or close;
  // the caller decides whether that is a drop (and must count it).
  bool push(OutboundMessage message, std::chrono::milliseconds timeout);
  // Appends all of `messages` in order, waiting for room as needed (backpressure) for at
  // most `timeout` per wait. Returns how many were appended from the front; fewer than
  // all only on timeout or close, and the caller keeps the rest.
  size_t push_all(std::vector<OutboundMessage>& messages, size_t from,
                  std::chrono::milliseconds timeout);
  // Blocks while the outbox is full, up to `timeout`. Returns true when there is room.
  bool wait_for_room(std::chrono::milliseconds timeout);

  // Consumer: moves up to `max` messages into `out` (in order), waiting up to `timeout`
  // for the first one. Returns the number moved.
  size_t pop_batch(std::vector<OutboundMessage>& out, size_t max,
                   std::chrono::milliseconds timeout);
  // Consumer: puts messages that could not be sent back at the front, keeping order.
  void return_front(std::vector<OutboundMessage>& messages, size_t from);

  // Wakes every waiter; later pushes fail. Queued messages stay for a final drain.
  void close();

  bool closed() const;
  size_t size() const;
  size_t capacity() const { return capacity_; }
  // Age of the oldest queued message (0 when empty).
  double oldest_age_seconds() const;
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t backpressure_waits() const { return waits_.load(std::memory_order_relaxed); }

 private:
  const size_t capacity_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<OutboundMessage> queue_;
  bool closed_ = false;
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> waits_{0};
};

}  // namespace kvmock
