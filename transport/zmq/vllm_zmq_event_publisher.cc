#include "transport/zmq/vllm_zmq_event_publisher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <zmq_addon.hpp>

#include "transport/log/thread_name.h"
#include "transport/zmq/seq_frame.h"
#include "transport/zmq/zmq_endpoint.h"

namespace kvmock {
namespace {

constexpr int kIdlePollMs = 100;   // bounds stop() latency; publish() wakes the thread anyway
constexpr int kBlockedPollMs = 1;  // retry interval while a replay client's pipe is full
constexpr size_t kRequestsPerTurn = 100;
constexpr size_t kRepliesPerTurn = 1000;  // live batches get a turn at least this often
constexpr size_t kMaxReplayClients = 64;  // clients with queued replies at once
constexpr int kPubLingerMs = 100;         // lets the last live batches leave on shutdown
// A connecting PUB redials a lost SUB after 100 ms, backing off to 2 s while it stays
// away: a restarted scheduler is picked up quickly, a long-gone one is not hammered.
constexpr int kReconnectIvlMs = 100;
constexpr int kReconnectIvlMaxMs = 2000;
// ZMTP heartbeats notice a peer that vanished without closing TCP (a pod deleted, a node
// lost), which would otherwise leave the PUB writing into a dead connection until the
// kernel gives up, minutes later, and so delay the redial.
constexpr int kHeartbeatIvlMs = 2000;
constexpr int kHeartbeatTimeoutMs = 6000;

void bump(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

// One client's replies not yet handed to ZMQ, in order. A null batch is the end marker
// of one request; several requests from the same identity queue up behind each other.
struct VllmZmqEventPublisher::PendingReplay {
  std::string identity;
  std::deque<std::shared_ptr<const Batch>> items;
};

Result<std::unique_ptr<VllmZmqEventPublisher>> VllmZmqEventPublisher::start(
    zmq::context_t& context, VllmZmqEventPublisherOptions options) {
  if (options.max_queue == 0 || options.sndhwm < 0 || options.replay_sndhwm < 0) {
    return make_error("bad_option", "max_queue must be > 0 and high-water marks >= 0");
  }
  std::unique_ptr<VllmZmqEventPublisher> publisher(
      new VllmZmqEventPublisher(context, std::move(options)));
  Result<bool> bound = publisher->open_sockets();
  if (!bound) return bound.error();
  publisher->thread_ = std::thread([p = publisher.get()] {
    name_this_thread("kvmock-zmq-out");
    p->run();
  });
  return publisher;
}

VllmZmqEventPublisher::VllmZmqEventPublisher(zmq::context_t& context,
                                             VllmZmqEventPublisherOptions options)
    : context_(context), options_(std::move(options)) {}

VllmZmqEventPublisher::~VllmZmqEventPublisher() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Result<bool> VllmZmqEventPublisher::open_sockets() {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return make_error("bind", std::string("eventfd: ") + std::strerror(errno));
  const std::string prefix = "tcp://" + options_.bind_host + ":";
  std::string where = prefix + std::to_string(options_.port);
  bool connecting = false;  // which call failed, for the error's reason
  try {
    pub_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pub);
    pub_->set(zmq::sockopt::linger, kPubLingerMs);
    pub_->set(zmq::sockopt::sndhwm, options_.sndhwm);
    if (!options_.connect.empty()) {
      where = options_.connect;
      pub_->set(zmq::sockopt::reconnect_ivl, kReconnectIvlMs);
      pub_->set(zmq::sockopt::reconnect_ivl_max, kReconnectIvlMaxMs);
      pub_->set(zmq::sockopt::heartbeat_ivl, kHeartbeatIvlMs);
      pub_->set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
      connecting = true;
      pub_->connect(where);
      connecting = false;
      endpoint_ = options_.connect;
    } else {
      pub_->bind(where);
      endpoint_ = last_endpoint(*pub_);
    }
    if (options_.replay_port) {
      where = prefix + std::to_string(*options_.replay_port);
      router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
      router_->set(zmq::sockopt::linger, 0);
      router_->set(zmq::sockopt::sndhwm, options_.replay_sndhwm);
      router_->set(zmq::sockopt::router_mandatory, true);
      router_->bind(where);
      replay_endpoint_ = last_endpoint(*router_);
    }
  } catch (const zmq::error_t& e) {
    router_.reset();
    pub_.reset();
    if (connecting) return make_error("connect", "cannot connect to " + where + ": " + e.what());
    return make_error("bind", "cannot bind " + where + ": " + e.what());
  }
  return true;
}

Result<uint64_t> VllmZmqEventPublisher::publish(std::vector<uint8_t> payload) {
  bool was_empty = false;
  uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return make_error("stopped", "publisher is stopped");
    seq = next_seq_++;
    if (queue_.size() >= options_.max_queue) {
      bump(counters_.queue_full_drops);
      return make_error("queue_full",
                        "publisher queue full; batch " + std::to_string(seq) + " dropped");
    }
    was_empty = queue_.empty();
    Batch batch{seq, std::move(payload)};
    if (event_faults_.any()) {
      batch.fate = draw_event_fate(event_faults_, fault_worker_, fault_rank_, seq + 1);
      if (event_faults_.delay_ms > 0) {
        batch.due = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double, std::milli>(event_faults_.delay_ms));
        bump(counters_.fault_delays);
      }
    }
    queue_.push_back(std::move(batch));
  }
  // The thread empties the queue in one swap, so only the first batch after a swap needs
  // to wake it.
  if (was_empty) wake();
  return seq;
}

