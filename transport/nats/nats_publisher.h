// The one thread that moves messages from the Outbox to NATS, in order.
//
// Core mode publishes while connected and holds everything while not. JetStream mode
// makes sure the stream exists (created or updated to the configured subjects, max age
// and replicas), publishes windows of messages asynchronously, waits for every
// acknowledgement, and re-sends unacknowledged ones with their stable Nats-Msg-Id, so the
// server's duplicate window turns a retry of a stored message into a no-op: every event
// is stored exactly once. A message counts as delivered only on a positive ack; anything
// else (refusal, timeout, outage) is re-sent, in order (see `window` for the order across
// an outage).
// Messages not marked durable (load metrics) are core publishes in either mode.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/common/clock.h"
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
  // JetStream: messages in flight per round. 1 keeps the stream in order across outages:
  // with more, a connection that dies mid-window can lose messages already written to its
  // socket while nats.c replays later, still-buffered ones after the reconnect, so the
  // retried earlier ones land behind them (each still stored once).
  size_t window = 1;
  int64_t ack_timeout_ms = 3000;  // JetStream: wait for a window's acks
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
  // Messages taken from the outbox but not yet delivered (JetStream window in flight).
  size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  std::string last_error() const;

 private:
  void run();
  bool draining_past_deadline() const;
  bool ensure_stream();
  // Sends `batch` on core NATS; unsent messages go back to the outbox front.
  void send_core(std::vector<OutboundMessage>& batch);
  // Sends `batch` on JetStream until every message is acked (or the stop deadline).
  void send_jetstream(std::vector<OutboundMessage>& batch);
  // One JetStream round: publishes batch[i] for every i in `pending` (core messages at
  // once, durable ones asynchronously) and returns the durable ones awaiting an ack;
  // messages that could not be sent go to `failed`.
  std::vector<size_t> publish_round(std::vector<OutboundMessage>& batch,
                                    const std::vector<size_t>& pending,
                                    std::vector<size_t>& failed);
  // Waits for the acks of `sent` (up to ack_timeout_ms) and adds the unacknowledged ones
  // to `failed`.
  void collect_verdicts(const std::vector<OutboundMessage>& batch, const std::vector<size_t>& sent,
                        std::vector<size_t>& failed);
  void record_error(std::string message);
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* self);

  NatsClient& client_;
  Outbox& outbox_;
  const NatsPublisherOptions options_;
  const Clock& clock_;
  jsCtx* js_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<bool> stream_ready_{false};
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<size_t> in_flight_{0};
  mutable std::mutex mutex_;  // guards acked_ids_ and last_error_
  // Ids with a positive acknowledgement (stored, or a duplicate of a stored message). A
  // message counts as delivered only when its id is here; everything else is re-sent.
  std::unordered_set<std::string> acked_ids_;
  std::unordered_set<std::string> refused_ids_;  // negative acks (re-sent)
  std::condition_variable verdicts_;             // an ack or a refusal arrived
  const std::string auto_id_prefix_;             // for messages queued without an id
  uint64_t next_auto_id_ = 0;
  std::chrono::steady_clock::time_point last_flush_{};  // publisher thread only
  std::string last_error_;
};

}  // namespace kvmock
