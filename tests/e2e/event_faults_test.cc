// Event faults through a real kvmockd and nats-server (docs/faults.md#event-faults): set on
// a worker's port with POST /admin/config, they act on the KV events a router receives
// while the worker's own indexer keeps the truth. With event_drop_rate a subscriber sees
// gaps in the ids and the indexer query returns exactly the missing events; with
// event_duplicate_rate an event arrives twice, the same bytes; with event_delay_ms no event
// arrives sooner than the delay.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "core/events/kv_query_codec.h"
#include "core/events/subjects.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"
#include "transport/zmq/seq_frame.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr WorkerId kWorker = 5000;

// One event-plane message as a router receives it: the raw bytes and what they decode to.
struct Received {
  std::vector<uint8_t> data;
  RouterEvent event;
  Clock::time_point at;
};

// A raw subscription to the core-NATS event plane: keeps each message's bytes, so
// duplicates can be compared byte for byte.
class RawEventSubscription {
 public:
  RawEventSubscription(NatsClient& client, const std::string& subject) {
    EXPECT_EQ(natsConnection_SubscribeSync(&subscription_, client.connection(), subject.c_str()),
              NATS_OK);
    if (subscription_ == nullptr) return;
    natsSubscription_SetPendingLimits(subscription_, -1, -1);
    natsConnection_Flush(client.connection());
  }
  ~RawEventSubscription() { natsSubscription_Destroy(subscription_); }
  RawEventSubscription(const RawEventSubscription&) = delete;
  RawEventSubscription& operator=(const RawEventSubscription&) = delete;

  // Every message until the subject has been quiet for `quiet`, at most for `limit`.
  std::vector<Received> drain(milliseconds quiet, milliseconds limit = milliseconds(15000)) {
    std::vector<Received> out;
    if (subscription_ == nullptr) return out;
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      natsMsg* msg = nullptr;
      if (natsSubscription_NextMsg(&msg, subscription_, quiet.count()) != NATS_OK) break;
      Received received;
      received.at = Clock::now();
      const auto* bytes = reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg));
      received.data.assign(bytes, bytes + natsMsg_GetDataLength(msg));
      auto decoded = testing::decode_published_event(msg);
      natsMsg_Destroy(msg);
      EXPECT_TRUE(decoded.ok());
      if (!decoded) continue;
      received.event = std::move(decoded->event);
      out.push_back(std::move(received));
    }
    return out;
  }

 private:
  natsSubscription* subscription_ = nullptr;
};

class EventFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.start());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nfaults:\n  seed: 17\nworkers:\n  count: 1\n" +
        "  worker_id_base: " + std::to_string(kWorker) + "\n  http_host: 127.0.0.1\n" +
        "  http_base_port: " + std::to_string(http_port_) +
        "\n  engine:\n    block_size: 4\n    num_gpu_blocks: 4096\n" + extra_worker_config());
    daemon_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    ASSERT_TRUE(testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10)))
        << daemon_->output();
    client_ = testing::connect_test_client(nats_.url());
    ASSERT_TRUE(client_);
    events_ = std::make_unique<RawEventSubscription>(
        *client_, kv_events_subject("dynamo", "backend", "kv-events"));
  }
  // More of the `workers:` section (indented by two).
  virtual std::string extra_worker_config() { return ""; }

  void TearDown() override {
    events_.reset();
    client_.reset();
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(15)), 0) << daemon_->output();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  void configure(const std::string& patch) {
    const auto answer = testing::http_request(http_port_, "POST", "/admin/config", patch);
    ASSERT_EQ(answer.status, 200) << answer.body;
  }
  // `count` completions with prompts of their own, so each stores new blocks.
  void complete(int count, int first) {
    for (int i = first; i < first + count; ++i) {
      std::string prompt;
      for (int word = 0; word < 12; ++word) {
        prompt += "r" + std::to_string(i) + "w" + std::to_string(word) + " ";
      }
      const auto answer =
          testing::http_request(http_port_, "POST", "/v1/completions",
                                nlohmann::json{{"prompt", prompt}, {"max_tokens", 2}}.dump());
      ASSERT_EQ(answer.status, 200) << answer.body;
    }
  }
  // The worker's indexer, asked as a router asks it: events `start`..`end` of rank 0.
  std::optional<QueryEvents> query(EventId start, EventId end) {
    const std::string body = encode_worker_kv_query_request_json({kWorker, 0, start, end});
    const std::string subject = kv_indexer_query_subject("dynamo", kWorker);
    natsMsg* reply = nullptr;
    const natsStatus s = natsConnection_Request(&reply, client_->connection(), subject.c_str(),
                                                body.data(), static_cast<int>(body.size()), 3000);
    if (s != NATS_OK) {
      ADD_FAILURE() << "no reply from " << subject << ": " << natsStatus_GetText(s);
      return std::nullopt;
    }
    auto response = decode_worker_kv_query_response_json(
        std::string_view(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    if (!response.ok() || !std::holds_alternative<QueryEvents>(*response)) {
      ADD_FAILURE() << "not a range of events: "
                    << (response.ok() ? "another answer" : response.error().message);
      return std::nullopt;
    }
    return std::get<QueryEvents>(*response);
  }
  uint64_t injected(const std::string& type) {
    const std::string metrics = testing::http_request(http_port_, "GET", "/metrics").body;
    const std::string series = "kvmock_faults_injected_total{worker_id=\"" +
                               std::to_string(kWorker) + "\",type=\"" + type + "\"} ";
    const size_t at = metrics.find(series);
    if (at == std::string::npos) {
      ADD_FAILURE() << "no series " << series;
      return 0;
    }
    return std::stoull(metrics.substr(at + series.size()));
  }

  testing::NatsServer nats_;
  uint16_t admin_port_ = 0;
  uint16_t http_port_ = 0;
  std::string config_path_;
  std::unique_ptr<testing::ChildProcess> daemon_;
  std::unique_ptr<NatsClient> client_;
  std::unique_ptr<RawEventSubscription> events_;
};

TEST_F(EventFaultsTest, DroppedEventsAreGapsThatTheIndexerQueryFillsExactly) {
  configure(R"({"event_drop_rate":40})");
  complete(20, 0);
  const std::vector<Received> received = events_->drain(milliseconds(1000));
  ASSERT_FALSE(received.empty());

  std::map<EventId, RouterEvent> seen;
  for (const Received& r : received) {
    ASSERT_EQ(r.event.worker_id, kWorker);
    ASSERT_EQ(r.event.event.dp_rank, 0u);
    EXPECT_TRUE(seen.emplace(r.event.event.event_id, r.event).second)
        << "event " << r.event.event.event_id << " arrived twice";
  }
  // The indexer has every event from 1 on (a fresh worker's buffer holds them all).
  auto all = query(1, seen.rbegin()->first + 1000);
  ASSERT_TRUE(all.has_value());
  const EventId last = all->last_event_id;
  ASSERT_EQ(all->events.size(), last);
  std::vector<EventId> missing;
  for (const RouterEvent& truth : all->events) {
    const EventId id = truth.event.event_id;
    auto it = seen.find(id);
    if (it == seen.end()) {
      missing.push_back(id);
    } else {
      EXPECT_EQ(it->second.event.data, truth.event.data) << "event " << id;
    }
  }
  // Some ids are gaps, most are not; every one received is the indexer's.
  EXPECT_EQ(seen.size() + missing.size(), last);
  EXPECT_GE(missing.size(), 1u);
  EXPECT_LT(missing.size(), last);
  EXPECT_EQ(injected("event_drop"), missing.size());

  // A router asks for each gap and gets exactly the event it missed.
  for (EventId id : missing) {
    auto gap = query(id, id);
    ASSERT_TRUE(gap.has_value());
    ASSERT_EQ(gap->events.size(), 1u) << id;
    EXPECT_EQ(gap->events[0].event.event_id, id);
    EXPECT_EQ(gap->events[0], all->events[id - 1]);
  }
}

TEST_F(EventFaultsTest, DuplicatesArriveAsTheSameBytesTwice) {
  configure(R"({"event_duplicate_rate":100})");
  complete(3, 100);
  const std::vector<Received> received = events_->drain(milliseconds(1000));
  ASSERT_GE(received.size(), 2u);
  ASSERT_EQ(received.size() % 2, 0u);
  for (size_t i = 0; i < received.size(); i += 2) {
    EXPECT_EQ(received[i].data, received[i + 1].data) << "message " << i;
    EXPECT_EQ(received[i].event.event.event_id, i / 2 + 1);
  }
  EXPECT_EQ(injected("event_duplicate"), received.size() / 2);

  // Back to none: each event once, the ids continuing.
  configure(R"({"event_duplicate_rate":0})");
  complete(1, 200);
  const std::vector<Received> after = events_->drain(milliseconds(1000));
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.front().event.event.event_id, received.size() / 2 + 1);
  for (size_t i = 1; i < after.size(); ++i) {
    EXPECT_EQ(after[i].event.event.event_id, after[i - 1].event.event.event_id + 1);
  }
}

TEST_F(EventFaultsTest, DelayedEventsArriveNoSoonerThanTheDelayAndInOrder) {
  configure(R"({"event_delay_ms":800})");
  const auto sent = Clock::now();
  complete(2, 300);
  const std::vector<Received> received = events_->drain(milliseconds(2500));
  ASSERT_FALSE(received.empty());
  for (size_t i = 0; i < received.size(); ++i) {
    EXPECT_GE(received[i].at - sent, milliseconds(800)) << "message " << i;
    EXPECT_EQ(received[i].event.event.event_id, i + 1);
  }
  EXPECT_EQ(injected("event_delay"), received.size());
}

