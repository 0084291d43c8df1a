#include "transport/zmq/relayed_engine_subscriber.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/support/zmq_test_support.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {
namespace {

using testing::payload_for;
using testing::RawEngine;
using testing::RecordingSink;
using testing::start_subscriber;
using testing::wait_until;

std::vector<uint8_t> seq_bytes(uint64_t seq, size_t size = 8) {
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) out[size - 1 - i] = static_cast<uint8_t>(seq >> (8 * i));
  return out;
}

TEST(RelayedEngineSubscriberTest, ThousandPublishedBatchesArriveInOrderWithTheirBytes) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions publisher_options;
  publisher_options.bind_host = "127.0.0.1";
  publisher_options.topic = "kv@pod@model";
  auto publisher = VllmZmqEventPublisher::start(context, publisher_options);
  ASSERT_TRUE(publisher.ok()) << publisher.error().message;
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = (*publisher)->endpoint();
  options.topic = "kv@";
  auto subscriber = start_subscriber(context, options, sink);

  // A PUB drops what it sends before the subscription arrives, so warm up until one
  // batch gets through; the subscriber accepts its first batch whatever the seq.
  uint64_t warmup = 0;
  ASSERT_TRUE(wait_until([&] {
    if (sink.batch_count() > 0) return true;
    if (!(*publisher)->publish(payload_for(warmup++, 100)).ok()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return sink.batch_count() > 0;
  }));
  ASSERT_TRUE(wait_until([&] { return (*publisher)->counters().published == warmup; }));
  const size_t before = sink.batch_count();
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE((*publisher)->publish(payload_for(warmup + i, 100)).ok());
  }
  ASSERT_TRUE(sink.wait_for_batches(before + 1000));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), before + 1000);
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].seq, calls[i - 1].seq + 1) << "at " << i;
  }
  for (const auto& call : calls) {
    EXPECT_FALSE(call.restart);
    EXPECT_FALSE(call.replayed);
    EXPECT_EQ(call.dp_rank, 0u);
    EXPECT_EQ(call.payload, payload_for(call.seq, 100)) << "seq " << call.seq;
  }
  EXPECT_EQ(calls.back().seq, warmup + 999);
  EXPECT_EQ(subscriber->counters().gaps, 0u);
  EXPECT_EQ(subscriber->counters().batches, calls.size());
}

TEST(RelayedEngineSubscriberTest, MalformedMessagesAreDroppedByReasonAndTheStreamContinues) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  std::atomic<int> log_lines{0};
  options.log = [&](std::string_view) { ++log_lines; };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());

  engine.send_batch(0, payload_for(0));
  engine.send_frames({{}});                                     // 1 frame
  engine.send_frames({{}, seq_bytes(1)});                       // 2 frames
  engine.send_frames({{}, seq_bytes(1), payload_for(1), {1}});  // 4 frames
  engine.send_frames({{}, seq_bytes(1, 7), payload_for(1)});    // 7-byte seq
  engine.send_batch(1, payload_for(1));
  engine.send_batch(2, payload_for(2));
  ASSERT_TRUE(sink.wait_for_batches(3));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(calls[i].seq, i);
    EXPECT_EQ(calls[i].payload, payload_for(i));
  }
  const auto& counters = subscriber->counters();
  EXPECT_EQ(counters.dropped_for(SubscriberDrop::kFrameCount), 3u);
  EXPECT_EQ(counters.dropped_for(SubscriberDrop::kSeqSize), 1u);
  EXPECT_EQ(counters.messages, 7u);
  EXPECT_EQ(counters.frames, 3u + 1 + 2 + 4 + 3 + 3 + 3);
  EXPECT_EQ(counters.gaps, 0u);
  EXPECT_EQ(log_lines.load(), 1);  // four drops in a burst: one line, the rest rate-limited
}

