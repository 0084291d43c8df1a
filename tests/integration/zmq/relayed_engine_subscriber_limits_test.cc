// The subscriber's bounds against a misbehaving engine, over real ZMQ sockets on
// 127.0.0.1: corrupted seqs, oversize messages, bytes buffered while the downstream is
// full, and replay endpoints that never answer or answer garbage.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>
#include <zmq_addon.hpp>

#include "tests/support/zmq_test_support.h"
#include "transport/zmq/relayed_engine_subscriber.h"
#include "transport/zmq/seq_frame.h"

namespace kvmock {
namespace {

using testing::bind_ephemeral;
using testing::payload_for;
using testing::RawEngine;
using testing::RecordingSink;
using testing::start_subscriber;
using testing::wait_until;

// A replay ROUTER that reads every request and answers each with `answer` (nothing when
// empty: an endpoint that never answers). Counts the requests.
class ReplayStub {
 public:
  ReplayStub(zmq::context_t& context, std::vector<std::vector<uint8_t>> answer)
      : socket_(context, zmq::socket_type::router), answer_(std::move(answer)) {
    socket_.set(zmq::sockopt::linger, 0);
    endpoint_ = bind_ephemeral(socket_);
    thread_ = std::thread([this] { serve(); });
  }
  ~ReplayStub() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  int requests() const { return requests_.load(); }

 private:
  void serve() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        continue;
      }
      ++requests_;
      if (answer_.empty()) continue;
      std::vector<zmq::const_buffer> out = {zmq::buffer(frames[0].data(), frames[0].size())};
      for (const auto& frame : answer_) out.push_back(zmq::buffer(frame));
      (void)zmq::send_multipart(socket_, out);
    }
  }

  zmq::socket_t socket_;
  const std::vector<std::vector<uint8_t>> answer_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;  // last
};

// An XPUB whose (re)subscriptions the test can wait for one by one.
class ReconnectingEngine {
 public:
  explicit ReconnectingEngine(zmq::context_t& context) : socket_(context, zmq::socket_type::xpub) {
    socket_.set(zmq::sockopt::linger, 0);
    // Every subscribe is passed on, also one that arrives while the old connection's
    // subscription is still registered.
    socket_.set(zmq::sockopt::xpub_verbose, 1);
    endpoint_ = bind_ephemeral(socket_);
  }
  const std::string& endpoint() const { return endpoint_; }
  // Waits for a subscribe message (first byte 1), skipping unsubscribes.
  bool wait_for_subscribe(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t message;
      if (!socket_.recv(message, zmq::recv_flags::dontwait)) continue;
      if (message.size() > 0 && message.data<uint8_t>()[0] == 1) return true;
    }
    return false;
  }
  void send_batch(uint64_t seq, const std::vector<uint8_t>& payload) {
    const auto seq_frame = encode_seq_frame(seq);
    std::array<zmq::const_buffer, 3> frames = {zmq::const_buffer(nullptr, 0),
                                               zmq::buffer(seq_frame), zmq::buffer(payload)};
    (void)zmq::send_multipart(socket_, frames);
  }

 private:
  zmq::socket_t socket_;
  std::string endpoint_;
};

TEST(RelayedEngineSubscriberLimitsTest,
     AWildSeqThenTheStreamCarryingOnIsACorruptedDropNotARestart) {
  zmq::context_t context;
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  options.log = [&](std::string_view line) {
    std::lock_guard lock(lines_mutex);
    lines.emplace_back(line);
  };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t seq = 0; seq <= 4; ++seq) engine.send_batch(seq, payload_for(seq));
  engine.send_batch(5 + (uint64_t{1} << 40), payload_for(999));  // one corrupted seq frame
  for (uint64_t seq = 5; seq <= 7; ++seq) engine.send_batch(seq, payload_for(seq));
  ASSERT_TRUE(sink.wait_for_batches(8));
  ASSERT_TRUE(wait_until([&] { return subscriber->counters().messages == 9; }));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 8u);
  for (uint64_t seq = 0; seq <= 7; ++seq) {
    EXPECT_FALSE(calls[seq].restart);
    EXPECT_EQ(calls[seq].seq, seq);
    EXPECT_EQ(calls[seq].payload, payload_for(seq));
  }
  const auto& counters = subscriber->counters();
  EXPECT_EQ(counters.restarts, 0u);
  EXPECT_EQ(counters.missing_batches, 0u);
  EXPECT_EQ(counters.gaps, 0u);
  EXPECT_EQ(counters.dropped_for(SubscriberDrop::kCorruptedSeq), 1u);
  std::lock_guard lock(lines_mutex);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("implausible seq 1099511627781"), std::string::npos) << lines[0];
}

