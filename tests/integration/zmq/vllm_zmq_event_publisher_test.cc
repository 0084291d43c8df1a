#include "transport/zmq/vllm_zmq_event_publisher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <zmq_addon.hpp>

#include "tests/support/nats_server.h"
#include "tests/support/zmq_test_support.h"
#include "transport/zmq/seq_frame.h"

namespace kvmock {
namespace {

using testing::payload_for;
using testing::wait_until;

std::unique_ptr<VllmZmqEventPublisher> start_publisher(zmq::context_t& context,
                                                       VllmZmqEventPublisherOptions options) {
  options.bind_host = "127.0.0.1";
  Result<std::unique_ptr<VllmZmqEventPublisher>> publisher =
      VllmZmqEventPublisher::start(context, std::move(options));
  EXPECT_TRUE(publisher.ok()) << publisher.error().message;
  return std::move(publisher).value();
}

std::unique_ptr<VllmZmqEventPublisher> start_with_batches(zmq::context_t& context,
                                                          VllmZmqEventPublisherOptions options,
                                                          uint64_t count,
                                                          size_t payload_size = 16) {
  auto publisher = start_publisher(context, std::move(options));
  for (uint64_t seq = 0; seq < count; ++seq) {
    EXPECT_EQ(*publisher->publish(payload_for(seq, payload_size)), seq);
  }
  EXPECT_TRUE(wait_until([&] { return publisher->counters().published == count; }));
  return publisher;
}

std::string str(const zmq::message_t& frame) { return frame.to_string(); }

uint64_t seq_of(const zmq::message_t& frame) {
  auto seq = decode_seq_frame({frame.data<uint8_t>(), frame.size()});
  EXPECT_TRUE(seq.has_value()) << "seq frame of " << frame.size() << " bytes";
  return seq.value_or(0);
}

std::vector<uint8_t> bytes(const zmq::message_t& frame) {
  return {frame.data<uint8_t>(), frame.data<uint8_t>() + frame.size()};
}

// Receives one multipart message within `timeout`; empty on timeout.
std::vector<zmq::message_t> receive(zmq::socket_t& socket,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::vector<zmq::message_t> frames;
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if (item.revents & ZMQ_POLLIN) {
    (void)zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait);
  }
  return frames;
}

zmq::socket_t dealer_to(zmq::context_t& context, const std::string& endpoint, int rcvhwm = 1000) {
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvhwm, rcvhwm);
  dealer.connect(endpoint);
  return dealer;
}

void ask_replay(zmq::socket_t& dealer, uint64_t start_seq, bool delimiter = true) {
  const auto start = encode_seq_frame(start_seq);
  if (delimiter) {
    std::array<zmq::const_buffer, 2> frames = {zmq::const_buffer(nullptr, 0), zmq::buffer(start)};
    (void)zmq::send_multipart(dealer, frames);
  } else {
    std::array<zmq::const_buffer, 1> frames = {zmq::buffer(start)};
    (void)zmq::send_multipart(dealer, frames);
  }
}

TEST(VllmZmqEventPublisherTest, LiveFramesAreTopicSeqFromZeroAndPayload) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.topic = "kv@pod@m";
  auto publisher = start_publisher(context, options);
  zmq::socket_t sub(context, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(publisher->endpoint());

  // Publish until the subscription has propagated, then check the stream from there.
  std::vector<zmq::message_t> first;
  uint64_t next = 0;
  ASSERT_TRUE(wait_until([&] {
    EXPECT_EQ(*publisher->publish(payload_for(next)), next);
    ++next;
    first = receive(sub, std::chrono::milliseconds(10));
    return !first.empty();
  }));
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(str(first[0]), "kv@pod@m");
  ASSERT_EQ(first[1].size(), 8u);
  uint64_t expected = seq_of(first[1]);
  EXPECT_EQ(bytes(first[2]), payload_for(expected));
  // Whatever got through before the subscription, seq counts from 0 and the rest follows.
  EXPECT_LT(expected, next);
  while (++expected < next) {
    auto frames = receive(sub);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(seq_of(frames[1]), expected);
    EXPECT_EQ(bytes(frames[2]), payload_for(expected));
  }
}

TEST(VllmZmqEventPublisherTest, PortZeroBindsAnEphemeralPortAndReportsIt) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  auto publisher = start_publisher(context, options);
  EXPECT_TRUE(publisher->endpoint().starts_with("tcp://127.0.0.1:"));
  EXPECT_TRUE(publisher->replay_endpoint().starts_with("tcp://127.0.0.1:"));
  EXPECT_NE(publisher->endpoint(), "tcp://127.0.0.1:0");
  EXPECT_NE(publisher->endpoint(), publisher->replay_endpoint());
}

