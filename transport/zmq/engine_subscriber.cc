#include "transport/zmq/engine_subscriber.h"

#include <algorithm>
#include <chrono>
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

enum LogKind { kLogGap = 0, kLogRestart = 1, kLogError = 2, kLogDrop = 3 };

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
    case SubscriberDrop::kCount_:
      break;
  }
  return "unknown";
}

int subscriber_backoff_ms(uint32_t consecutive_errors) {
  const uint32_t exponent =
      std::min(consecutive_errors == 0 ? 0 : consecutive_errors - 1, kBackoffMaxExponent);
  return std::min(kBackoffBaseMs << exponent, kBackoffCeilingMs);
}

Result<std::unique_ptr<EngineSubscriber>> EngineSubscriber::start(zmq::context_t& context,
                                                                  EngineSubscriberOptions options,
                                                                  EngineStreamSink& sink) {
  if (options.endpoint.empty()) return make_error("bad_endpoint", "engine endpoint is empty");
  Result<std::string> endpoint = offset_endpoint_port(options.endpoint, options.dp_rank);
  if (!endpoint) return endpoint.error();
  Result<std::string> replay = offset_endpoint_port(options.replay_endpoint, options.dp_rank);
  if (!replay) return replay.error();
  std::unique_ptr<EngineSubscriber> subscriber(new EngineSubscriber(
      context, std::move(options), sink, std::move(*endpoint), std::move(*replay)));
  subscriber->thread_ = std::thread([s = subscriber.get()] {
    name_this_thread("kvmock-relay-" + std::to_string(s->options_.dp_rank));
    s->run();
  });
  return subscriber;
}

EngineSubscriber::EngineSubscriber(zmq::context_t& context, EngineSubscriberOptions options,
                                   EngineStreamSink& sink, std::string endpoint,
                                   std::string replay_endpoint)
    : context_(context),
      options_(std::move(options)),
      sink_(sink),
      endpoint_(std::move(endpoint)),
      replay_endpoint_(std::move(replay_endpoint)) {}

EngineSubscriber::~EngineSubscriber() { stop(); }

void EngineSubscriber::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_.store(true, std::memory_order_relaxed);
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EngineSubscriber::open_socket() {
  socket_.reset();  // closes the old socket first (linger 0)
  auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
  socket->set(zmq::sockopt::linger, 0);
  socket->set(zmq::sockopt::rcvhwm, options_.rcvhwm);
  socket->set(zmq::sockopt::subscribe, options_.topic);
  socket->connect(endpoint_);
  socket_ = std::move(socket);
}

void EngineSubscriber::run() {
  std::vector<zmq::message_t> frames;
  while (!stopping_.load(std::memory_order_relaxed)) {
    try {
      if (!socket_) open_socket();
      if (options_.wait_for_room) options_.wait_for_room();
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(kPollMs));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      // Drain what has arrived before polling again: under load that saves a poll
      // system call per message.
      for (int i = 0; i < kMessagesPerPoll && !stopping_.load(std::memory_order_relaxed); ++i) {
        if (i > 0 && options_.wait_for_room) options_.wait_for_room();
        frames.clear();
        if (!zmq::recv_multipart(*socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          break;
        }
        consecutive_errors_ = 0;
        handle_message(frames);
      }
    } catch (const zmq::error_t& e) {
      on_receive_error(e.what());
    }
  }
  socket_.reset();
}

void EngineSubscriber::on_receive_error(const char* what) {
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

void EngineSubscriber::sleep_unless_stopped(int ms) {
  std::unique_lock lock(stop_mutex_);
  stop_cv_.wait_for(lock, std::chrono::milliseconds(ms),
                    [this] { return stopping_.load(std::memory_order_relaxed); });
}

void EngineSubscriber::handle_message(std::vector<zmq::message_t>& frames) {
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

void EngineSubscriber::accept(uint64_t seq, std::span<const uint8_t> payload) {
  const uint32_t rank = options_.dp_rank;
  if (have_seq_) {
    if (seq == last_seq_ && seq != 0) {
      bump(counters_.dropped[static_cast<size_t>(SubscriberDrop::kDuplicate)]);
      return;
    }
    if (seq <= last_seq_) {
      // Seq counts from 0 per engine process; going back means a new process whose cache
      // starts empty, so everything learnt from the old one is stale.
      bump(counters_.restarts);
      log(kLogRestart, "engine restart on " + endpoint_ + " (dp rank " + std::to_string(rank) +
                           "): seq " + std::to_string(last_seq_) + " -> " + std::to_string(seq));
      sink_.on_restart(rank);
      // The new run's first batches may have gone out before we saw it: recover them too.
      if (seq > 0) heal_gap(0, seq);
    } else if (seq > last_seq_ + 1) {
      heal_gap(last_seq_ + 1, seq);
    }
  }
  have_seq_ = true;
  last_seq_ = seq;
  bump(counters_.batches);
  sink_.on_batch(rank, seq, payload, false);
}

void EngineSubscriber::heal_gap(uint64_t first_seq, uint64_t gap_seq) {
  bump(counters_.gaps);
  const uint64_t wanted = gap_seq - first_seq;
  uint64_t recovered = 0;
  std::string why = "no replay endpoint";
  if (!replay_endpoint_.empty()) {
    bump(counters_.replays_requested);
    ReplayRequest request;
    request.endpoint = replay_endpoint_;
    request.start_seq = first_seq;
    request.stop_before_seq = gap_seq;
    request.timeout_ms = options_.replay_timeout_ms;
    request.max_batches = std::min<uint64_t>(options_.max_replay_batches, wanted);
    Result<ReplayResult> replay = fetch_replay(context_, request, &stopping_);
    if (!replay) {
      why = replay.error().message;
    } else {
      why = replay->complete ? "replay buffer no longer holds them" : "replay timed out or capped";
      // Deliver in seq order, each seq once, only inside the gap.
      std::vector<ReplayedBatch>& batches = replay->batches;
      std::stable_sort(
          batches.begin(), batches.end(),
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
    }
  }
  if (recovered < wanted) {
    bump(counters_.missing_batches, wanted - recovered);
    log(kLogGap, "lost " + std::to_string(wanted - recovered) + " of " + std::to_string(wanted) +
                     " batches before seq " + std::to_string(gap_seq) + " on " + endpoint_ +
                     " (dp rank " + std::to_string(options_.dp_rank) + "): " + why);
  }
}

void EngineSubscriber::log(int kind, const std::string& message) {
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