// The same faults on the vLLM-format ZMQ output (workers.zmq_events): per batch, a drop is
// a gap in the live seq that the replay socket fills, a duplicate the same frames twice.
class ZmqEventFaultsTest : public EventFaultsTest {
 protected:
  std::string extra_worker_config() override {
    pub_port_ = testing::free_loopback_port();
    replay_port_ = testing::free_loopback_port();
    return "  zmq_events:\n    enabled: true\n    base_port: " + std::to_string(pub_port_) +
           "\n    replay_base_port: " + std::to_string(replay_port_) + "\n";
  }

  static std::vector<zmq::message_t> receive(zmq::socket_t& socket, milliseconds timeout) {
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, timeout);
    if (item.revents & ZMQ_POLLIN) {
      (void)zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait);
    }
    return frames;
  }
  static uint64_t seq_of(const zmq::message_t& frame) {
    return decode_seq_frame({frame.data<uint8_t>(), frame.size()}).value_or(UINT64_MAX);
  }
  static std::string text(const zmq::message_t& frame) { return frame.to_string(); }

  // Every live message until the PUB has been quiet for `quiet` (at most 200 messages).
  std::vector<std::vector<zmq::message_t>> drain(zmq::socket_t& sub, milliseconds quiet) {
    std::vector<std::vector<zmq::message_t>> out;
    while (out.size() < 200) {
      auto frames = receive(sub, quiet);
      if (frames.empty()) break;
      out.push_back(std::move(frames));
    }
    return out;
  }

  int pub_port_ = 0;
  int replay_port_ = 0;
  zmq::context_t context_;
};

TEST_F(ZmqEventFaultsTest, DroppedBatchesAreSeqGapsThatReplayFillsAndDuplicatesRepeatTheFrames) {
  zmq::socket_t sub(context_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect("tcp://127.0.0.1:" + std::to_string(pub_port_));
  // Requests until the subscription has joined (a PUB sends nothing before), then quiet.
  bool joined = false;
  for (int i = 0; i < 50 && !joined; ++i) {
    complete(1, 1000 + i);
    joined = !receive(sub, milliseconds(100)).empty();
  }
  ASSERT_TRUE(joined);
  drain(sub, milliseconds(500));

  configure(R"({"event_drop_rate":50})");
  complete(15, 400);
  const auto live = drain(sub, milliseconds(1000));
  ASSERT_GE(live.size(), 2u);
  std::set<uint64_t> seen;
  for (const auto& frames : live) {
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_TRUE(seen.insert(seq_of(frames[1])).second) << "seq " << seq_of(frames[1]) << " twice";
  }
  uint64_t first_gap = 0;
  for (uint64_t seq = *seen.begin(); seq < *seen.rbegin(); ++seq) {
    if (!seen.count(seq)) {
      first_gap = seq;
      break;
    }
  }
  ASSERT_GT(first_gap, 0u) << "no gap in " << seen.size() << " batches";

  // A reader that noticed the gap asks the replay socket from there and gets every batch,
  // the missing ones too; those it saw are the same bytes.
  zmq::socket_t dealer(context_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("tcp://127.0.0.1:" + std::to_string(replay_port_));
  const auto start = encode_seq_frame(first_gap);
  std::array<zmq::const_buffer, 2> request = {zmq::const_buffer(nullptr, 0), zmq::buffer(start)};
  (void)zmq::send_multipart(dealer, request);
  std::map<uint64_t, std::string> replayed;
  for (int i = 0; i < 500; ++i) {
    auto frames = receive(dealer, milliseconds(5000));
    ASSERT_EQ(frames.size(), 4u);
    const uint64_t seq = seq_of(frames[2]);
    if (seq == kReplayEndSeq) break;
    replayed[seq] = text(frames[3]);
  }
  for (uint64_t seq = first_gap; seq <= *seen.rbegin(); ++seq) {
    EXPECT_TRUE(replayed.count(seq)) << "seq " << seq << " not replayed";
  }
  for (const auto& frames : live) {
    const uint64_t seq = seq_of(frames[1]);
    if (seq >= first_gap) {
      EXPECT_EQ(replayed[seq], text(frames[2])) << "seq " << seq;
    }
  }

  configure(R"({"event_drop_rate":0,"event_duplicate_rate":100})");
  complete(2, 500);
  const auto twice = drain(sub, milliseconds(1000));
  ASSERT_GE(twice.size(), 2u);
  ASSERT_EQ(twice.size() % 2, 0u);
  for (size_t i = 0; i < twice.size(); i += 2) {
    ASSERT_EQ(twice[i].size(), 3u);
    ASSERT_EQ(twice[i + 1].size(), 3u);
    for (size_t frame = 0; frame < 3; ++frame) {
      EXPECT_EQ(text(twice[i][frame]), text(twice[i + 1][frame])) << "message " << i;
    }
  }
}

}  // namespace
}  // namespace kvmock
