// Faults on purpose through a real kvmockd (docs/faults.md): a worker's fault settings are
// read and merged on its port at /admin/config, a bad patch is refused naming the key and
// changes nothing, X-Kvmock-Fault forces one fault per request, failure_injection_rate fails
// that share of requests with the configured types, kvmock_faults_injected_total counts
// each, and faults.seed replays the same faults in another run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "tests/support/daemon_harness.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

using nlohmann::json;

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(nats_.start()); }
  void TearDown() override { stop_daemon(); }

  // `engine` is more YAML under workers.engine (4-space indented keys).
  void start_daemon(uint64_t seed, int workers = 1, const std::string& engine = "") {
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_port_ = static_cast<uint16_t>(testing::free_loopback_port_range(workers));
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nfaults:\n  seed: " + std::to_string(seed) +
        "\nworkers:\n  count: " + std::to_string(workers) +
        "\n  http_base_port: " + std::to_string(http_port_) +
        "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 1024\n" + engine);
    daemon_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    if (!testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10))) {
      FAIL() << "daemon not ready: " << daemon_->output();
    }
  }
  void stop_daemon() {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(15)), 0) << daemon_->output();
      daemon_.reset();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
    config_path_.clear();
  }

  testing::HttpResult configure(const std::string& patch) {
    return testing::http_request(http_port_, "POST", "/admin/config", patch);
  }
  testing::HttpResult complete(const std::map<std::string, std::string>& headers = {}) {
    return testing::http_request(http_port_, "POST", "/v1/completions",
                                 R"({"prompt":"one two three","max_tokens":2})", headers);
  }
  // The statuses of `count` completions in order.
  std::vector<int> statuses(int count) {
    std::vector<int> seen;
    for (int i = 0; i < count; ++i) seen.push_back(complete().status);
    return seen;
  }
  std::string metrics() { return testing::http_request(http_port_, "GET", "/metrics").body; }
  // The value of the first series of `name` in the worker's metrics, as written.
  std::string first_value(const std::string& name) {
    const std::string text = metrics();
    const size_t at = text.find("\n" + name + "{");
    if (at == std::string::npos) return "missing";
    const size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end - at - 1);
    return line.substr(line.rfind(' ') + 1);
  }

  testing::NatsServer nats_;
  uint16_t admin_port_ = 0;
  uint16_t http_port_ = 0;
  std::unique_ptr<testing::ChildProcess> daemon_;
  std::string config_path_;
};