void VllmZmqEventPublisher::set_event_faults(const EventFaults& faults, uint64_t worker,
                                             uint32_t dp_rank) {
  std::lock_guard lock(mutex_);
  event_faults_ = faults;
  fault_worker_ = worker;
  fault_rank_ = dp_rank;
}

void VllmZmqEventPublisher::wake() {
  const uint64_t one = 1;
  // Failure means the counter is already non-zero (EAGAIN): the thread is awake anyway.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void VllmZmqEventPublisher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    wake();
    thread_.join();
  }
}

void VllmZmqEventPublisher::run() {
  std::deque<Batch> batches;  // taken from queue_; those held by a delay stay, in order
  int timeout_ms = kIdlePollMs;
  for (;;) {
    bool stopping = false;
    {
      std::lock_guard lock(mutex_);
      if (batches.empty()) {
        batches.swap(queue_);
      } else {
        std::move(queue_.begin(), queue_.end(), std::back_inserter(batches));
        queue_.clear();
      }
      stopping = stopping_;
    }
    // Stopping sends what a delay holds at once, as stop() promises.
    send_live(batches, /*everything=*/stopping);
    if (stopping) break;
    if (!batches.empty()) {
      // Wake when the first held batch is due (rounded up, so it is due then).
      const auto until = batches.front().due - std::chrono::steady_clock::now();
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, timeout_ms));
    }

    std::array<zmq::pollitem_t, 2> items{};
    items[0] = {nullptr, wake_fd_, ZMQ_POLLIN, 0};
    size_t count = 1;
    if (router_) {
      items[1] = {router_->handle(), 0, ZMQ_POLLIN, 0};
      count = 2;
    }
    try {
      zmq::poll(items.data(), count, std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t&) {
      // EINTR: just go round again.
    }
    if (items[0].revents & ZMQ_POLLIN) {
      uint64_t drained = 0;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
    }
    timeout_ms = kIdlePollMs;
    if (router_) {
      read_requests();
      timeout_ms = send_replies() ? kBlockedPollMs : kIdlePollMs;
      if (timeout_ms == kIdlePollMs && !pending_.empty()) timeout_ms = 0;  // budget ran out
    }
  }
  pending_.clear();
  router_.reset();
  pub_.reset();
}

