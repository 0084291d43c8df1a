#include "transport/nats/nats_publisher.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <thread>

#include "tests/support/nats_server.h"

namespace kvmock {
namespace {

using testing::NatsServer;
using Clock = std::chrono::steady_clock;

OutboundMessage numbered(const std::string& subject, uint64_t n) {
  OutboundMessage m;
  m.subject = std::make_shared<const std::string>(subject);
  m.data.resize(8);
  std::memcpy(m.data.data(), &n, 8);
  m.msg_id = "test-" + std::to_string(n);
  m.durable = true;  // ignored on the core plane
  return m;
}

uint64_t number_of(const void* data) {
  uint64_t n = 0;
  std::memcpy(&n, data, 8);
  return n;
}

std::unique_ptr<NatsClient> connect_to(const NatsServer& server) {
  NatsClientOptions options;
  options.urls = {server.url()};
  auto client = NatsClient::connect(options);
  EXPECT_TRUE(client.ok());
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(NatsPublisher, CorePublishesEverythingInOrder) {
  NatsServer server;
  ASSERT_TRUE(server.start());
  auto client = connect_to(server);
  ASSERT_TRUE(client->wait_connected(5000));
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, client->connection(), "kv.core"), NATS_OK);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  ASSERT_EQ(natsConnection_Flush(client->connection()), NATS_OK);

  Outbox outbox(100000);
  NatsPublisher publisher(*client, outbox, {});
  publisher.start();
  constexpr uint64_t kCount = 20000;
  for (uint64_t i = 0; i < kCount; ++i)
    ASSERT_TRUE(outbox.push(numbered("kv.core", i), std::chrono::seconds(5)));
  for (uint64_t i = 0; i < kCount; ++i) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(natsSubscription_NextMsg(&msg, sub, 5000), NATS_OK) << "at " << i;
    ASSERT_EQ(number_of(natsMsg_GetData(msg)), i);
    natsMsg_Destroy(msg);
  }
  EXPECT_EQ(publisher.stop(Clock::now() + std::chrono::seconds(1)), 0u);
  EXPECT_EQ(publisher.published(), kCount);
  natsSubscription_Destroy(sub);
}