TEST(RelayedEngineSubscriberLimitsTest,
     AMessageOverMaxMessageBytesIsRefusedCountedAndTheStreamResumes) {
  zmq::context_t context;
  ReconnectingEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.max_message_bytes = 64 * 1024;
  std::atomic<int> disconnect_lines{0};
  options.log = [&](std::string_view line) {
    if (line.find("lost the connection") != std::string_view::npos) ++disconnect_lines;
  };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscribe());
  engine.send_batch(0, payload_for(0));
  engine.send_batch(1, payload_for(1, 60 * 1024));  // under the limit with its frames
  engine.send_batch(2, payload_for(2, 1 << 20));    // over it
  ASSERT_TRUE(wait_until([&] { return subscriber->counters().disconnects >= 1; }));
  ASSERT_TRUE(engine.wait_for_subscribe()) << "the SUB did not reconnect";
  engine.send_batch(3, payload_for(3));
  engine.send_batch(4, payload_for(4));
  ASSERT_TRUE(sink.wait_for_batches(4));
  subscriber->stop();

  const auto calls = sink.calls();
  ASSERT_EQ(calls.size(), 4u);
  const uint64_t want[] = {0, 1, 3, 4};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(calls[i].seq, want[i]);
    EXPECT_LE(calls[i].payload.size(), 64u * 1024);
  }
  EXPECT_EQ(subscriber->counters().disconnects, 1u);
  EXPECT_EQ(subscriber->counters().missing_batches, 1u);  // seq 2, no replay endpoint
  EXPECT_EQ(disconnect_lines.load(), 1);
}

// Counts without keeping the payloads (a RecordingSink would add them to the RSS).
struct CountingSink : RelayedEngineStreamSink {
  void on_batch(uint32_t, uint64_t seq, std::span<const uint8_t>, bool) override {
    last_seq = seq;
    ++batches;
  }
  void on_restart(uint32_t) override { ++restarts; }
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> last_seq{0};
  std::atomic<uint64_t> restarts{0};
};

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

bool read_line(int fd, std::string& line, int timeout_ms) {
  line.clear();
  for (int i = 0; i < 4096; ++i) {
    pollfd item{fd, POLLIN, 0};
    if (poll(&item, 1, timeout_ms) != 1) return false;
    char c = 0;
    if (read(fd, &c, 1) != 1) return false;
    if (c == '\n') return true;
    line.push_back(c);
  }
  return false;
}

// The engine of the memory test, in a child process so that what it queues is not in the
// test's RSS. Binds, reports its endpoint, sends seq 1 (small) until told to go on, then
// seqs 2.. as `frames` batches of 1 MiB, reports "sent", and exits when the parent closes
// its pipe.
[[noreturn]] void run_flooding_engine(int to_parent, int from_parent, uint64_t frames) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::pub);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 1000000);
  const std::string endpoint = bind_ephemeral(socket);
  const std::string hello = endpoint + "\n";
  if (write(to_parent, hello.data(), hello.size()) < 0) _exit(1);
  auto send = [&](uint64_t seq, size_t size) {
    const auto seq_frame = encode_seq_frame(seq);
    const std::vector<uint8_t> payload = payload_for(seq, size);
    std::array<zmq::const_buffer, 3> out = {zmq::const_buffer(nullptr, 0), zmq::buffer(seq_frame),
                                            zmq::buffer(payload)};
    (void)zmq::send_multipart(socket, out);
  };
  std::string command;
  // Seq 1 again and again (duplicates) until the parent has seen it and says "go".
  for (int i = 0; i < 500; ++i) {
    send(1, 16);
    pollfd item{from_parent, POLLIN, 0};
    if (poll(&item, 1, 20) == 1) break;
  }
  if (!read_line(from_parent, command, 5000) || command != "go") _exit(2);
  for (uint64_t seq = 2; seq <= frames + 1; ++seq) send(seq, 1 << 20);
  if (write(to_parent, "sent\n", 5) < 0) _exit(3);
  (void)read_line(from_parent, command, 120000);  // returns at EOF
  _exit(0);
}

