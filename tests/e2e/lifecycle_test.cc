// `kvmockd run` lifecycle as an operator sees it: on SIGTERM readiness goes false and new
// requests get 503 while in-flight ones finish; a second signal exits at once;
// `--log-format json` makes every log line JSON; a flood of bad input produces rate-limited
// warnings that count what they suppressed.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/events/engine_payload_codec.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/zmq_test_support.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {
namespace {

using testing::ChildProcess;
using testing::http_request;

constexpr int kTokens = 30;
constexpr double kDecodeMs = 60;  // a request takes about kTokens x kDecodeMs = 1.8 s

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    worker_port_ = static_cast<uint16_t>(testing::free_loopback_port());
  }
  void TearDown() override {
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  // One slow worker (fixed timing) serving HTTP; `extra` is appended to the YAML.
  std::vector<std::string> slow_worker_command(int grace_s, const std::string& extra = "") {
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + server_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nshutdown:\n  grace_s: " + std::to_string(grace_s) +
        "\n  flush_deadline_s: 2\nworkers:\n  count: 1\n  http_base_port: " +
        std::to_string(worker_port_) +
        "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 256\n    timing:\n"
        "      model: fixed\n      fixed_prefill_ms: 20\n      fixed_decode_ms: " +
        std::to_string(kDecodeMs) + "\n" + extra);
    return {testing::kvmockd_path(), "run", "--config", config_path_};
  }

  bool ready() {
    return testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10));
  }

  // Starts a streaming completion on another thread; `first_token` is set when the first
  // chunk arrives. The result lands in `result` when the stream ends.
  std::jthread stream_in_background(std::atomic<bool>& first_token, testing::HttpResult& result) {
    return std::jthread([this, &first_token, &result] {
      result = testing::http_stream(
          worker_port_, "POST", "/v1/completions",
          R"({"prompt":"a slow request","max_tokens":)" + std::to_string(kTokens) +
              R"(,"stream":true})",
          [&first_token](const std::string&) {
            first_token = true;
            return true;
          },
          std::chrono::seconds(30));
    });
  }

  testing::NatsServer server_;
  uint16_t admin_port_ = 0;
  uint16_t worker_port_ = 0;
  std::string config_path_;
};

TEST_F(LifecycleTest, SigtermTurnsReadinessOffRefusesNewRequestsAndFinishesInFlightOnes) {
  ChildProcess daemon(slow_worker_command(/*grace_s=*/10));
  ASSERT_TRUE(ready()) << daemon.output();
  std::atomic<bool> first_token{false};
  testing::HttpResult in_flight;
  std::jthread stream = stream_in_background(first_token, in_flight);
  ASSERT_TRUE(testing::wait_until([&] { return first_token.load(); }, std::chrono::seconds(10)))
      << daemon.output();

  daemon.signal(SIGTERM);
  // Readiness goes false and says why, while the admin server still answers.
  ASSERT_TRUE(testing::wait_for_status(admin_port_, "/ready", 503, std::chrono::seconds(2)))
      << daemon.output();
  const auto ready_body =
      nlohmann::json::parse(http_request(admin_port_, "GET", "/ready").body, nullptr, false);
  ASSERT_TRUE(ready_body.is_object());
  EXPECT_EQ(ready_body["ready"], false);
  EXPECT_NE(ready_body["not_ready"].dump().find("shutting down"), std::string::npos) << ready_body;
  EXPECT_EQ(http_request(admin_port_, "GET", "/health").status, 200);

  // New requests are refused with 503 while the old one is still streaming.
  const auto refused = http_request(worker_port_, "POST", "/v1/completions",
                                    R"({"prompt":"too late","max_tokens":2})");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_TRUE(daemon.running());

  stream.join();
  EXPECT_EQ(in_flight.status, 200) << in_flight.error;
  EXPECT_NE(in_flight.body.find("\"finish_reason\":\"length\""), std::string::npos)
      << in_flight.body;
  EXPECT_NE(in_flight.body.find("data: [DONE]"), std::string::npos) << in_flight.body;
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
  EXPECT_EQ(daemon.output().find("grace period over"), std::string::npos) << daemon.output();
}

TEST_F(LifecycleTest, GracePeriodOverCancelsWhatIsStillRunningAndExitsZero) {
  ChildProcess daemon(slow_worker_command(/*grace_s=*/0));
  ASSERT_TRUE(ready()) << daemon.output();
  std::atomic<bool> first_token{false};
  testing::HttpResult in_flight;
  std::jthread stream = stream_in_background(first_token, in_flight);
  ASSERT_TRUE(testing::wait_until([&] { return first_token.load(); }, std::chrono::seconds(10)));
  const auto signalled = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(3));
  stream.join();
  // Cancelled, as vLLM reports an aborted request.
  EXPECT_NE(in_flight.body.find("\"finish_reason\":\"abort\""), std::string::npos)
      << in_flight.body;
  EXPECT_NE(daemon.output().find("grace period over: cancelling 1 requests"), std::string::npos)
      << daemon.output();
}

