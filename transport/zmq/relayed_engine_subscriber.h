// Follows one real engine's KV-event stream: one SUB socket per (relay endpoint, dp rank),
// on its own thread. Validates the 3-frame envelope, tracks the per-rank sequence number
// (core/pipeline/engine_sequence_tracker.h decides duplicates, gaps, restarts and
// corrupted seqs), heals gaps from the engine's replay socket and detects engine restarts.
// The msgpack payload is handed on as bytes; decoding is the caller's job (core/events).
//
// Memory is bounded in bytes: a message over max_message_bytes is refused by libzmq (which
// drops the connection; the subscriber then opens a new socket and the lost batches become
// a gap), and at most max_buffered_bytes / max_message_bytes messages wait in the socket while the
// downstream is full (the engine's own send queue and replay buffer carry the rest).
//
// A replay endpoint that fails (no answer in time, a garbage answer, no connection)
// twice in a row is not asked again for a while (1 s, doubling to 60 s); gaps in that
// time are counted as missing at once, so the live stream never waits on it.
//
// Wire format and replay protocol: docs/wire-formats.md#engine-zmq-stream and
// #engine-replay-protocol.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "core/common/result.h"
#include "core/pipeline/engine_sequence_tracker.h"
#include "transport/zmq/replay_client.h"

namespace kvmock {

// Receives what a subscriber accepts, on the subscriber's thread, in seq order.
// Implementations must not throw and should return quickly (post to a strand or a queue);
// a slow sink stalls the ZMQ receive for that rank, which is the intended backpressure.
struct RelayedEngineStreamSink {
  virtual ~RelayedEngineStreamSink() = default;
  // One batch (the msgpack EventBatch bytes, valid only during the call). `replayed` is
  // true for batches recovered from the replay socket after a gap.
  virtual void on_batch(uint32_t dp_rank, uint64_t seq, std::span<const uint8_t> payload,
                        bool replayed) = 0;
  // The engine restarted (its seq went back, or repeated 0): state derived from earlier
  // batches is stale. Called before the first batch of the new run; if that run's first
  // seen seq is above 0, its earlier batches are recovered from replay like any gap.
  virtual void on_restart(uint32_t dp_rank) = 0;
};

// Why a live message was not delivered. Each value's name is a metric label.
enum class SubscriberDrop : uint8_t {
  kFrameCount,    // not exactly 3 frames
  kSeqSize,       // frame 2 is not 8 bytes
  kDuplicate,     // seq == last seq (already delivered)
  kCorruptedSeq,  // an implausible seq jump the next seq did not confirm (dropped)
  kCount_,
};
inline constexpr size_t kSubscriberDropReasons = static_cast<size_t>(SubscriberDrop::kCount_);
std::string_view subscriber_drop_reason(SubscriberDrop reason);  // "frame_count", ...

// Why a gap was not fully healed from the replay socket. Each value's name is a metric label.
enum class ReplayFailure : uint8_t {
  kTimeout,    // the answer did not end before replay_timeout_ms (or never came)
  kCapped,     // more batches than max_replay_batches were owed
  kEvicted,    // the answer ended, but the engine's buffer no longer held them
  kBadAnswer,  // undecodable reply frames or a seq that cannot be right
  kPaused,     // not asked: the endpoint failed repeatedly and is being left alone
  kConnect,    // the replay socket could not be set up
  kCount_,
};
inline constexpr size_t kReplayFailureReasons = static_cast<size_t>(ReplayFailure::kCount_);
std::string_view replay_failure_reason(ReplayFailure reason);  // "timeout", ...

// Monotonic counters, written by the subscriber thread, readable from any thread.
struct RelayedEngineSubscriberCounters {
  std::atomic<uint64_t> messages{0};  // multipart messages received on the SUB socket
  std::atomic<uint64_t> frames{0};    // ZMQ frames received on the SUB socket
  std::atomic<uint64_t> batches{0};   // live batches delivered to the sink
  std::array<std::atomic<uint64_t>, kSubscriberDropReasons> dropped{};
  std::atomic<uint64_t> gaps{0};  // seq jumps forward, incl. a restart first seen above 0
  std::atomic<uint64_t> replays_requested{0};
  std::atomic<uint64_t> replayed_batches{0};  // recovered batches delivered to the sink
  std::atomic<uint64_t> missing_batches{0};   // seqs skipped and not recovered
  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> receive_errors{0};
  std::atomic<uint64_t> socket_recreations{0};
  // Connections to the engine lost: the engine went away, or it sent a message over
  // max_message_bytes (libzmq refuses it by closing the connection).
  std::atomic<uint64_t> disconnects{0};
  std::array<std::atomic<uint64_t>, kReplayFailureReasons> replay_failures{};