TEST(VllmZmqEventPublisherTest, BindingAPortInUseIsAnError) {
  zmq::context_t context;
  auto first = start_publisher(context, {});
  const std::string port = first->endpoint().substr(first->endpoint().rfind(':') + 1);
  VllmZmqEventPublisherOptions options;
  options.bind_host = "127.0.0.1";
  options.port = static_cast<uint16_t>(std::stoi(port));
  auto second = VllmZmqEventPublisher::start(context, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().reason, "bind");
}

TEST(VllmZmqEventPublisherTest, NoReplaySocketUnlessAReplayPortIsGiven) {
  zmq::context_t context;
  auto publisher = start_publisher(context, {});
  EXPECT_EQ(publisher->replay_endpoint(), "");
}

void expect_replay_layout(bool topic_frame) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  options.topic = "kv";
  options.replay_topic_frame = topic_frame;
  auto publisher = start_with_batches(context, options, 10);
  auto dealer = dealer_to(context, publisher->replay_endpoint());
  ask_replay(dealer, 6);
  const size_t width = topic_frame ? 4 : 3;
  for (uint64_t seq = 6; seq < 10; ++seq) {
    auto frames = receive(dealer);
    ASSERT_EQ(frames.size(), width);
    EXPECT_EQ(frames[0].size(), 0u);
    if (topic_frame) {
      EXPECT_EQ(str(frames[1]), "kv");
    }
    EXPECT_EQ(seq_of(frames[width - 2]), seq);
    EXPECT_EQ(bytes(frames[width - 1]), payload_for(seq));
  }
  auto end = receive(dealer);
  ASSERT_EQ(end.size(), width);
  EXPECT_EQ(end[0].size(), 0u);
  if (topic_frame) {
    EXPECT_EQ(end[1].size(), 0u);
  }
  EXPECT_EQ(seq_of(end[width - 2]), kReplayEndSeq);
  EXPECT_EQ(end[width - 1].size(), 0u);
  EXPECT_TRUE(receive(dealer, std::chrono::milliseconds(100)).empty());
  EXPECT_EQ(publisher->counters().replay_batches_sent, 4u);
  // Counted just after the send, so the reader can be a moment ahead of the counter.
  EXPECT_TRUE(wait_until([&] { return publisher->counters().replay_ends_sent == 1; }));
}

TEST(VllmZmqEventPublisherTest, ReplayRepliesCarryTheTopicFrameByDefault) {
  expect_replay_layout(true);
}

TEST(VllmZmqEventPublisherTest, ReplayRepliesOmitTheTopicFrameInTheOldLayout) {
  expect_replay_layout(false);
}

TEST(VllmZmqEventPublisherTest, ReplayFromBeforeTheRingSendsWhatIsRetained) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  options.buffer_steps = 4;
  auto publisher = start_with_batches(context, options, 10);
  auto dealer = dealer_to(context, publisher->replay_endpoint());
  ask_replay(dealer, 0);
  for (uint64_t seq = 6; seq < 10; ++seq) {
    auto frames = receive(dealer);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(seq_of(frames[2]), seq);
  }
  auto end = receive(dealer);
  ASSERT_EQ(end.size(), 4u);
  EXPECT_EQ(seq_of(end[2]), kReplayEndSeq);
}

TEST(VllmZmqEventPublisherTest, ReplayPastTheNewestBatchSendsOnlyTheEndMarker) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  auto publisher = start_with_batches(context, options, 3);
  auto dealer = dealer_to(context, publisher->replay_endpoint());
  ask_replay(dealer, 50);
  auto end = receive(dealer);
  ASSERT_EQ(end.size(), 4u);
  EXPECT_EQ(seq_of(end[2]), kReplayEndSeq);
}

TEST(VllmZmqEventPublisherTest, RequestWithoutDelimiterIsAnsweredToo) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  auto publisher = start_with_batches(context, options, 2);
  auto dealer = dealer_to(context, publisher->replay_endpoint());
  ask_replay(dealer, 1, /*delimiter=*/false);
  auto batch = receive(dealer);
  ASSERT_EQ(batch.size(), 4u);
  EXPECT_EQ(seq_of(batch[2]), 1u);
  auto end = receive(dealer);
  ASSERT_EQ(end.size(), 4u);
  EXPECT_EQ(seq_of(end[2]), kReplayEndSeq);
}