// While the downstream is full the socket is not read; the bytes that pile up in this
// process are bounded by max_buffered_bytes (plus the kernel's TCP buffers), not by the
// number of messages the engine sends. For a measurement, KVMOCK_FLOOD_FRAMES sets the
// number of 1 MiB batches (default 300) and KVMOCK_FLOOD_BUFFERED_BYTES the budget (default
// 16 MiB; 209715200000 gives the old 100,000-message rcvhwm).
uint64_t env_or(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

TEST(RelayedEngineSubscriberLimitsTest, BytesBufferedWhileTheDownstreamIsFullAreBounded) {
  const uint64_t kFrames = env_or("KVMOCK_FLOOD_FRAMES", 300);
  const uint64_t budget = env_or("KVMOCK_FLOOD_BUFFERED_BYTES", 16 << 20);
  int up[2];
  int down[2];
  ASSERT_EQ(pipe(up), 0);
  ASSERT_EQ(pipe(down), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(up[0]);
    close(down[1]);
    run_flooding_engine(up[1], down[0], kFrames);
  }
  close(up[1]);
  close(down[0]);
  std::string endpoint;
  ASSERT_TRUE(read_line(up[0], endpoint, 5000));

  zmq::context_t context;
  CountingSink sink;
  std::atomic<bool> room{true};
  std::atomic<int> waits{0};
  RelayedEngineSubscriberOptions options;
  options.endpoint = endpoint;
  options.max_message_bytes = 2 << 20;
  options.max_buffered_bytes = budget;  // 8 messages by default
  options.log = [](std::string_view) {};
  options.wait_for_room = [&] {
    ++waits;
    wait_until([&] { return room.load(); }, std::chrono::seconds(30));
  };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(wait_until([&] { return sink.batches.load() >= 1; }));
  room = false;
  const int waits_before = waits.load();
  ASSERT_TRUE(wait_until([&] { return waits.load() > waits_before; }));  // now blocked
  std::this_thread::sleep_for(std::chrono::milliseconds(200));           // duplicates drain
  const uint64_t before = resident_bytes();
  ASSERT_EQ(write(down[1], "go\n", 3), 3);
  std::string sent;
  ASSERT_TRUE(read_line(up[0], sent, 30000));
  // Let the transfer settle: until the RSS stops growing (bounded at 10 s).
  uint64_t last = resident_bytes();
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const uint64_t now = resident_bytes();
    if (i >= 3 && now < last + (1 << 20)) break;
    last = now;
  }
  const uint64_t grown = resident_bytes() - std::min(before, resident_bytes());
  std::fprintf(stderr, "RSS grew by %.1f MiB while %llu x 1 MiB batches were sent\n",
               static_cast<double>(grown) / (1 << 20), static_cast<unsigned long long>(kFrames));
  room = true;
  const bool all =
      wait_until([&] { return sink.batches.load() >= 1 + kFrames; }, std::chrono::seconds(30));
  subscriber->stop();
  close(down[1]);
  close(up[0]);
  int status = 0;
  waitpid(child, &status, 0);

  if (budget == (16 << 20)) {
    EXPECT_LT(grown, uint64_t{64} << 20);
  }
  EXPECT_TRUE(all) << sink.batches.load();  // nothing is lost: the engine held the rest
  EXPECT_EQ(sink.last_seq.load(), 1 + kFrames);
  EXPECT_EQ(subscriber->counters().missing_batches, 0u);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(RelayedEngineSubscriberLimitsTest, RcvhwmIsTheByteBudgetInMaximumSizedMessages) {
  EXPECT_EQ(subscriber_rcvhwm(256u << 20, 4 << 20), 64);
  EXPECT_EQ(subscriber_rcvhwm(1 << 20, 4 << 20), 1);
  EXPECT_EQ(subscriber_rcvhwm(uint64_t{1} << 62, 1024), INT_MAX);
  EXPECT_EQ(subscriber_rcvhwm(1 << 20, 0), 1000);
}

TEST(RelayedEngineSubscriberLimitsTest, AReplayEndpointPausesAfterTwoFailuresInARow) {
  EXPECT_EQ(replay_pause_ms(0), 0);
  EXPECT_EQ(replay_pause_ms(1), 0);
  EXPECT_EQ(replay_pause_ms(2), 1000);
  EXPECT_EQ(replay_pause_ms(3), 2000);
  EXPECT_EQ(replay_pause_ms(8), 60000);
  EXPECT_EQ(replay_pause_ms(~0u), 60000);
  EXPECT_EQ(replay_failure_reason(ReplayFailure::kBadAnswer), "bad_answer");
  EXPECT_EQ(replay_failure_reason(ReplayFailure::kPaused), "paused");
  EXPECT_EQ(subscriber_drop_reason(SubscriberDrop::kCorruptedSeq), "corrupted_seq");
}

TEST(RelayedEngineSubscriberLimitsTest, ASilentReplayEndpointDoesNotStallTheLiveStreamForEveryGap) {
  zmq::context_t context;
  ReplayStub silent(context, {});
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.replay_endpoint = silent.endpoint();
  options.replay_timeout_ms = 300;
  options.log = [](std::string_view) {};
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  engine.send_batch(0, payload_for(0));
  ASSERT_TRUE(sink.wait_for_batches(1));
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t seq = 2; seq <= 20; seq += 2) engine.send_batch(seq, payload_for(seq));  // 10 gaps
  ASSERT_TRUE(sink.wait_for_batches(11));
  const auto took = std::chrono::steady_clock::now() - started;
  subscriber->stop();

  const auto& counters = subscriber->counters();
  EXPECT_EQ(counters.gaps, 10u);
  EXPECT_EQ(counters.missing_batches, 10u);
  EXPECT_EQ(counters.replays_requested, 2u);  // then the endpoint is left alone for 1 s
  EXPECT_EQ(counters.replay_failures_for(ReplayFailure::kTimeout), 2u);
  EXPECT_EQ(counters.replay_failures_for(ReplayFailure::kPaused), 8u);
  EXPECT_EQ(silent.requests(), 2);
  EXPECT_LT(took, std::chrono::milliseconds(10 * 300));
}