  uint64_t dropped_for(SubscriberDrop reason) const {
    return dropped[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
  uint64_t replay_failures_for(ReplayFailure reason) const {
    return replay_failures[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
};

struct RelayedEngineSubscriberOptions {
  std::string endpoint;         // rank 0's PUB endpoint, e.g. "tcp://10.0.0.7:5557"
  std::string replay_endpoint;  // rank 0's replay ROUTER; empty disables gap healing
  uint32_t dp_rank = 0;         // both endpoints are offset by this rank (port + rank)
  std::string topic;            // SUB prefix filter; empty receives every topic
  // Larger messages are refused by libzmq (ZMQ_MAXMSGSIZE); 0 = no limit.
  int64_t max_message_bytes = 4 << 20;
  // Bound on the bytes waiting in the socket: rcvhwm = max_buffered_bytes /
  // max_message_bytes messages (subscriber_rcvhwm).
  uint64_t max_buffered_bytes = 256 << 20;
  // Largest seq jump taken as a gap (see EngineSequenceTracker); also the bound on how far
  // past the gap a replay answer's seq may be.
  uint64_t max_gap = 1000000;
  int replay_timeout_ms = 2000;       // bound on one replay exchange
  size_t max_replay_batches = 10000;  // bound on the batches recovered per gap
  // Called before each receive; may block while the downstream outbox is full. It must
  // return once the owner begins shutting down, or stop() waits for it.
  std::function<void()> wait_for_room;
  // Gap, restart and error reports (rate-limited to one per second per kind). Empty:
  // written to stderr.
  std::function<void(std::string_view)> log;
};

// Pure backoff schedule for consecutive receive errors: 10 ms doubling per error with the
// exponent capped at 8, never above 5000 ms. `consecutive_errors` counts from 1.
int subscriber_backoff_ms(uint32_t consecutive_errors);

// The SUB socket's high-water mark in messages for a byte budget: max_buffered_bytes /
// max_message_bytes, at least 1 and at most INT_MAX. With no message limit (0) the
// budget cannot be turned into a count, and the libzmq default (1000) is used.
int subscriber_rcvhwm(uint64_t max_buffered_bytes, int64_t max_message_bytes);

// Pause before asking a failing replay endpoint again, after `failures_in_row` failed
// exchanges: 0 below 2, then 1000 ms doubling per further failure, never above 60000 ms.
int replay_pause_ms(uint32_t failures_in_row);

class RelayedEngineSubscriber {
 public:
  // Validates and offsets the endpoints (errors: "bad_endpoint", "bad_port") and starts
  // the receive thread, which connects at once (engines bind; ZMQ retries the connection
  // in the background until the engine is up). `context` and `sink` must outlive the
  // subscriber.
  static Result<std::unique_ptr<RelayedEngineSubscriber>> start(
      zmq::context_t& context, RelayedEngineSubscriberOptions options,
      RelayedEngineStreamSink& sink);
  ~RelayedEngineSubscriber();  // stop()s
  RelayedEngineSubscriber(const RelayedEngineSubscriber&) = delete;
  RelayedEngineSubscriber& operator=(const RelayedEngineSubscriber&) = delete;

  // Stops and joins the thread; returns within about 50 ms plus any sink or
  // wait_for_room call in progress (an in-flight replay is abandoned). Idempotent.
  void stop();

  const RelayedEngineSubscriberCounters& counters() const { return counters_; }
  const std::string& endpoint() const { return endpoint_; }  // after the rank offset
  const std::string& replay_endpoint() const { return replay_endpoint_; }

 private:
  RelayedEngineSubscriber(zmq::context_t& context, RelayedEngineSubscriberOptions options,
                          RelayedEngineStreamSink& sink, std::string endpoint,
                          std::string replay_endpoint);

  void run();
  void open_socket();
  void poll_once();
  void drain_monitor();
  void handle_message(std::vector<zmq::message_t>& frames);
  void accept(uint64_t seq, std::span<const uint8_t> payload);
  void deliver(uint64_t seq, std::span<const uint8_t> payload);
  // Recovers [first_seq, gap_seq) from the replay socket and delivers it in order; counts
  // what it could not recover as missing.
  void heal_gap(uint64_t first_seq, uint64_t gap_seq);
  // Asks the replay socket for [first_seq, gap_seq) and delivers what it returns; the
  // failure reason when it fell short.
  std::optional<ReplayFailure> replay(uint64_t first_seq, uint64_t gap_seq, uint64_t& recovered);
  void note_replay_outcome(bool failed);
  void on_receive_error(const char* what);
  void log(int kind, const std::string& message);
  void sleep_unless_stopped(int ms);

  zmq::context_t& context_;
  const RelayedEngineSubscriberOptions options_;
  RelayedEngineStreamSink& sink_;
  const std::string endpoint_;
  const std::string replay_endpoint_;
  RelayedEngineSubscriberCounters counters_;

  // Receive-thread state.
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;  // PAIR receiving the SUB's disconnect events
  uint64_t monitor_generation_ = 0;         // makes each monitor's inproc endpoint unique
  bool reconnect_pending_ = false;          // replace the socket once it is drained
  EngineSequenceTracker tracker_;
  std::vector<uint8_t> held_payload_;  // the batch the tracker holds, if any
  uint32_t consecutive_errors_ = 0;
  uint32_t replay_failures_in_row_ = 0;
  int64_t replay_paused_until_ms_ = 0;    // steady clock
  std::array<int64_t, 5> last_log_ms_{};  // per log kind, steady clock, for rate limiting
  std::array<uint64_t, 5> suppressed_logs_{};

  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;  // with stop_cv_: wakes a backoff sleep on stop()
  std::condition_variable stop_cv_;
  std::thread thread_;  // last: starts after every member above is initialised
};

}  // namespace kvmock
