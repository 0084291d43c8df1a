// Publishes KV-event batches in vLLM's own ZMQ wire format, so routers that read engines
// directly (llm-d, AIBrix, SGLang router, Dynamo's relay, kvmock's own subscriber) can
// follow a mock worker (docs/wire-formats.md#engine-zmq-stream and #engine-replay-protocol):
//   live:   PUB, [topic, seq (u64 BE, from 0, +1 per batch), payload]; bound, or connected
//           to one central SUB (llm-d's topology: every pod dials the scheduler)
//   replay: ROUTER; a request [identity, "", start_seq] (DEALER or REQ) or
//           [identity, start_seq] gets every buffered batch with seq >= start_seq as
//           [identity, "", topic, seq, payload] (or without the topic frame, the layout
//           before vLLM #45177 and SGLang's), then the end marker with seq ff×8 and an
//           empty payload.
//
// Event faults (docs/faults.md#event-faults), per batch, from set_event_faults(): a batch
// dropped is not sent on the PUB (subscribers see a gap in seq) but is kept for replay, so
// a replay request from the gap returns it; a duplicate is sent twice, the same frames; a
// delay holds each batch that long before it is sent, in order.
//
// Thread model: publish() may be called from any thread. ZMQ sockets are not thread-safe,
// so both sockets live on one internal thread fed by a mutex-guarded queue and woken by an
// eventfd that zmq_poll watches with the ROUTER. A single-caller contract was the
// alternative, but the callers are worker strands on a shared Asio pool, and a queue hop
// costs less than proving every call site runs on one thread.
//
// Unlike vLLM, replies are never silently lost to a slow reader: the ROUTER is
// ROUTER_MANDATORY with a large SNDHWM, and when a reply would block, the rest of that
// client's replies stay queued and resume on the next loop turn. Live batches are sent
// first on every turn, so one slow replay client never stalls live publishing. A client's
// queue is dropped (and counted) only when it disconnects.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "core/common/result.h"
#include "core/faults/event_faults.h"

namespace kvmock {

struct VllmZmqEventPublisherOptions {
  std::string bind_host = "*";  // e.g. "*", "127.0.0.1"
  uint16_t port = 0;            // 0: ephemeral, see endpoint(); unused with `connect`
  // Non-empty ("tcp://host:port"): the PUB connects there instead of binding. ZMQ then
  // redials by itself whenever that peer goes away, and seq keeps counting across it.
  std::string connect;
  std::optional<uint16_t> replay_port;  // nullopt: no replay socket; 0: ephemeral
  std::string topic;
  size_t buffer_steps = 10000;     // replay ring size, in batches
  bool replay_topic_frame = true;  // reply layout of vLLM >= #45177
  int sndhwm = 100000;             // PUB; ZMQ drops to subscribers beyond it
  int replay_sndhwm = 100000;      // ROUTER; beyond it replies wait in our queue
  size_t max_queue = 100000;       // publish() calls not yet sent by the thread
};

// Monotonic counters, written by the publisher thread (and publish()), readable anywhere.
struct VllmZmqEventPublisherCounters {
  std::atomic<uint64_t> published{0};         // batches sent on the PUB socket
  std::atomic<uint64_t> queue_full_drops{0};  // publish() refused: the queue was full
  std::atomic<uint64_t> replay_requests{0};
  std::atomic<uint64_t> replay_bad_requests{0};  // wrong shape: ignored
  std::atomic<uint64_t> replay_batches_sent{0};
  std::atomic<uint64_t> replay_ends_sent{0};          // end markers: one per completed request
  std::atomic<uint64_t> replay_send_blocked{0};       // EAGAIN: replies kept queued for later
  std::atomic<uint64_t> replay_clients_dropped{0};    // disconnected before their replies went
  std::atomic<uint64_t> replay_requests_rejected{0};  // too many clients with queued replies
  // Event faults, in batches: not sent live (kept for replay), sent twice, held back.
  std::atomic<uint64_t> fault_drops{0};
  std::atomic<uint64_t> fault_duplicates{0};
  std::atomic<uint64_t> fault_delays{0};
};

class VllmZmqEventPublisher {
 public:
  // Binds tcp://{bind_host}:{port} (PUB) - or connects it to `connect` - and, if configured,
  // binds tcp://{bind_host}:{replay_port} (ROUTER), then starts the thread. Errors: "bind"
  // (address in use, bad host), "connect" (malformed endpoint; an unreachable peer is not an
  // error, ZMQ keeps trying) and "bad_option". `context` must outlive the publisher.
  static Result<std::unique_ptr<VllmZmqEventPublisher>> start(zmq::context_t& context,
                                                              VllmZmqEventPublisherOptions options);
  ~VllmZmqEventPublisher();  // stop()s
  VllmZmqEventPublisher(const VllmZmqEventPublisher&) = delete;
  VllmZmqEventPublisher& operator=(const VllmZmqEventPublisher&) = delete;