TEST(RelayedEngineSubscriberLimitsTest, AGarbageReplayAnswerIsCountedAsABadAnswer) {
  zmq::context_t context;
  // A random-looking seq far past the gap and a payload that is not msgpack.
  ReplayStub garbage(context, {{}, {0x9c, 0x41, 0x07, 0xe2, 0x55, 0x10, 0xaa, 0x3b}, {1, 2, 3}});
  RawEngine engine(context);
  RecordingSink sink;
  RelayedEngineSubscriberOptions options;
  options.endpoint = engine.endpoint();
  options.replay_endpoint = garbage.endpoint();
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  options.log = [&](std::string_view line) {
    std::lock_guard lock(lines_mutex);
    lines.emplace_back(line);
  };
  auto subscriber = start_subscriber(context, options, sink);
  ASSERT_TRUE(engine.wait_for_subscriber());
  engine.send_batch(0, payload_for(0));
  engine.send_batch(6, payload_for(6));
  ASSERT_TRUE(sink.wait_for_batches(2));
  subscriber->stop();

  const auto& counters = subscriber->counters();
  EXPECT_EQ(counters.replays_requested, 1u);
  EXPECT_EQ(counters.replay_failures_for(ReplayFailure::kBadAnswer), 1u);
  EXPECT_EQ(counters.replay_failures_for(ReplayFailure::kEvicted), 0u);
  EXPECT_EQ(counters.missing_batches, 5u);
  EXPECT_EQ(sink.calls().size(), 2u);
  std::lock_guard lock(lines_mutex);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("replay bad_answer"), std::string::npos) << lines.back();
}

}  // namespace
}  // namespace kvmock
