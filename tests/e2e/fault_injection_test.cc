// Faults on purpose through a real kvmockd (docs/faults.md): a worker's fault settings are
// read and merged on its port at /admin/config, a bad patch is refused naming the key and
// changes nothing, X-Kvmock-Fault forces one fault per request, failure_injection_rate fails
// that share of requests with the configured types, kvmock_faults_injected_total counts
// each, and faults.seed replays the same faults in another run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using nlohmann::json;

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(nats_.start()); }
  void TearDown() override { stop_daemon(); }

  void start_daemon(uint64_t seed) {
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nfaults:\n  seed: " + std::to_string(seed) +
        "\nworkers:\n  count: 1\n  http_base_port: " + std::to_string(http_port_) +
        "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 1024\n");
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
            json::parse(R"({"failure_injection_rate":0.0,"failure_types":[]})"));

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