  // Queues one msgpack EventBatch and returns the seq it will carry. Thread-safe and
  // non-blocking. When max_queue batches are already waiting, the batch is dropped with
  // Error "queue_full"; its seq is still consumed so subscribers see the loss as a gap.
  Result<uint64_t> publish(std::vector<uint8_t> payload);

  // The event faults of the batches published from now on. A batch's fate is
  // draw_event_fate(faults, worker, dp_rank, seq + 1): its number from 1, as an event id.
  // Thread-safe.
  void set_event_faults(const EventFaults& faults, uint64_t worker, uint32_t dp_rank);

  // Sends every batch already queued, then closes the sockets; queued replay replies are
  // abandoned. Returns within ~100 ms. Idempotent; publish() afterwards is "stopped".
  void stop();

  // The bound addresses (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:40123", or for a
  // connecting PUB the endpoint it dials (there is no local address worth reporting); the
  // replay one is empty without a replay socket.
  const std::string& endpoint() const { return endpoint_; }
  bool connects() const { return !options_.connect.empty(); }
  const std::string& replay_endpoint() const { return replay_endpoint_; }
  const VllmZmqEventPublisherCounters& counters() const { return counters_; }

 private:
  struct Batch {
    uint64_t seq;
    std::vector<uint8_t> payload;
    EventFate fate = EventFate::kSend;
    std::chrono::steady_clock::time_point due{};  // not sent live before (event_delay_ms)
  };
  struct PendingReplay;  // one client's unsent replies, see .cc

  VllmZmqEventPublisher(zmq::context_t& context, VllmZmqEventPublisherOptions options);
  Result<bool> open_sockets();
  void run();
  // Sends the batches from the front that are due (all of them with `everything`); the
  // rest wait, in order.
  void send_live(std::deque<Batch>& batches, bool everything);
  void read_requests();
  // Sends queued replies without blocking; returns true if some client is blocked.
  bool send_replies();
  void wake();

  zmq::context_t& context_;
  const VllmZmqEventPublisherOptions options_;
  VllmZmqEventPublisherCounters counters_;
  std::string endpoint_;
  std::string replay_endpoint_;
  int wake_fd_ = -1;  // eventfd: publish()/stop() → thread

  std::mutex mutex_;  // guards queue_, next_seq_, stopping_, the event faults
  std::deque<Batch> queue_;
  uint64_t next_seq_ = 0;
  bool stopping_ = false;
  EventFaults event_faults_;
  uint64_t fault_worker_ = 0;
  uint32_t fault_rank_ = 0;

  // Thread-owned.
  std::unique_ptr<zmq::socket_t> pub_;
  std::unique_ptr<zmq::socket_t> router_;
  std::deque<std::shared_ptr<const Batch>> ring_;  // the last buffer_steps batches sent
  std::vector<std::unique_ptr<PendingReplay>> pending_;

  std::thread thread_;
};

}  // namespace kvmock