void VllmZmqEventPublisher::send_live(std::deque<Batch>& batches, bool everything) {
  const zmq::const_buffer topic = zmq::buffer(options_.topic);
  const auto now = std::chrono::steady_clock::now();
  while (!batches.empty() && (everything || batches.front().due <= now)) {
    Batch batch = std::move(batches.front());
    batches.pop_front();
    if (batch.fate == EventFate::kDrop) {
      // Lost on the way only: the replay ring keeps it, as the worker's truth.
      bump(counters_.fault_drops);
    } else {
      const auto seq = encode_seq_frame(batch.seq);
      std::array<zmq::const_buffer, 3> frames = {topic, zmq::buffer(seq),
                                                 zmq::buffer(batch.payload)};
      const int copies = batch.fate == EventFate::kDuplicate ? 2 : 1;
      try {
        // A PUB socket never blocks: beyond SNDHWM ZMQ drops for that subscriber.
        for (int copy = 0; copy < copies; ++copy) {
          (void)zmq::send_multipart(*pub_, frames, zmq::send_flags::dontwait);
        }
        bump(counters_.published);
        if (copies == 2) bump(counters_.fault_duplicates);
      } catch (const zmq::error_t&) {
        continue;  // as in vLLM, a failed send is not buffered: subscribers see a gap
      }
    }
    if (options_.buffer_steps == 0) continue;
    ring_.push_back(std::make_shared<const Batch>(std::move(batch)));
    if (ring_.size() > options_.buffer_steps) ring_.pop_front();
  }
}

void VllmZmqEventPublisher::read_requests() {
  std::vector<zmq::message_t> frames;
  for (size_t i = 0; i < kRequestsPerTurn; ++i) {
    frames.clear();
    try {
      if (!zmq::recv_multipart(*router_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        return;
      }
    } catch (const zmq::error_t&) {
      return;
    }
    // [identity, "", start] from DEALER/REQ, or [identity, start] from a bare DEALER.
    const bool delimited = frames.size() == 3 && frames[1].size() == 0;
    const bool bare = frames.size() == 2;
    const std::optional<uint64_t> start =
        delimited || bare ? decode_seq_frame({frames.back().data<uint8_t>(), frames.back().size()})
                          : std::nullopt;
    if (!start) {
      bump(counters_.replay_bad_requests);
      continue;
    }
    bump(counters_.replay_requests);
    std::string identity = frames[0].to_string();
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const auto& p) { return p->identity == identity; });
    if (it == pending_.end()) {
      if (pending_.size() >= kMaxReplayClients) {
        bump(counters_.replay_requests_rejected);
        continue;
      }
      pending_.push_back(std::make_unique<PendingReplay>());
      pending_.back()->identity = std::move(identity);
      it = pending_.end() - 1;
    }
    // Snapshot now: the ring keeps moving while the replies wait.
    auto first = std::lower_bound(ring_.begin(), ring_.end(), *start,
                                  [](const auto& batch, uint64_t seq) { return batch->seq < seq; });
    (*it)->items.insert((*it)->items.end(), first, ring_.end());
    (*it)->items.push_back(nullptr);
  }
}

bool VllmZmqEventPublisher::send_replies() {
  static constexpr std::array<uint8_t, 0> kEmpty{};
  const auto end_seq = encode_seq_frame(kReplayEndSeq);
  bool blocked = false;
  size_t budget = kRepliesPerTurn;
  for (auto it = pending_.begin(); it != pending_.end() && budget > 0;) {
    PendingReplay& client = **it;
    bool drop = false;
    while (!client.items.empty() && budget > 0) {
      const std::shared_ptr<const Batch>& batch = client.items.front();
      const auto seq = batch ? encode_seq_frame(batch->seq) : end_seq;
      try {
        // Only the identity frame can fail: once ZMQ accepts it, the rest of the message
        // goes into the same pipe regardless of the high-water mark.
        if (!router_->send(zmq::buffer(client.identity),
                           zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          bump(counters_.replay_send_blocked);
          blocked = true;
          break;
        }
        router_->send(zmq::buffer(kEmpty), zmq::send_flags::sndmore);
        if (options_.replay_topic_frame) {
          router_->send(batch ? zmq::buffer(options_.topic) : zmq::buffer(kEmpty),
                        zmq::send_flags::sndmore);
        }
        router_->send(zmq::buffer(seq), zmq::send_flags::sndmore);
        router_->send(batch ? zmq::buffer(batch->payload) : zmq::buffer(kEmpty),
                      zmq::send_flags::none);
      } catch (const zmq::error_t&) {
        drop = true;  // EHOSTUNREACH: the client went away
        break;
      }
      bump(batch ? counters_.replay_batches_sent : counters_.replay_ends_sent);
      client.items.pop_front();
      --budget;
    }
    if (drop) bump(counters_.replay_clients_dropped);
    if (drop || client.items.empty()) {
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return blocked;
}

}  // namespace kvmock
