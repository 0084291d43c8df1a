// Event faults on the vLLM-format ZMQ output (docs/faults.md#event-faults), over real
// sockets on 127.0.0.1: a dropped batch is a gap in the live seq that the replay socket
// fills, a duplicate is the same frames twice, and a delay holds batches in order.
#include <gtest/gtest.h>

#include <chrono>
#include <zmq_addon.hpp>

#include "core/faults/event_faults.h"
#include "tests/support/zmq_test_support.h"
#include "transport/zmq/seq_frame.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;
using testing::payload_for;
using testing::wait_until;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kWorker = 7;

std::vector<zmq::message_t> receive(zmq::socket_t& socket, milliseconds timeout) {
  std::vector<zmq::message_t> frames;
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if (item.revents & ZMQ_POLLIN) {
    (void)zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait);
  }
  return frames;
}

uint64_t seq_of(const zmq::message_t& frame) {
  return decode_seq_frame({frame.data<uint8_t>(), frame.size()}).value_or(UINT64_MAX);
}

std::vector<uint8_t> bytes(const zmq::message_t& frame) {
  return {frame.data<uint8_t>(), frame.data<uint8_t>() + frame.size()};
}

EventFaults faults(double drop, double duplicate, double delay_ms) {
  EventFaults f;
  f.drop_rate = drop;
  f.duplicate_rate = duplicate;
  f.delay_ms = delay_ms;
  f.seed = 9;
  return f;
}

// A publisher with a replay socket and a SUB that already receives its batches; `next` is
// the seq the next publish() gets (the batches before went out while the subscription
// propagated).
struct Rig {
  Rig() {
    VllmZmqEventPublisherOptions options;
    options.bind_host = "127.0.0.1";
    options.replay_port = 0;
    options.topic = "kv";
    auto started = VllmZmqEventPublisher::start(context, options);
    EXPECT_TRUE(started.ok());
    if (!started) return;
    publisher = std::move(*started);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(publisher->endpoint());
    subscribed = wait_until([&] {
      (void)publisher->publish(payload_for(next++));
      return !receive(sub, milliseconds(10)).empty();
    });
    // What is still on its way from the warm-up.
    while (!receive(sub, milliseconds(200)).empty()) {
    }
  }

  zmq::context_t context;
  std::unique_ptr<VllmZmqEventPublisher> publisher;
  zmq::socket_t sub{context, zmq::socket_type::sub};
  uint64_t next = 0;
  bool subscribed = false;
};

TEST(VllmZmqEventPublisherFaults, DropsAreLiveGapsThatReplayFillsAndDuplicatesRepeatTheFrames) {
  Rig rig;
  ASSERT_TRUE(rig.subscribed);
  const EventFaults f = faults(30, 30, 0);
  rig.publisher->set_event_faults(f, kWorker, 0);
  const uint64_t first = rig.next;
  constexpr uint64_t kCount = 100;
  size_t expected = 0;
  std::vector<uint64_t> dropped;
  for (uint64_t seq = first; seq < first + kCount; ++seq) {
    ASSERT_EQ(*rig.publisher->publish(payload_for(seq)), seq);
    const EventFate fate = draw_event_fate(f, kWorker, 0, seq + 1);
    if (fate == EventFate::kDrop) dropped.push_back(seq);
    expected += fate == EventFate::kDrop ? 0 : fate == EventFate::kDuplicate ? 2 : 1;
  }
  ASSERT_FALSE(dropped.empty());

  std::vector<std::vector<zmq::message_t>> live;
  while (live.size() < expected) {
    auto frames = receive(rig.sub, milliseconds(2000));
    if (frames.empty()) break;
    live.push_back(std::move(frames));
  }
  ASSERT_EQ(live.size(), expected);
  EXPECT_TRUE(receive(rig.sub, milliseconds(100)).empty());
  size_t at = 0;
  for (uint64_t seq = first; seq < first + kCount; ++seq) {
    const EventFate fate = draw_event_fate(f, kWorker, 0, seq + 1);
    if (fate == EventFate::kDrop) continue;
    ASSERT_EQ(live[at].size(), 3u);
    EXPECT_EQ(seq_of(live[at][1]), seq);
    EXPECT_EQ(bytes(live[at][2]), payload_for(seq));
    if (fate == EventFate::kDuplicate) {
      ASSERT_EQ(live[at + 1].size(), 3u);
      for (size_t frame = 0; frame < 3; ++frame) {
        EXPECT_EQ(bytes(live[at + 1][frame]), bytes(live[at][frame])) << seq;
      }
      ++at;
    }
    ++at;
  }
  EXPECT_EQ(rig.publisher->counters().fault_drops, dropped.size());

  // A reader that noticed the first gap asks the replay socket from there: every batch
  // since, the dropped ones included, once each.
  zmq::socket_t dealer(rig.context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(rig.publisher->replay_endpoint());
  const auto start = encode_seq_frame(dropped.front());
  std::array<zmq::const_buffer, 2> request = {zmq::const_buffer(nullptr, 0), zmq::buffer(start)};
  (void)zmq::send_multipart(dealer, request);
  for (uint64_t seq = dropped.front(); seq < first + kCount; ++seq) {
    auto frames = receive(dealer, milliseconds(5000));
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(seq_of(frames[2]), seq);
    EXPECT_EQ(bytes(frames[3]), payload_for(seq));
  }
  auto end = receive(dealer, milliseconds(5000));
  ASSERT_EQ(end.size(), 4u);
  EXPECT_EQ(seq_of(end[2]), kReplayEndSeq);
}

TEST(VllmZmqEventPublisherFaults, DelayedBatchesArriveAfterTheDelayInOrder) {
  Rig rig;
  ASSERT_TRUE(rig.subscribed);
  rig.publisher->set_event_faults(faults(0, 0, 300), kWorker, 0);
  const auto sent = SteadyClock::now();
  const uint64_t first = rig.next;
  for (uint64_t seq = first; seq < first + 3; ++seq) {
    ASSERT_EQ(*rig.publisher->publish(payload_for(seq)), seq);
  }
  for (uint64_t seq = first; seq < first + 3; ++seq) {
    auto frames = receive(rig.sub, milliseconds(5000));
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_GE(SteadyClock::now() - sent, milliseconds(300));
    EXPECT_EQ(seq_of(frames[1]), seq);
  }
  EXPECT_EQ(rig.publisher->counters().fault_delays, 3u);
  // Without a delay, batches go on as before.
  rig.publisher->set_event_faults(faults(0, 0, 0), kWorker, 0);
  (void)rig.publisher->publish(payload_for(first + 3));
  auto frames = receive(rig.sub, milliseconds(5000));
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(seq_of(frames[1]), first + 3);
  EXPECT_EQ(rig.publisher->counters().fault_delays, 3u);
}

}  // namespace
}  // namespace kvmock
