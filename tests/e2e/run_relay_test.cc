// `kvmockd run` as a user runs it: a config file with one relay, a real nats-server, a
// vLLM-format engine on ZMQ, readiness and metrics over HTTP, and SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <numeric>
#include <thread>

#include "core/events/engine_payload_codec.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {
namespace {

using testing::ChildProcess;
using testing::EventSubscriber;
using testing::http_request;
using testing::NatsServer;

std::vector<uint8_t> store_payload(uint64_t i) {
  EngineBatch batch;
  batch.ts = 1.0;
  batch.dp_rank = 0;
  auto& s = std::get<EngineBlockStored>(batch.events.emplace_back(EngineBlockStored{}));
  s.block_hashes = {i + 1};
  if (i > 0) s.parent_block_hash = i;
  s.token_ids.resize(16);
  std::iota(s.token_ids.begin(), s.token_ids.end(), static_cast<TokenId>(i * 16));
  s.block_size = 16;
  s.medium = "GPU";
  return encode_engine_payload(batch, {});
}

class RunRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start());
    VllmZmqEventPublisherOptions options;
    options.bind_host = "127.0.0.1";
    engine_ = std::move(VllmZmqEventPublisher::start(zmq_, options)).value();
    admin_port_ = testing::free_loopback_port();
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + server_.url() +
        "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
        "\nworkers:\n  count: 0\nrelays:\n  - endpoint: " + engine_->endpoint() +
        "\n    worker_id: 7\n    block_size: 16\n");
    client_ = testing::connect_test_client(server_.url());
    ASSERT_TRUE(client_);
    router_ =
        std::make_unique<EventSubscriber>(*client_, "namespace.dynamo.component.backend.kv-events");
    ASSERT_TRUE(router_->subscribed());
  }
  void TearDown() override {
    router_.reset();
    engine_->stop();
    ::unlink(config_path_.c_str());
  }

  bool wait_ready(std::chrono::seconds timeout) {
    return testing::wait_for_status(admin_port_, "/ready", 200, timeout);
  }

  std::vector<EventId> receive(size_t count) {
    std::vector<EventId> ids;
    for (size_t i = 0; i < count; ++i) {
      auto event = router_->next();
      if (!event) break;
      ids.push_back(event->event.event_id);
    }
    return ids;
  }

  NatsServer server_;
  zmq::context_t zmq_{1};
  std::unique_ptr<VllmZmqEventPublisher> engine_;
  std::unique_ptr<NatsClient> client_;
  std::unique_ptr<EventSubscriber> router_;
  int admin_port_ = 0;
  std::string config_path_;
};

TEST_F(RunRelayTest, RelaysEventsServesMetricsAndFlushesOnSigterm) {
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  ASSERT_TRUE(wait_ready(std::chrono::seconds(10))) << daemon.output();
  EXPECT_EQ(http_request(admin_port_, "GET", "/health").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // SUB joins the PUB

  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(engine_->publish(store_payload(i)).ok());
  const auto first = receive(100);
  ASSERT_EQ(first.size(), 100u) << daemon.output();
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i], i + 1);

  const auto metrics = http_request(admin_port_, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("kvmock_relay_batches_total{relay=\"" + engine_->endpoint() +
                              "\",worker_id=\"7\"} 100"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("kvmock_nats_connected 1"), std::string::npos);

  // Events produced right before the signal still reach NATS.
  for (uint64_t i = 100; i < 300; ++i) ASSERT_TRUE(engine_->publish(store_payload(i)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
  const auto rest = receive(200);
  ASSERT_EQ(rest.size(), 200u);
  EXPECT_EQ(rest.back(), 300u);
  EXPECT_NE(daemon.output().find("every event was published to NATS"), std::string::npos)
      << daemon.output();
}

TEST_F(RunRelayTest, ReadinessIsFalseWithoutNatsAndABadConfigExitsTwo) {
  server_.stop();
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto ready = http_request(admin_port_, "GET", "/ready");
  EXPECT_EQ(ready.status, 503) << daemon.output();
  EXPECT_NE(ready.body.find("\"check\":\"nats\""), std::string::npos) << ready.body;
  daemon.signal(SIGINT);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();

  const std::string bad = testing::write_temp_file(
      "workers:\n  count: 0\nrelays:\n  - endpoint: tcp://127.0.0.1:1\n    worker_id: 7\n    "
      "blok_size: 16\n");
  const auto result = testing::run_process({testing::kvmockd_path(), "run", "--config", bad}, "");
  EXPECT_EQ(result.exit_status, 2);
  EXPECT_NE(result.err.find("blok_size"), std::string::npos) << result.err;
  ::unlink(bad.c_str());
}

// A NATS server that demands a password: with the wrong one nats.c gives up, and the daemon
// stays unready, says so on /ready and in its log, and still stops cleanly; with the right
// one it is ready.
TEST(RunRelayAuth, AWrongPasswordShowsOnReadyAndInTheLogAndTheRightOneConnects) {
  NatsServer server({"--user", "kvmock", "--pass", "s3cret"});
  ASSERT_TRUE(server.start());
  const int admin_port = testing::free_loopback_port();
  auto config_for = [&](const std::string& password) {
    return testing::write_temp_file(
        "nats:\n  url: " + server.url() + "\n  user: kvmock\n  password: " + password +
        "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
        "\nworkers:\n  count: 0\nrelays:\n  - endpoint: tcp://127.0.0.1:1\n    worker_id: 7\n");
  };
  const std::string wrong = config_for("wrong");
  {
    ChildProcess daemon({testing::kvmockd_path(), "run", "--config", wrong});
    testing::HttpResult ready;
    for (int i = 0; i < 100 && ready.body.find("closed") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ready = http_request(admin_port, "GET", "/ready", "", std::chrono::milliseconds(500));
    }
    EXPECT_EQ(ready.status, 503) << daemon.output();
    EXPECT_NE(ready.body.find(R"({"check":"nats","reason":"closed: )"), std::string::npos)
        << ready.body;
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait(std::chrono::seconds(15)), 0) << daemon.output();
    EXPECT_NE(daemon.output().find("connection closed for good"), std::string::npos)
        << daemon.output();
  }
  const std::string right = config_for("s3cret");
  {
    ChildProcess daemon({testing::kvmockd_path(), "run", "--config", right});
    EXPECT_TRUE(testing::wait_for_status(admin_port, "/ready", 200, std::chrono::seconds(10)))
        << daemon.output();
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
  }
  ::unlink(wrong.c_str());
  ::unlink(right.c_str());
}

}  // namespace
}  // namespace kvmock