TEST(VllmZmqEventPublisherTest, MalformedReplayRequestsAreIgnoredAndCounted) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  auto publisher = start_with_batches(context, options, 2);
  auto dealer = dealer_to(context, publisher->replay_endpoint());
  const std::array<uint8_t, 7> short_seq{};
  const std::array<uint8_t, 8> seq{};
  std::array<zmq::const_buffer, 2> seven = {zmq::const_buffer(nullptr, 0), zmq::buffer(short_seq)};
  (void)zmq::send_multipart(dealer, seven);
  std::array<zmq::const_buffer, 3> three = {zmq::const_buffer(nullptr, 0), zmq::buffer(seq),
                                            zmq::buffer(seq)};
  (void)zmq::send_multipart(dealer, three);
  std::array<zmq::const_buffer, 2> no_delimiter = {zmq::buffer(seq), zmq::buffer(seq)};
  (void)zmq::send_multipart(dealer, no_delimiter);
  ask_replay(dealer, 1);  // a good one after the bad ones is still served
  auto batch = receive(dealer);
  ASSERT_EQ(batch.size(), 4u);
  EXPECT_EQ(seq_of(batch[2]), 1u);
  EXPECT_EQ(publisher->counters().replay_bad_requests, 3u);
  EXPECT_EQ(publisher->counters().replay_requests, 1u);
}

// Reads a whole replay slowly (a pause every 100 messages) and checks every batch and the
// end marker arrived, in order.
void read_replay_slowly(zmq::socket_t& dealer, uint64_t count, size_t payload_size,
                        std::chrono::milliseconds pause) {
  for (uint64_t seq = 0; seq < count; ++seq) {
    auto frames = receive(dealer);
    ASSERT_EQ(frames.size(), 4u) << "at seq " << seq;
    ASSERT_EQ(seq_of(frames[2]), seq);
    ASSERT_EQ(frames[3].size(), payload_size);
    if (seq % 100 == 99) std::this_thread::sleep_for(pause);
  }
  auto end = receive(dealer);
  ASSERT_EQ(end.size(), 4u);
  EXPECT_EQ(seq_of(end[2]), kReplayEndSeq);
  EXPECT_EQ(end[3].size(), 0u);
}

TEST(VllmZmqEventPublisherTest, SlowReplayReaderGetsEveryBatchAndTheEndMarker) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  auto publisher = start_with_batches(context, options, 10000, 1024);
  auto dealer = dealer_to(context, publisher->replay_endpoint());
  ask_replay(dealer, 0);
  read_replay_slowly(dealer, 10000, 1024, std::chrono::milliseconds(2));
  EXPECT_EQ(publisher->counters().replay_batches_sent, 10000u);
  EXPECT_EQ(publisher->counters().replay_clients_dropped, 0u);
}

// With small high-water marks and kernel buffers the ROUTER really hits EAGAIN: the
// replies must wait in the publisher's queue, and live publishing must go on meanwhile.
TEST(VllmZmqEventPublisherTest, BlockedReplayKeepsItsRepliesAndDoesNotStallLivePublishing) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  options.replay_sndhwm = 50;
  auto publisher = start_with_batches(context, options, 10000, 4096);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvhwm, 50);
  dealer.set(zmq::sockopt::rcvbuf, 64 * 1024);
  dealer.connect(publisher->replay_endpoint());
  ask_replay(dealer, 0);
  ASSERT_TRUE(wait_until([&] { return publisher->counters().replay_send_blocked > 0; }));

  // The replay is stuck behind the reader; live batches still go out.
  for (uint64_t seq = 10000; seq < 10100; ++seq) ASSERT_TRUE(publisher->publish({1, 2}).ok());
  EXPECT_TRUE(wait_until([&] { return publisher->counters().published == 10100; }));

  read_replay_slowly(dealer, 10000, 4096, std::chrono::milliseconds(1));
  EXPECT_EQ(publisher->counters().replay_batches_sent, 10000u);
  // Counted just after the send, so the reader can be a moment ahead of the counter.
  EXPECT_TRUE(wait_until([&] { return publisher->counters().replay_ends_sent == 1; }));
  EXPECT_EQ(publisher->counters().replay_clients_dropped, 0u);
}

TEST(VllmZmqEventPublisherTest, ClientThatDisconnectsMidReplayIsDroppedAndCounted) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.replay_port = 0;
  options.replay_sndhwm = 10;
  auto publisher = start_with_batches(context, options, 5000, 4096);
  {
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::rcvhwm, 10);
    dealer.set(zmq::sockopt::rcvbuf, 16 * 1024);
    dealer.connect(publisher->replay_endpoint());
    ask_replay(dealer, 0);
    ASSERT_TRUE(wait_until([&] { return publisher->counters().replay_send_blocked > 0; }));
  }
  EXPECT_TRUE(wait_until([&] { return publisher->counters().replay_clients_dropped == 1; }));
  EXPECT_LT(publisher->counters().replay_batches_sent, 5000u);
}

TEST(VllmZmqEventPublisherTest, PublishAfterStopIsAnError) {
  zmq::context_t context;
  auto publisher = start_publisher(context, {});
  const auto started = std::chrono::steady_clock::now();
  publisher->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  auto seq = publisher->publish({1});
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.error().reason, "stopped");
}