TEST(NatsPublisher, CoreHoldsEventsWhileDisconnectedAndSendsThemAfter) {
  NatsServer server;
  auto client = connect_to(server);  // server not started yet
  Outbox outbox(1000);
  NatsPublisher publisher(*client, outbox, {});
  publisher.start();
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(outbox.try_push(numbered("kv.held", i)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(outbox.size(), 100u);
  EXPECT_EQ(publisher.published(), 0u);
  EXPECT_GT(outbox.oldest_age_seconds(), 0.1);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(client->wait_connected(10000));
  for (int i = 0; i < 500 && publisher.published() < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(publisher.published(), 100u);
  EXPECT_EQ(outbox.size(), 0u);
}

TEST(NatsPublisher, FullOutboxRefusesInsteadOfGrowing) {
  Outbox outbox(2);
  EXPECT_TRUE(outbox.try_push(numbered("s", 1)));
  EXPECT_TRUE(outbox.try_push(numbered("s", 2)));
  EXPECT_FALSE(outbox.try_push(numbered("s", 3)));
  EXPECT_FALSE(outbox.wait_for_room(std::chrono::milliseconds(10)));
  EXPECT_FALSE(outbox.push(numbered("s", 3), std::chrono::milliseconds(10)));
  EXPECT_EQ(outbox.refused(), 2u);
  EXPECT_EQ(outbox.size(), 2u);
}

// Reads the whole stream by sequence number.
std::vector<uint64_t> stream_contents(NatsClient& client, const std::string& stream) {
  jsCtx* js = nullptr;
  EXPECT_EQ(natsConnection_JetStream(&js, client.connection(), nullptr), NATS_OK);
  std::vector<uint64_t> numbers;
  jsStreamInfo* info = nullptr;
  EXPECT_EQ(js_GetStreamInfo(&info, js, stream.c_str(), nullptr, nullptr), NATS_OK);
  const uint64_t last = info ? info->State.LastSeq : 0;
  if (info) jsStreamInfo_Destroy(info);
  for (uint64_t seq = 1; seq <= last; ++seq) {
    natsMsg* msg = nullptr;
    if (js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, nullptr) == NATS_OK) {
      numbers.push_back(number_of(natsMsg_GetData(msg)));
      natsMsg_Destroy(msg);
    }
  }
  jsCtx_Destroy(js);
  return numbers;
}

NatsPublisherOptions jetstream_options() {
  NatsPublisherOptions options;
  options.jetstream = true;
  options.stream.stream = "namespace-test-component-backend-kv-events";
  options.stream.subjects = {options.stream.stream + ".*"};
  options.ack_timeout_ms = 1000;
  return options;
}

// A nats-server, a client and a started JetStream publisher draining `outbox`. Members are
// destroyed in reverse order: the publisher before the outbox, client and server it uses.
struct JetStreamRig {
  explicit JetStreamRig(size_t outbox_capacity) : outbox(outbox_capacity) {}
  // Starts the server, connects and starts the publisher; false when the server does not
  // start.
  bool start() {
    if (!server.start()) return false;
    client = connect_to(server);
    if (!client) return false;
    publisher = std::make_unique<NatsPublisher>(*client, outbox, options);
    publisher->start();
    return true;
  }

  NatsServer server;
  std::unique_ptr<NatsClient> client;
  Outbox outbox;
  const NatsPublisherOptions options = jetstream_options();
  const std::string subject = options.stream.stream + ".kv_events";
  std::unique_ptr<NatsPublisher> publisher;
};

// Pushes messages 0..count-1 to `subject`, pausing `pause` after every `burst` of them.
std::thread produce_numbered(Outbox& outbox, const std::string& subject, uint64_t count,
                             uint64_t burst, std::chrono::milliseconds pause) {
  return std::thread([&outbox, subject, count, burst, pause] {
    for (uint64_t i = 0; i < count; ++i) {
      ASSERT_TRUE(outbox.push(numbered(subject, i), std::chrono::seconds(30)));
      if (i % burst == 0) std::this_thread::sleep_for(pause);
    }
  });
}

// Waits (bounded, 30 s) until the publisher has `count` acknowledgements.
void wait_acked(const NatsPublisher& publisher, uint64_t count) {
  for (int i = 0; i < 3000 && publisher.acked() < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The stream holds messages 0..count-1, each once, in order.
void expect_stream_in_order(NatsClient& client, const std::string& stream, uint64_t count) {
  const auto stored = stream_contents(client, stream);
  ASSERT_EQ(stored.size(), count);
  for (uint64_t i = 0; i < stored.size(); ++i) ASSERT_EQ(stored[i], i) << "order broken at " << i;
}

TEST(NatsPublisher, JetStreamCreatesTheStreamAndStoresEveryMessageOnce) {
  JetStreamRig rig(10000);
  ASSERT_TRUE(rig.start());
  NatsPublisher& publisher = *rig.publisher;
  for (uint64_t i = 0; i < 3000; ++i)
    ASSERT_TRUE(rig.outbox.push(numbered(rig.subject, i), std::chrono::seconds(5)));
  for (int i = 0; i < 1000 && publisher.acked() < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(publisher.stream_ready());
  EXPECT_EQ(publisher.stop(Clock::now() + std::chrono::seconds(2)), 0u);
  const auto stored = stream_contents(*rig.client, rig.options.stream.stream);
  ASSERT_EQ(stored.size(), 3000u);
  for (uint64_t i = 0; i < stored.size(); ++i) ASSERT_EQ(stored[i], i);
}

TEST(NatsPublisher, JetStreamSurvivesAServerOutageWithoutLossOrDuplicates) {
  JetStreamRig rig(100000);
  ASSERT_TRUE(rig.start());
  NatsPublisher& publisher = *rig.publisher;
  constexpr uint64_t kCount = 6000;
  std::thread producer =
      produce_numbered(rig.outbox, rig.subject, kCount, 100, std::chrono::milliseconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rig.server.stop();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(rig.server.start());
  producer.join();
  wait_acked(publisher, kCount);
  EXPECT_EQ(publisher.stop(Clock::now() + std::chrono::seconds(5)), 0u);
  ASSERT_TRUE(rig.client->wait_connected(5000));
  expect_stream_in_order(*rig.client, rig.options.stream.stream, kCount);
  EXPECT_GT(rig.client->reconnects(), 0u);
}

// The window at full width: a producer as fast as the outbox takes, the server killed and
// restarted three times under it (once with SIGKILL, no goodbye), and still every message
// stored once, in outbox order.
TEST(NatsPublisher, JetStreamKeepsOrderWithManyInFlightAcrossRepeatedOutages) {
  JetStreamRig rig(200000);
  ASSERT_TRUE(rig.start());
  NatsPublisher& publisher = *rig.publisher;
  constexpr uint64_t kCount = 30000;
  std::thread producer =
      produce_numbered(rig.outbox, rig.subject, kCount, 2000, std::chrono::milliseconds(5));
  for (int outage = 0; outage < 3; ++outage) {
    // Wait (bounded) until the publisher has stored more and has a backlog, so the server
    // goes away while messages are in flight, then take the server away.
    const uint64_t before = publisher.acked();
    for (int i = 0; i < 500 && publisher.acked() < kCount &&
                    (publisher.acked() < before + 2000 || rig.outbox.size() == 0);
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (outage == 1) {
      rig.server.crash();
    } else {
      rig.server.stop();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(rig.server.start());
  }
  producer.join();
  wait_acked(publisher, kCount);
  EXPECT_EQ(publisher.stop(Clock::now() + std::chrono::seconds(5)), 0u);
  EXPECT_EQ(publisher.acked(), kCount);
  EXPECT_GT(publisher.peak_in_flight(), 100u) << "the window opened";
  // Read with a fresh connection: the publisher's client may not have noticed the last
  // restart yet (it pings every 2 s) and would fail the first request.
  auto reader = connect_to(rig.server);
  ASSERT_TRUE(reader->wait_connected(10000));
  expect_stream_in_order(*reader, rig.options.stream.stream, kCount);
}

}  // namespace
}  // namespace kvmock