TEST_F(LifecycleTest, ASecondSignalExitsAtOnce) {
  ChildProcess daemon(slow_worker_command(/*grace_s=*/60));
  ASSERT_TRUE(ready()) << daemon.output();
  std::atomic<bool> first_token{false};
  testing::HttpResult in_flight;
  std::jthread stream = stream_in_background(first_token, in_flight);
  ASSERT_TRUE(testing::wait_until([&] { return first_token.load(); }, std::chrono::seconds(10)));
  daemon.signal(SIGTERM);
  ASSERT_TRUE(testing::wait_for_status(admin_port_, "/ready", 503, std::chrono::seconds(2)));
  EXPECT_TRUE(daemon.running()) << "the first signal waits for the in-flight request";

  const auto signalled = std::chrono::steady_clock::now();
  daemon.signal(SIGINT);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(2)), 130) << daemon.output();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(1));
  EXPECT_NE(daemon.output().find("second Interrupt, exiting at once"), std::string::npos)
      << daemon.output();
  stream.join();
}

// /ready must not say yes while the daemon is still opening worker ports: a load balancer
// would send requests to ports that refuse them. Many workers make the start slow enough
// for the admin server to be polled in between.
TEST_F(LifecycleTest, ReadinessWaitsUntilEveryWorkerPortListens) {
  constexpr int kCount = 256;
  const int base = testing::free_loopback_port_range(kCount);
  ASSERT_GT(base, 0);
  config_path_ =
      testing::write_temp_file("nats:\n  url: " + server_.url() +
                               "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
                               "\nworkers:\n  count: " + std::to_string(kCount) +
                               "\n  http_base_port: " + std::to_string(base) +
                               "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 64\n");
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int polls = 0, not_ready = 0;
  testing::HttpResult ready;
  while (std::chrono::steady_clock::now() < deadline) {
    ready = http_request(admin_port_, "GET", "/ready", "", std::chrono::milliseconds(500));
    ++polls;
    if (ready.status == 200) break;
    if (ready.status == 503) ++not_ready;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(ready.status, 200) << daemon.output();
  const auto last = http_request(static_cast<uint16_t>(base + kCount - 1), "GET", "/v1/models");
  EXPECT_EQ(last.status, 200) << last.error << " after " << polls << " polls, " << not_ready
                              << " not ready";
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(15)), 0) << daemon.output();
}

// Every line the daemon writes with --log-format json is a JSON object with ts, level,
// component and msg; a flood of undecodable engine payloads gives a rate-limited warning
// whose next occurrence carries the number of lines suppressed.
TEST_F(LifecycleTest, JsonLogLinesAndRateLimitedWarningsWithASuppressedCount) {
  zmq::context_t zmq(1);
  VllmZmqEventPublisherOptions options;
  options.bind_host = "127.0.0.1";
  auto engine = std::move(VllmZmqEventPublisher::start(zmq, options)).value();
  config_path_ = testing::write_temp_file(
      "nats:\n  url: " + server_.url() +
      "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
      "\nworkers:\n  count: 0\nrelays:\n  - endpoint: " + engine->endpoint() +
      "\n    worker_id: 7\n");
  ChildProcess daemon(
      {testing::kvmockd_path(), "run", "--config", config_path_, "--log-format", "json"});
  ASSERT_TRUE(ready()) << daemon.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // SUB joins the PUB

  const std::vector<uint8_t> garbage = {0xc1, 0xc1, 0xc1};  // 0xc1: never valid msgpack
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(engine->publish(garbage).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // past the 1 s limit
  ASSERT_TRUE(engine->publish(garbage).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
  engine->stop();

  std::istringstream lines(daemon.output());
  std::string line;
  int count = 0, undecodable = 0;
  uint64_t suppressed = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON line: " << line;
    for (const char* key : {"ts", "level", "component", "msg"}) {
      ASSERT_TRUE(j.contains(key) && j[key].is_string()) << line;
    }
    ++count;
    if (j["msg"].get<std::string>().find("undecodable payload") != std::string::npos) {
      EXPECT_EQ(j["level"], "warn");
      ++undecodable;
      if (j.contains("suppressed")) suppressed += j["suppressed"].get<uint64_t>();
    }
  }
  EXPECT_GT(count, 3);
  EXPECT_EQ(undecodable, 2) << daemon.output();  // the first, and the one after the interval
  EXPECT_EQ(suppressed, 49u) << daemon.output();
}

}  // namespace
}  // namespace kvmock