// llm-d's topology (docs/wire-formats.md#engine-zmq-stream): the engine's PUB connects to
// a SUB the scheduler binds. Publishes until one batch gets through (a PUB drops what it
// sends before the subscription arrives), bounded; returns its frames or empty.
std::vector<zmq::message_t> publish_until_received(VllmZmqEventPublisher& publisher,
                                                   zmq::socket_t& sub, uint64_t& next_seq) {
  std::vector<zmq::message_t> frames;
  wait_until(
      [&] {
        auto seq = publisher.publish(payload_for(next_seq));
        EXPECT_TRUE(seq.ok());
        if (seq.ok()) {
          EXPECT_EQ(*seq, next_seq);
        }
        ++next_seq;
        frames = receive(sub, std::chrono::milliseconds(20));
        return !frames.empty();
      },
      std::chrono::seconds(10));
  return frames;
}

// The scheduler's SUB, bound at `endpoint`. After a close ZMQ frees the port on its I/O
// thread, so a quick re-bind may briefly fail; and while nothing listens there, the PUB's
// redial can land on the port itself (a TCP self-connect) until its handshake fails. Both
// pass: retried for up to 10 s.
zmq::socket_t central_sub(zmq::context_t& context, const std::string& endpoint) {
  for (int attempt = 0;; ++attempt) {
    zmq::socket_t sub(context, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    try {
      sub.bind(endpoint);
      return sub;
    } catch (const zmq::error_t&) {
      if (attempt == 200) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

TEST(VllmZmqEventPublisherTest, ConnectModeDialsTheSubAndKeepsCountingAcrossItsRestart) {
  zmq::context_t context;
  zmq::socket_t sub(context, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  const std::string endpoint = testing::bind_ephemeral(sub);
  VllmZmqEventPublisherOptions options;
  options.connect = endpoint;
  options.topic = "kv@10.0.0.1:8000@m";
  auto publisher = start_publisher(context, options);
  EXPECT_TRUE(publisher->connects());
  EXPECT_EQ(publisher->endpoint(), endpoint);  // what it dials, not a local address
  EXPECT_EQ(publisher->replay_endpoint(), "");

  uint64_t next = 0;
  auto first = publish_until_received(*publisher, sub, next);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(str(first[0]), "kv@10.0.0.1:8000@m");
  const uint64_t before = seq_of(first[1]);
  EXPECT_EQ(bytes(first[2]), payload_for(before));

  // The scheduler restarts: its SUB goes away and comes back on the same address. The PUB
  // redials by itself and the stream's seq carries on; the batches published while nobody
  // listened are a gap, as with a real engine.
  sub.close();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(publisher->publish(payload_for(next++)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  zmq::socket_t again = central_sub(context, endpoint);
  auto after = publish_until_received(*publisher, again, next);
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(str(after[0]), "kv@10.0.0.1:8000@m");
  EXPECT_GT(seq_of(after[1]), before);
  EXPECT_EQ(bytes(after[2]), payload_for(seq_of(after[1])));
}

TEST(VllmZmqEventPublisherTest, ConnectModeStartsBeforeTheSubExistsAndStillBindsReplay) {
  zmq::context_t context;
  const int port = testing::free_loopback_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  VllmZmqEventPublisherOptions options;
  options.connect = endpoint;
  options.replay_port = 0;
  auto publisher = start_publisher(context, options);  // nobody listens yet: not an error
  EXPECT_TRUE(publisher->replay_endpoint().starts_with("tcp://127.0.0.1:"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(publisher->publish(payload_for(i)).ok());
  zmq::socket_t sub = central_sub(context, endpoint);
  uint64_t next = 3;
  auto frames = publish_until_received(*publisher, sub, next);
  ASSERT_EQ(frames.size(), 3u);
  // Whether the first three reach the SUB is libzmq's choice, not ours: a connecting PUB
  // queues for its pending connection (ZMQ_IMMEDIATE off, as in vLLM), and a refused first
  // dial may or may not keep that queue. Either way the stream is whole from where it starts.
  const uint64_t seq = seq_of(frames[1]);
  EXPECT_LT(seq, next);
  EXPECT_EQ(bytes(frames[2]), payload_for(seq));
}

TEST(VllmZmqEventPublisherTest, ConnectingToAMalformedEndpointIsAnError) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions options;
  options.connect = "tcp://127.0.0.1";  // no port
  auto publisher = VllmZmqEventPublisher::start(context, options);
  ASSERT_FALSE(publisher.ok());
  EXPECT_EQ(publisher.error().reason, "connect");
  EXPECT_NE(publisher.error().message.find("tcp://127.0.0.1"), std::string::npos);
}

}  // namespace
}  // namespace kvmock
