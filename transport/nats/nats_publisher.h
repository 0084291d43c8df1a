// The one thread that moves messages from the Outbox to NATS, in order.
//
// Core mode publishes while connected and holds everything while not. JetStream mode
// makes sure the stream exists (created or updated to the configured subjects, max age
// and replicas) and keeps up to `window` messages in flight on a connection of its own,
// each with a stable Nats-Msg-Id, so the server's duplicate window turns a re-send of a
// stored message into a no-op: every event is stored exactly once. A message counts as
// delivered only on a positive acknowledgement. Anything else (a refusal, no answer within
// ack_timeout_ms, a lost connection) drops that connection and re-sends, in order, from
// the first message not stored, on a new one (JetStreamWindow says why that keeps the
// stream in outbox order).
// Messages not marked durable (load metrics) are core publishes in either mode.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/common/clock.h"
#include "transport/nats/jetstream_window.h"
#include "transport/nats/nats_client.h"
#include "transport/nats/outbox.h"
#include "transport/time/system_clock.h"

namespace kvmock {

struct JetStreamOptions {
  std::string stream;                 // e.g. namespace-dynamo-component-backend-kv-events
  std::vector<std::string> subjects;  // e.g. {stream + ".*"}
  int64_t max_age_s = 3600;
  int replicas = 1;
};

struct NatsPublisherOptions {
  bool jetstream = false;
  JetStreamOptions stream;
  // JetStream: most messages in flight (sent, not yet acknowledged). The publisher starts
  // each connection at one and opens up as the server stores (JetStreamWindow).
  size_t window = 4096;
  // JetStream: a message unacknowledged this long means the connection is in trouble.
  int64_t ack_timeout_ms = 3000;
};

class NatsPublisher {
 public:
  // `clock` times the stop deadline and the flush interval.
  NatsPublisher(NatsClient& client, Outbox& outbox, NatsPublisherOptions options,
                const Clock& clock = SystemClock::instance());
  ~NatsPublisher();
  NatsPublisher(const NatsPublisher&) = delete;
  NatsPublisher& operator=(const NatsPublisher&) = delete;

  void start();
  // Stops taking new work, tries to send what is queued until `deadline`, then joins.
  // Returns the number of messages still unsent (0 means everything was delivered).
  size_t stop(std::chrono::steady_clock::time_point deadline);

  // True once JetStream mode has its stream (always true in core mode).
  bool stream_ready() const { return stream_ready_.load(std::memory_order_acquire); }

  uint64_t published() const { return published_.load(std::memory_order_relaxed); }
  uint64_t acked() const { return acked_.load(std::memory_order_relaxed); }
  uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  // Messages taken from the outbox but not yet stored (the JetStream window).
  size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // JetStream: the most messages sent and awaiting acknowledgement at once.
  size_t peak_in_flight() const { return peak_in_flight_.load(std::memory_order_relaxed); }
  std::string last_error() const;

 private:
  void run();
  void run_core();
  void run_jetstream();
  bool draining_past_deadline() const;
  // Sends `batch` on core NATS; unsent messages go back to the outbox front.
  void send_core(std::vector<OutboundMessage>& batch);
  // JetStream: a connection of our own with its context and the stream, made on demand.
  bool connect_durable();
  void drop_durable();
  bool ensure_stream();
  // Moves outbox messages into the window and sends what the window allows.
  enum class SendResult : uint8_t {
    kSent,         // everything the window allows went out
    kCoreBlocked,  // a core message (load metric) waits for the shared connection
    kTrouble,      // a JetStream publish failed: the connection is in trouble
  };
  SendResult send_window();
  // Moves up to kJetStreamPull outbox messages into the window, waiting up to `wait` for
  // the first. Returns false when none came.
  bool pull_into_window(std::chrono::milliseconds wait);
  // After trouble: drops the connection and rewinds the window.
  void start_over();
  // True when a message was refused or went unacknowledged for too long.
  bool window_in_trouble();
  void record_error(std::string message);
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* self);

  NatsClient& client_;
  Outbox& outbox_;
  const NatsPublisherOptions options_;
  const Clock& clock_;
  JetStreamWindow window_;
  std::unique_ptr<NatsClient> durable_;  // JetStream: the publishing connection
  jsCtx* js_ = nullptr;                  // its context
  // The context whose acknowledgements count; those of an abandoned one are ignored.
  std::atomic<jsCtx*> live_js_{nullptr};
  int connect_failures_ = 0;             // publisher thread only
  std::vector<OutboundMessage> pulled_;  // publisher thread only: pull_into_window's buffer
  std::mutex wake_mutex_;
  std::condition_variable verdict_arrived_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<bool> stream_ready_{false};
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<size_t> in_flight_{0};
  std::atomic<size_t> peak_in_flight_{0};
  mutable std::mutex mutex_;          // guards last_error_
  const std::string auto_id_prefix_;  // for messages queued without an id
  uint64_t next_auto_id_ = 0;
  std::chrono::steady_clock::time_point last_flush_{};  // publisher thread only
  std::string last_error_;
};

}  // namespace kvmock