// Live stream: 0..9 then 15 from a raw engine. The replay ROUTER is a real VllmZmqEventPublisher
// that published 0..15, so 10..14 are in its ring.
void expect_gap_healed_from_replay(bool replay_topic_frame) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions ring_options;
  ring_options.bind_host = "127.0.0.1";
  ring_options.replay_port = 0;
  ring_options.topic = "t";
  ring_options.replay_topic_frame = replay_topic_frame;
  auto ring = VllmZmqEventPublisher::start(context, ring_options);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  for (uint64_t seq = 0; seq <= 15; ++seq) ASSERT_TRUE((*ring)->publish(payload_for(seq)).ok());
  ASSERT_TRUE(wait_until([&] { return (*ring)->counters().published == 16; }));

  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.replay_endpoint = (*ring)->replay_endpoint();
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t seq = 0; seq <= 9; ++seq) engine.send_batch(seq, payload_for(seq), "t");
  engine.send_batch(15, payload_for(15), "t");
  engine.send_batch(16, payload_for(16), "t");
  ASSERT_TRUE(sink.wait_for_batches(17));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 17u);
  for (uint64_t seq = 0; seq <= 16; ++seq) {
    EXPECT_FALSE(calls[seq].restart);
    EXPECT_EQ(calls[seq].seq, seq);
    EXPECT_EQ(calls[seq].payload, payload_for(seq)) << "seq " << seq;
    EXPECT_EQ(calls[seq].replayed, seq >= 10 && seq <= 14) << "seq " << seq;
  }
  const auto& counters = subscriber->counters();
  EXPECT_EQ(counters.gaps, 1u);
  EXPECT_EQ(counters.replays_requested, 1u);
  EXPECT_EQ(counters.replayed_batches, 5u);
  EXPECT_EQ(counters.missing_batches, 0u);
  EXPECT_EQ(counters.batches, 12u);
  EXPECT_EQ((*ring)->counters().replay_requests, 1u);
}

TEST(RelayedEngineSubscriberTest, GapIsHealedFromReplayRepliesWithTopicFrame) {
  expect_gap_healed_from_replay(true);
}

TEST(RelayedEngineSubscriberTest, GapIsHealedFromReplayRepliesWithoutTopicFrame) {
  expect_gap_healed_from_replay(false);
}

TEST(RelayedEngineSubscriberTest, GapWithoutReplayEndpointIsCountedAsMissingAndTheStreamContinues) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  std::atomic<int> log_lines{0};
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.log = [&](std::string_view) { ++log_lines; };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t seq = 0; seq <= 4; ++seq) engine.send_batch(seq, payload_for(seq));
  engine.send_batch(10, payload_for(10));
  engine.send_batch(11, payload_for(11));
  ASSERT_TRUE(sink.wait_for_batches(7));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 7u);
  EXPECT_EQ(calls[5].seq, 10u);
  EXPECT_EQ(calls[6].seq, 11u);
  const auto& counters = subscriber->counters();
  EXPECT_EQ(counters.gaps, 1u);
  EXPECT_EQ(counters.missing_batches, 5u);
  EXPECT_EQ(counters.replays_requested, 0u);
  EXPECT_EQ(log_lines.load(), 1);
}

TEST(RelayedEngineSubscriberTest, ReplayThatFallsShortCountsTheBatchesItDidNotReturn) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions ring_options;
  ring_options.bind_host = "127.0.0.1";
  ring_options.replay_port = 0;
  ring_options.buffer_steps = 3;  // keeps only 17..19 of 0..19
  auto ring = VllmZmqEventPublisher::start(context, ring_options);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  for (uint64_t seq = 0; seq < 20; ++seq) ASSERT_TRUE((*ring)->publish(payload_for(seq)).ok());
  ASSERT_TRUE(wait_until([&] { return (*ring)->counters().published == 20; }));

  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.replay_endpoint = (*ring)->replay_endpoint();
  options.log = [](std::string_view) {};
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  engine.send_batch(10, payload_for(10));
  engine.send_batch(19, payload_for(19));  // 11..18 missing; the ring has 17, 18
  ASSERT_TRUE(sink.wait_for_batches(4));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].seq, 10u);
  EXPECT_EQ(calls[1].seq, 17u);
  EXPECT_TRUE(calls[1].replayed);
  EXPECT_EQ(calls[2].seq, 18u);
  EXPECT_TRUE(calls[2].replayed);
  EXPECT_EQ(calls[3].seq, 19u);
  EXPECT_FALSE(calls[3].replayed);
  EXPECT_EQ(subscriber->counters().missing_batches, 6u);
  EXPECT_EQ(subscriber->counters().replayed_batches, 2u);
}

TEST(RelayedEngineSubscriberTest, SeqGoingBackToZeroReportsOneRestartBeforeTheNewRun) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.dp_rank = 0;
  options.log = [](std::string_view) {};
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t seq = 5; seq <= 8; ++seq) engine.send_batch(seq, payload_for(seq));
  for (uint64_t seq = 0; seq <= 2; ++seq) engine.send_batch(seq, payload_for(100 + seq));
  ASSERT_TRUE(sink.wait_for_batches(7));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 8u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(calls[i].seq, 5 + i);
  EXPECT_TRUE(calls[4].restart);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_FALSE(calls[5 + i].restart);
    EXPECT_EQ(calls[5 + i].seq, i);
    EXPECT_EQ(calls[5 + i].payload, payload_for(100 + i));
  }
  EXPECT_EQ(subscriber->counters().restarts, 1u);
  EXPECT_EQ(subscriber->counters().gaps, 0u);
}