TEST_F(FaultInjectionTest, SettingsAreReadMergedAndABadPatchChangesNothing) {
  start_daemon(1);
  const auto initial = testing::http_request(http_port_, "GET", "/admin/config");
  ASSERT_EQ(initial.status, 200) << initial.body;
  EXPECT_EQ(json::parse(initial.body),
            json::parse(R"({"failure_injection_rate":0.0,"failure_types":[],"paused":false,)"
                        R"("latency_scale":1.0,"jitter":0.0,"time_factor_under_load":1.0,)"
                        R"("event_drop_rate":0.0,"event_duplicate_rate":0.0,)"
                        R"("event_delay_ms":0.0})"));

  const auto set = configure(R"({"failure_injection_rate":12.5})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(json::parse(set.body)["failure_injection_rate"], 12.5);

  const auto bad = configure(R"({"failure_injection_rate":50,"failure_types":["teapot"]})");
  ASSERT_EQ(bad.status, 400) << bad.body;
  const json error = json::parse(bad.body)["error"];
  EXPECT_NE(error["message"].get<std::string>().find("failure_types: unknown fault type"),
            std::string::npos)
      << error;
  EXPECT_EQ(error["type"], "invalid_request_error");
  const auto after = testing::http_request(http_port_, "GET", "/admin/config");
  EXPECT_EQ(json::parse(after.body)["failure_injection_rate"], 12.5) << "the bad patch applied";
  EXPECT_EQ(testing::http_request(http_port_, "DELETE", "/admin/config").status, 405);
}

TEST_F(FaultInjectionTest, TheHeaderForcesEachFaultAsAClientSeesIt) {
  start_daemon(1);
  const std::map<std::string, std::pair<int, std::string>> expected = {
      {"rate_limit", {429, "rate_limit_exceeded"}},
      {"server_error", {500, "server_error"}},
      {"service_unavailable", {503, "service_unavailable"}},
      {"invalid_request", {400, "invalid_request"}},
      {"context_length", {400, "context_length_exceeded"}},
      {"model_not_found", {404, "model_not_found"}},
  };
  for (const auto& [type, answer] : expected) {
    const auto result = complete({{"X-Kvmock-Fault", type}});
    EXPECT_EQ(result.status, answer.first) << type << ": " << result.body;
    const json error = json::parse(result.body)["error"];
    EXPECT_EQ(error["code"], answer.second) << type;
    EXPECT_NE(error["message"].get<std::string>().find("injected"), std::string::npos) << type;
    EXPECT_TRUE(error.contains("param")) << type;
  }
  const auto unknown = complete({{"X-Kvmock-Fault", "teapot"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(json::parse(unknown.body)["error"]["code"], "bad_fault");
  EXPECT_EQ(complete().status, 200);  // without the header, no fault (rate 0)

  const std::string text = metrics();
  for (const auto& [type, answer] : expected) {
    EXPECT_NE(text.find("kvmock_faults_injected_total{worker_id=\"1000\",type=\"" + type + "\"} 1"),
              std::string::npos)
        << type << "\n"
        << text;
  }
}

TEST_F(FaultInjectionTest, ConnectionFaultsResetCutOrNeverAnswer) {
  start_daemon(1);
  // timeout: accepted, never answered; the client gives up at its deadline.
  const auto asked = std::chrono::steady_clock::now();
  const auto timed_out =
      testing::http_request(http_port_, "POST", "/v1/completions", R"({"prompt":"a b"})",
                            {{"X-Kvmock-Fault", "timeout"}}, std::chrono::milliseconds(700));
  EXPECT_EQ(timed_out.status, 0) << timed_out.body;
  EXPECT_GE(std::chrono::steady_clock::now() - asked, std::chrono::milliseconds(650));

  // connection_reset: a TCP reset, no answer.
  const auto reset = complete({{"X-Kvmock-Fault", "connection_reset"}});
  EXPECT_EQ(reset.status, 0);
  EXPECT_NE(reset.error.find("reset"), std::string::npos) << reset.error;

  // stream_cut on a stream: chunks arrive, then the connection ends without [DONE].
  const auto cut = testing::http_stream(
      http_port_, "POST", "/v1/completions",
      R"({"prompt":"one two three","max_tokens":8,"ignore_eos":true,"stream":true})",
      {{"X-Kvmock-Fault", "stream_cut"}}, [](const std::string&) { return true; });
  EXPECT_EQ(cut.status, 200) << cut.error;
  EXPECT_NE(cut.body.find("data: {"), std::string::npos) << cut.body;
  EXPECT_EQ(cut.body.find("[DONE]"), std::string::npos) << cut.body;
  EXPECT_EQ(cut.body.find("\"finish_reason\":\"length\""), std::string::npos) << cut.body;
  EXPECT_FALSE(cut.error.empty()) << "the stream ended as if complete";
  // ... and without a stream, the connection closes with no answer.
  const auto closed = complete({{"X-Kvmock-Fault", "stream_cut"}});
  EXPECT_EQ(closed.status, 0);

  // The worker serves on, and counts each fault.
  const auto after = complete();
  EXPECT_EQ(after.status, 200) << after.body;
  const std::string text = metrics();
  for (const std::string type : {"timeout", "connection_reset"}) {
    EXPECT_NE(text.find("kvmock_faults_injected_total{worker_id=\"1000\",type=\"" + type + "\"} 1"),
              std::string::npos)
        << type;
  }
  EXPECT_NE(text.find("kvmock_faults_injected_total{worker_id=\"1000\",type=\"stream_cut\"} 2"),
            std::string::npos);
  // The cut stream's request was cancelled, not left running.
  bool idle = false;
  for (int attempt = 0; attempt < 100 && !idle; ++attempt) {
    idle = first_value("vllm:num_requests_running") == "0";
    if (!idle) usleep(20000);
  }
  EXPECT_TRUE(idle) << metrics();
}

// The median time a completion of one token takes on `port`.
double median_completion_ms(uint16_t port, int count) {
  std::vector<double> times;
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto result =
        testing::http_request(port, "POST", "/v1/completions",
                              R"({"prompt":"a b c )" + std::to_string(i) + R"(","max_tokens":1})");
    EXPECT_EQ(result.status, 200) << result.body;
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

TEST_F(FaultInjectionTest, LatencyScaleStretchesTheFirstTokenSideBySide) {
  // Fixed timing: every prefill pass takes 40 ms, so the time to the first (and only) token
  // is one pass plus the HTTP round trip.
  start_daemon(1, 2,
               "    timing:\n      model: fixed\n      fixed_prefill_ms: 40\n"
               "      fixed_decode_ms: 5\n");
  const uint16_t scaled_port = static_cast<uint16_t>(http_port_ + 1);
  const auto set =
      testing::http_request(scaled_port, "POST", "/admin/config", R"({"latency_scale":3})");
  ASSERT_EQ(set.status, 200) << set.body;
  const double plain = median_completion_ms(http_port_, 7);
  const double scaled = median_completion_ms(scaled_port, 7);
  EXPECT_GT(plain, 35) << "the fixed 40 ms pass";
  EXPECT_GT(scaled / plain, 2.4) << plain << " ms vs " << scaled << " ms";
  EXPECT_LT(scaled / plain, 3.6) << plain << " ms vs " << scaled << " ms";
}

TEST_F(FaultInjectionTest, APausedWorkerQueuesRequestsUntilResumed) {
  start_daemon(1);
  ASSERT_EQ(configure(R"({"paused":true})").status, 200);
  std::atomic<int> status{-1};
  std::thread client([&] { status = complete().status; });
  usleep(400000);
  EXPECT_EQ(status.load(), -1) << "a paused worker answered";
  EXPECT_EQ(first_value("vllm:num_requests_waiting"), "1");
  ASSERT_EQ(configure(R"({"paused":false})").status, 200);
  client.join();
  EXPECT_EQ(status.load(), 200);
}

TEST_F(FaultInjectionTest, SleepRefusesRequestsAndClearsTheCacheAndWakeUpServesAgain) {
  auto client = testing::connect_test_client(nats_.url());
  ASSERT_TRUE(client);
  testing::EventSubscriber router(*client, "namespace.dynamo.component.backend.kv-events");
  ASSERT_TRUE(router.subscribed());
  start_daemon(1);
  std::string words;
  for (int i = 0; i < 100; ++i) words += " word" + std::to_string(i);
  const std::string prompt = R"({"prompt":")" + words + R"(","max_tokens":1})";
  ASSERT_EQ(testing::http_request(http_port_, "POST", "/v1/completions", prompt).status, 200);
  const auto stored = router.drain(std::chrono::milliseconds(300));
  ASSERT_FALSE(stored.empty()) << "no Stored events from the request";
  const EventId last_id = stored.back().event.event_id;

  EXPECT_EQ(testing::http_request(http_port_, "GET", "/is_sleeping").body,
            R"({"is_sleeping":false})");
  EXPECT_EQ(testing::http_request(http_port_, "POST", "/sleep?level=3").status, 400);
  ASSERT_EQ(testing::http_request(http_port_, "POST", "/sleep?level=1").status, 200);
  EXPECT_EQ(testing::http_request(http_port_, "GET", "/is_sleeping").body,
            R"({"is_sleeping":true})");
  const auto asleep = testing::http_request(http_port_, "POST", "/v1/completions", prompt);
  EXPECT_EQ(asleep.status, 503) << asleep.body;
  EXPECT_NE(asleep.body.find("sleeping"), std::string::npos) << asleep.body;
  EXPECT_EQ(testing::http_request(http_port_, "GET", "/v1/models").status, 200);

  // The KV cache is discarded: the router is told with a Cleared that continues the ids.
  const auto cleared = router.next(std::chrono::seconds(5));
  ASSERT_TRUE(cleared);
  EXPECT_TRUE(std::holds_alternative<ClearData>(cleared->event.data));
  EXPECT_EQ(cleared->event.event_id, last_id + 1);

  ASSERT_EQ(testing::http_request(http_port_, "POST", "/wake_up").status, 200);
  const auto awake = testing::http_request(http_port_, "POST", "/v1/completions", prompt);
  ASSERT_EQ(awake.status, 200) << awake.body;
  // Nothing was cached after the clear: the same prompt is computed (and stored) again.
  EXPECT_EQ(json::parse(awake.body)["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  const auto again = router.drain(std::chrono::milliseconds(300));
  ASSERT_FALSE(again.empty());
  EXPECT_TRUE(std::holds_alternative<StoreData>(again.front().event.data));
}

TEST_F(FaultInjectionTest, AWorkerIsNotReadyUntilItsStartupDelayHasPassed) {
  admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
  http_port_ = static_cast<uint16_t>(testing::free_loopback_port());
  config_path_ =
      testing::write_temp_file("nats:\n  url: " + nats_.url() +
                               "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
                               "\nworkers:\n  count: 1\n  startup_delay_s: 1.5\n" +
                               "  http_base_port: " + std::to_string(http_port_) + "\n");
  const auto started = std::chrono::steady_clock::now();
  daemon_ = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
  ASSERT_TRUE(testing::wait_for_status(http_port_, "/health", 503, std::chrono::seconds(5)))
      << daemon_->output();
  const auto early = complete();
  if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(1400)) {
    EXPECT_EQ(early.status, 503) << early.body;
    EXPECT_NE(early.body.find("starting up"), std::string::npos) << early.body;
  }
  ASSERT_TRUE(testing::wait_for_status(http_port_, "/health", 200, std::chrono::seconds(10)));
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1500));
  EXPECT_EQ(complete().status, 200);
}

TEST_F(FaultInjectionTest, TheRateFailsItsShareWithTheChosenTypesAndTheSeedReplaysThem) {
  start_daemon(77);
  ASSERT_EQ(configure(R"({"failure_injection_rate":100,"failure_types":["rate_limit"]})").status,
            200);
  for (int status : statuses(5)) EXPECT_EQ(status, 429);
  ASSERT_EQ(configure(R"({"failure_injection_rate":40,"failure_types":["server_error",
                                                                      "service_unavailable"]})")
                .status,
            200);
  const std::vector<int> first_run = statuses(40);
  int failed = 0;
  for (int status : first_run) {
    EXPECT_TRUE(status == 200 || status == 500 || status == 503) << status;
    failed += status != 200;
  }
  EXPECT_GT(failed, 4);
  EXPECT_LT(failed, 30);
  ASSERT_EQ(configure(R"({"failure_injection_rate":0})").status, 200);
  for (int status : statuses(3)) EXPECT_EQ(status, 200);
  stop_daemon();

  // The same seed and the same requests: the same faults, in the same places.
  start_daemon(77);
  ASSERT_EQ(configure(R"({"failure_injection_rate":100,"failure_types":["rate_limit"]})").status,
            200);
  statuses(5);
  ASSERT_EQ(configure(R"({"failure_injection_rate":40,"failure_types":["server_error",
                                                                      "service_unavailable"]})")
                .status,
            200);
  EXPECT_EQ(statuses(40), first_run);
}

}  // namespace
}  // namespace kvmock
