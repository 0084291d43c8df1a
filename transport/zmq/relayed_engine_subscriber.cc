#include "transport/zmq/relayed_engine_subscriber.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <zmq_addon.hpp>

#include "transport/log/thread_name.h"
#include "transport/time/system_clock.h"
#include "transport/zmq/seq_frame.h"
#include "transport/zmq/zmq_endpoint.h"

namespace kvmock {
namespace {

constexpr int kPollMs = 50;  // stop() latency bound while idle
constexpr int kMessagesPerPoll = 256;
constexpr uint32_t kErrorsBeforeRecreate = 10;
constexpr int kBackoffBaseMs = 10;
constexpr uint32_t kBackoffMaxExponent = 8;
constexpr int kBackoffCeilingMs = 5000;
constexpr int64_t kLogIntervalMs = 1000;
constexpr int kDefaultRcvhwm = 1000;  // libzmq's own default
constexpr uint32_t kReplayFailuresBeforePause = 2;
constexpr int kReplayPauseBaseMs = 1000;
constexpr uint32_t kReplayPauseMaxExponent = 6;
constexpr int kReplayPauseCeilingMs = 60000;

enum LogKind { kLogGap = 0, kLogRestart = 1, kLogError = 2, kLogDrop = 3, kLogDisconnect = 4 };

std::span<const uint8_t> bytes(const zmq::message_t& frame) {
  return {frame.data<uint8_t>(), frame.size()};
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SystemClock::instance().steady_now().time_since_epoch())
      .count();
}

void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

std::string_view subscriber_drop_reason(SubscriberDrop reason) {
  switch (reason) {
    case SubscriberDrop::kFrameCount:
      return "frame_count";
    case SubscriberDrop::kSeqSize:
      return "seq_size";
    case SubscriberDrop::kDuplicate:
      return "duplicate";
    case SubscriberDrop::kCorruptedSeq:
      return "corrupted_seq";
    case SubscriberDrop::kCount_:
      break;
  }
  return "unknown";
}

std::string_view replay_failure_reason(ReplayFailure reason) {
  switch (reason) {
    case ReplayFailure::kTimeout:
      return "timeout";
    case ReplayFailure::kCapped:
      return "capped";
    case ReplayFailure::kEvicted:
      return "evicted";
    case ReplayFailure::kBadAnswer:
      return "bad_answer";
    case ReplayFailure::kPaused:
      return "paused";
    case ReplayFailure::kConnect:
      return "connect";
    case ReplayFailure::kCount_:
      break;
  }
  return "unknown";
}

int subscriber_backoff_ms(uint32_t consecutive_errors) {
  const uint32_t exponent =
      std::min(consecutive_errors == 0 ? 0 : consecutive_errors - 1, kBackoffMaxExponent);
  return std::min(kBackoffBaseMs << exponent, kBackoffCeilingMs);
}

int subscriber_rcvhwm(uint64_t max_buffered_bytes, int64_t max_message_bytes) {
  if (max_message_bytes <= 0) return kDefaultRcvhwm;
  const uint64_t messages = max_buffered_bytes / static_cast<uint64_t>(max_message_bytes);
  return static_cast<int>(std::clamp<uint64_t>(messages, 1, INT_MAX));
}

int replay_pause_ms(uint32_t failures_in_row) {
  if (failures_in_row < kReplayFailuresBeforePause) return 0;
  const uint32_t exponent =
      std::min(failures_in_row - kReplayFailuresBeforePause, kReplayPauseMaxExponent);
  return std::min(kReplayPauseBaseMs << exponent, kReplayPauseCeilingMs);
}

Result<std::unique_ptr<RelayedEngineSubscriber>> RelayedEngineSubscriber::start(
    zmq::context_t& context, RelayedEngineSubscriberOptions options,
    RelayedEngineStreamSink& sink) {
  if (options.endpoint.empty()) return make_error("bad_endpoint", "engine endpoint is empty");
  Result<std::string> endpoint = offset_endpoint_port(options.endpoint, options.dp_rank);
  if (!endpoint) return endpoint.error();
  Result<std::string> replay = offset_endpoint_port(options.replay_endpoint, options.dp_rank);
  if (!replay) return replay.error();
  std::unique_ptr<RelayedEngineSubscriber> subscriber(new RelayedEngineSubscriber(
      context, std::move(options), sink, std::move(*endpoint), std::move(*replay)));
  subscriber->thread_ = std::thread([s = subscriber.get()] {
    name_this_thread("kvmock-relay-" + std::to_string(s->options_.dp_rank));
    s->run();
  });
  return subscriber;
}

RelayedEngineSubscriber::RelayedEngineSubscriber(zmq::context_t& context,
                                                 RelayedEngineSubscriberOptions options,
                                                 RelayedEngineStreamSink& sink,
                                                 std::string endpoint, std::string replay_endpoint)
    : context_(context),
      options_(std::move(options)),
      sink_(sink),
      endpoint_(std::move(endpoint)),
      replay_endpoint_(std::move(replay_endpoint)),
      tracker_(options_.max_gap) {}

RelayedEngineSubscriber::~RelayedEngineSubscriber() { stop(); }

void RelayedEngineSubscriber::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_.store(true, std::memory_order_relaxed);
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RelayedEngineSubscriber::open_socket() {
  monitor_.reset();
  socket_.reset();  // closes the old socket first (linger 0)
  auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
  socket->set(zmq::sockopt::linger, 0);
  socket->set(zmq::sockopt::rcvhwm,
              subscriber_rcvhwm(options_.max_buffered_bytes, options_.max_message_bytes));
  if (options_.max_message_bytes > 0) {
    socket->set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
  }
  socket->set(zmq::sockopt::subscribe, options_.topic);
  // Disconnects are watched: a refused oversize message makes libzmq close the connection
  // for good, so it is counted, logged and answered with a new socket.
  const std::string monitor_endpoint = "inproc://kvmock-relay-monitor-" +
                                       std::to_string(reinterpret_cast<uintptr_t>(this)) + "-" +
                                       std::to_string(++monitor_generation_);
  if (zmq_socket_monitor(socket->handle(), monitor_endpoint.c_str(), ZMQ_EVENT_DISCONNECTED) == 0) {
    auto monitor = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
    monitor->set(zmq::sockopt::linger, 0);
    monitor->connect(monitor_endpoint);
    monitor_ = std::move(monitor);
  }
  socket->connect(endpoint_);
  socket_ = std::move(socket);
}

void RelayedEngineSubscriber::run() {
  while (!stopping_.load(std::memory_order_relaxed)) {
    try {
      if (!socket_) open_socket();
      if (options_.wait_for_room) options_.wait_for_room();
      poll_once();
    } catch (const zmq::error_t& e) {
      on_receive_error(e.what());
    }
  }
  monitor_.reset();
  socket_.reset();
}

void RelayedEngineSubscriber::poll_once() {
  std::array<zmq::pollitem_t, 2> items = {
      zmq::pollitem_t{socket_->handle(), 0, ZMQ_POLLIN, 0},
      zmq::pollitem_t{monitor_ ? monitor_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  zmq::poll(items.data(), monitor_ ? 2 : 1, std::chrono::milliseconds(kPollMs));
  if (monitor_ && (items[1].revents & ZMQ_POLLIN) != 0) drain_monitor();
  if ((items[0].revents & ZMQ_POLLIN) == 0) {
    if (reconnect_pending_) {
      reconnect_pending_ = false;
      monitor_.reset();
      socket_.reset();  // run() opens a new one; the seq state carries over
    }
    return;
  }
  // Drain what has arrived before polling again: under load that saves a poll system call
  // per message.
  std::vector<zmq::message_t> frames;
  for (int i = 0; i < kMessagesPerPoll && !stopping_.load(std::memory_order_relaxed); ++i) {
    if (i > 0 && options_.wait_for_room) options_.wait_for_room();
    frames.clear();
    if (!zmq::recv_multipart(*socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      break;
    }
    consecutive_errors_ = 0;
    handle_message(frames);
  }
}

void RelayedEngineSubscriber::drain_monitor() {
  std::vector<zmq::message_t> frames;
  for (int i = 0; i < kMessagesPerPoll; ++i) {
    frames.clear();
    if (!zmq::recv_multipart(*monitor_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      return;
    }
    bump(counters_.disconnects);
    log(kLogDisconnect, "lost the connection to " + endpoint_ +
                            " (the engine closed it, or sent a message over " +
                            std::to_string(options_.max_message_bytes) +
                            " bytes); reconnecting, batches sent meanwhile become a gap");
    // libzmq reconnects by itself after a connection error but not after a protocol
    // error, and a refused oversize message is one: without a new socket the relay would
    // go deaf. The socket is replaced once what it already holds has been read.
    reconnect_pending_ = true;
  }
}

void RelayedEngineSubscriber::on_receive_error(const char* what) {
  bump(counters_.receive_errors);
  ++consecutive_errors_;
  log(kLogError, "receive error on " + endpoint_ + ": " + what);
  if (consecutive_errors_ >= kErrorsBeforeRecreate) {
    // A socket that keeps failing is replaced; the seq state survives because the engine
    // behind it has not changed (a gap is then healed by replay as usual).
    try {
      socket_.reset();
    } catch (const zmq::error_t&) {
    }
    bump(counters_.socket_recreations);
    consecutive_errors_ = 0;
  }
  sleep_unless_stopped(subscriber_backoff_ms(std::max<uint32_t>(consecutive_errors_, 1)));
}

void RelayedEngineSubscriber::sleep_unless_stopped(int ms) {
  std::unique_lock lock(stop_mutex_);
  stop_cv_.wait_for(lock, std::chrono::milliseconds(ms),
                    [this] { return stopping_.load(std::memory_order_relaxed); });
}

void RelayedEngineSubscriber::handle_message(std::vector<zmq::message_t>& frames) {
  bump(counters_.messages);
  bump(counters_.frames, frames.size());
  if (frames.size() != 3) {
    bump(counters_.dropped[static_cast<size_t>(SubscriberDrop::kFrameCount)]);
    log(kLogDrop, "dropped a " + std::to_string(frames.size()) + "-frame message from " +
                      endpoint_ + " (want 3)");
    return;
  }
  const std::optional<uint64_t> seq = decode_seq_frame(bytes(frames[1]));
  if (!seq) {
    bump(counters_.dropped[static_cast<size_t>(SubscriberDrop::kSeqSize)]);
    log(kLogDrop, "dropped a message from " + endpoint_ + " with a " +
                      std::to_string(frames[1].size()) + "-byte seq frame (want 8)");
    return;
  }
  accept(*seq, bytes(frames[2]));
}

void RelayedEngineSubscriber::accept(uint64_t seq, std::span<const uint8_t> payload) {
  const uint32_t rank = options_.dp_rank;
  const uint64_t previous = tracker_.last_seq();
  const std::optional<uint64_t> held = tracker_.held_seq();
  const SequenceStep step = tracker_.next(seq);
  const std::string where = " on " + endpoint_ + " (dp rank " + std::to_string(rank) + ")";
  if (step.held_corrupted) {
    bump(counters_.dropped[static_cast<size_t>(SubscriberDrop::kCorruptedSeq)]);
    log(kLogDrop, "dropped a batch with the implausible seq " + std::to_string(held.value_or(0)) +
                      where + ": seq " + std::to_string(previous) + " was followed by " +
                      std::to_string(seq));
    held_payload_.clear();
  }
  if (step.restart) {
    // Seq counts from 0 per engine process; going back (or a jump the next batch
    // confirmed) means a new process whose cache starts empty: earlier state is stale.
    bump(counters_.restarts);
    const uint64_t first = step.deliver_held.value_or(seq);
    log(kLogRestart, "engine restart" + where + ": seq " + std::to_string(previous) + " -> " +
                         std::to_string(first));
    sink_.on_restart(rank);
  }
  if (step.deliver_held) {
    deliver(*step.deliver_held, held_payload_);
    held_payload_.clear();
  }
  // After a restart, the new run's first batches may have gone out before we saw it.
  if (step.has_gap()) heal_gap(step.heal_from, step.heal_to);
  switch (step.current) {
    case SequenceStep::Current::kDuplicate:
      bump(counters_.dropped[static_cast<size_t>(SubscriberDrop::kDuplicate)]);
      return;
    case SequenceStep::Current::kHold:
      held_payload_.assign(payload.begin(), payload.end());
      return;
    case SequenceStep::Current::kDeliver:
      deliver(seq, payload);
      return;
  }
}

void RelayedEngineSubscriber::deliver(uint64_t seq, std::span<const uint8_t> payload) {
  bump(counters_.batches);
  sink_.on_batch(options_.dp_rank, seq, payload, false);
}

void RelayedEngineSubscriber::heal_gap(uint64_t first_seq, uint64_t gap_seq) {
  bump(counters_.gaps);
  const uint64_t wanted = gap_seq - first_seq;
  uint64_t recovered = 0;
  std::string why = "no replay endpoint";
  if (!replay_endpoint_.empty()) {
    std::optional<ReplayFailure> failure;
    if (steady_ms() < replay_paused_until_ms_) {
      failure = ReplayFailure::kPaused;
    } else {
      failure = replay(first_seq, gap_seq, recovered);
    }
    if (failure && recovered < wanted) {
      bump(counters_.replay_failures[static_cast<size_t>(*failure)]);
      why = "replay " + std::string(replay_failure_reason(*failure));
    }
  }
  if (recovered < wanted) {
    bump(counters_.missing_batches, wanted - recovered);
    log(kLogGap, "lost " + std::to_string(wanted - recovered) + " of " + std::to_string(wanted) +
                     " batches before seq " + std::to_string(gap_seq) + " on " + endpoint_ +
                     " (dp rank " + std::to_string(options_.dp_rank) + "): " + why);
  }
}

std::optional<ReplayFailure> RelayedEngineSubscriber::replay(uint64_t first_seq, uint64_t gap_seq,
                                                             uint64_t& recovered) {
  bump(counters_.replays_requested);
  ReplayRequest request;
  request.endpoint = replay_endpoint_;
  request.start_seq = first_seq;
  request.stop_before_seq = gap_seq;
  request.timeout_ms = options_.replay_timeout_ms;
  request.max_batches = std::min<uint64_t>(options_.max_replay_batches, gap_seq - first_seq);
  request.max_seq_ahead = options_.max_gap;
  Result<ReplayResult> result = fetch_replay(context_, request, &stopping_);
  if (!result) {
    note_replay_outcome(true);
    return ReplayFailure::kConnect;
  }
  // Deliver in seq order, each seq once, only inside the gap.
  std::vector<ReplayedBatch>& batches = result->batches;
  std::stable_sort(batches.begin(), batches.end(),
                   [](const ReplayedBatch& a, const ReplayedBatch& b) { return a.seq < b.seq; });
  uint64_t next = first_seq;
  for (const ReplayedBatch& batch : batches) {
    if (batch.seq < next || batch.seq >= gap_seq) continue;
    if (options_.wait_for_room) options_.wait_for_room();
    next = batch.seq + 1;
    ++recovered;
    bump(counters_.replayed_batches);
    sink_.on_batch(options_.dp_rank, batch.seq, batch.payload, true);
  }
  if (result->bad_answer()) {
    note_replay_outcome(true);
    return ReplayFailure::kBadAnswer;
  }
  if (result->complete) {
    note_replay_outcome(false);
    return ReplayFailure::kEvicted;
  }
  if (result->batches.size() >= request.max_batches) {
    note_replay_outcome(false);
    return ReplayFailure::kCapped;
  }
  // A deadline with part of an answer is a slow endpoint, not a dead one.
  note_replay_outcome(result->replies == 0 && !stopping_.load(std::memory_order_relaxed));
  return ReplayFailure::kTimeout;
}

void RelayedEngineSubscriber::note_replay_outcome(bool failed) {
  if (!failed) {
    replay_failures_in_row_ = 0;
    return;
  }
  ++replay_failures_in_row_;
  const int pause = replay_pause_ms(replay_failures_in_row_);
  if (pause == 0) return;
  replay_paused_until_ms_ = steady_ms() + pause;
  log(kLogError, "replay endpoint " + replay_endpoint_ + " failed " +
                     std::to_string(replay_failures_in_row_) +
                     " times in a row: not asking it for " + std::to_string(pause) +
                     " ms (gaps meanwhile are counted as missing)");
}

void RelayedEngineSubscriber::log(int kind, const std::string& message) {
  const int64_t now = steady_ms();
  if (last_log_ms_[kind] != 0 && now - last_log_ms_[kind] < kLogIntervalMs) {
    ++suppressed_logs_[kind];
    return;
  }
  std::string line = "engine subscriber: " + message;
  if (suppressed_logs_[kind] > 0) {
    line += " (" + std::to_string(suppressed_logs_[kind]) + " similar suppressed)";
  }
  last_log_ms_[kind] = now;
  suppressed_logs_[kind] = 0;
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

}  // namespace kvmock