TEST(RelayedEngineSubscriberTest, RestartFirstSeenAboveZeroRecoversTheNewRunsFirstBatches) {
  zmq::context_t context;
  VllmZmqEventPublisherOptions ring_options;  // the restarted engine's replay socket
  ring_options.bind_host = "127.0.0.1";
  ring_options.replay_port = 0;
  auto ring = VllmZmqEventPublisher::start(context, ring_options);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  for (uint64_t seq = 0; seq <= 3; ++seq) {
    ASSERT_TRUE((*ring)->publish(payload_for(100 + seq)).ok());
  }
  ASSERT_TRUE(wait_until([&] { return (*ring)->counters().published == 4; }));

  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.replay_endpoint = (*ring)->replay_endpoint();
  options.log = [](std::string_view) {};
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t seq = 5; seq <= 8; ++seq) engine.send_batch(seq, payload_for(seq));
  engine.send_batch(2, payload_for(102));  // the new run, its 0 and 1 missed
  engine.send_batch(3, payload_for(103));
  ASSERT_TRUE(sink.wait_for_batches(8));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 9u);
  EXPECT_TRUE(calls[4].restart);
  for (uint64_t seq = 0; seq <= 3; ++seq) {
    const auto& call = calls[5 + seq];
    EXPECT_EQ(call.seq, seq);
    EXPECT_EQ(call.payload, payload_for(100 + seq));
    EXPECT_EQ(call.replayed, seq < 2) << "seq " << seq;
  }
  EXPECT_EQ(subscriber->counters().restarts, 1u);
  EXPECT_EQ(subscriber->counters().replayed_batches, 2u);
  EXPECT_EQ(subscriber->counters().missing_batches, 0u);
}

TEST(RelayedEngineSubscriberTest, RepeatedSeqIsDroppedAsDuplicate) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  engine.send_batch(3, payload_for(3));
  engine.send_batch(3, payload_for(3));
  engine.send_batch(4, payload_for(4));
  ASSERT_TRUE(sink.wait_for_batches(2));
  ASSERT_TRUE(wait_until([&] { return subscriber->counters().messages == 3; }));
  subscriber->stop();
  EXPECT_EQ(sink.calls().size(), 2u);
  EXPECT_EQ(subscriber->counters().dropped_for(SubscriberDrop::kDuplicate), 1u);
  EXPECT_EQ(subscriber->counters().restarts, 0u);
}

TEST(RelayedEngineSubscriberTest, WaitForRoomHoldsBackReceivingUntilItReturns) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  std::atomic<bool> room{true};
  std::atomic<int> waits{0};
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.wait_for_room = [&] {
    ++waits;
    // Bounded so a failing test cannot hang stop().
    wait_until([&] { return room.load(); }, std::chrono::seconds(5));
  };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  engine.send_batch(0, payload_for(0));
  ASSERT_TRUE(sink.wait_for_batches(1));
  room = false;
  const int waits_before = waits.load();
  ASSERT_TRUE(wait_until([&] { return waits.load() > waits_before; }));  // now blocked
  engine.send_batch(1, payload_for(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink.batch_count(), 1u);
  room = true;
  EXPECT_TRUE(sink.wait_for_batches(2));
  subscriber->stop();
}

TEST(RelayedEngineSubscriberTest, StopReturnsWithinOneSecondWithNoTraffic) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto started = std::chrono::steady_clock::now();
  subscriber->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  EXPECT_EQ(sink.batch_count(), 0u);
}

TEST(RelayedEngineSubscriberTest, StopReturnsPromptlyWhenNoEngineListens) {
  zmq::context_t context;
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = "tcp://127.0.0.1:1";  // nothing listens: ZMQ keeps retrying
  auto subscriber = start_subscriber(context, options, sink);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto started = std::chrono::steady_clock::now();
  subscriber->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(RelayedEngineSubscriberTest, StartOffsetsTheEndpointsByDpRank) {
  zmq::context_t context;
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = "tcp://127.0.0.1:5557";
  options.replay_endpoint = "tcp://127.0.0.1:5558";
  options.dp_rank = 2;
  auto subscriber = start_subscriber(context, options, sink);
  EXPECT_EQ(subscriber->endpoint(), "tcp://127.0.0.1:5559");
  EXPECT_EQ(subscriber->replay_endpoint(), "tcp://127.0.0.1:5560");
}

TEST(RelayedEngineSubscriberTest, StartRejectsAnEndpointWithoutPort) {
  zmq::context_t context;
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = "tcp://engine-host";
  options.dp_rank = 1;
  auto subscriber = RelayedEngineSubscriber::start(context, options, sink);
  ASSERT_FALSE(subscriber.ok());
  EXPECT_EQ(subscriber.error().reason, "bad_endpoint");
}

}  // namespace
}  // namespace kvmock
