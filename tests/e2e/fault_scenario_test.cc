// Scripted chaos through a real kvmockd (docs/faults.md#scenario-files): a `faults.scenario`
// file with a seed gives the same sequence of injected faults in two runs, its steps are
// logged and counted, crash and restart steps take a worker down and bring it back, and a
// bad scenario file makes check-config and run fail, naming the step and field, before
// anything starts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using nlohmann::json;

// Every worker fails 40 % of requests as 429 or 500 from the start; half a second later, one
// worker of the two (picked by the seed) fails every request as 503.
constexpr const char* kScenario = R"(steps:
  - at: 0
    workers: all
    set:
      failure_injection_rate: 40
      failure_types: [rate_limit, server_error]
  - at: 0.5
    workers: {fraction: 0.5}
    set: {failure_injection_rate: 100, failure_types: [service_unavailable]}
)";

struct ScenarioRun {
  std::vector<int> statuses;  // per request, alternating between the two workers
  std::vector<double> rates;  // each worker's failure_injection_rate after the steps
  std::string output;
};

class FaultScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(nats_.start()); }
  void TearDown() override {
    for (const std::string& path : files_) ::unlink(path.c_str());
  }

  std::string temp_file(const std::string& text) {
    files_.push_back(testing::write_temp_file(text));
    return files_.back();
  }
  std::string config(const std::string& scenario_path, uint64_t seed, uint16_t admin_port,
                     uint16_t http_port) {
    return temp_file(
        "nats:\n  url: " + nats_.url() +
        "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
        "\nfaults:\n  seed: " + std::to_string(seed) + "\n  scenario: " + scenario_path +
        "\nworkers:\n  count: 2\n"
        "  http_base_port: " +
        std::to_string(http_port) + "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 1024\n");
  }

  // Starts kvmockd with the scenario, waits until both steps were played, sends `requests`
  // completions alternating between the workers and stops it.
  ScenarioRun run_scenario(const std::string& scenario_path, uint64_t seed, int requests) {
    ScenarioRun run;
    const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
    const auto http_port = static_cast<uint16_t>(testing::free_loopback_port_range(2));
    testing::ChildProcess daemon({testing::kvmockd_path(), "run", "--config",
                                  config(scenario_path, seed, admin_port, http_port)});
    if (!testing::wait_for_status(admin_port, "/ready", 200, std::chrono::seconds(10))) {
      ADD_FAILURE() << "daemon not ready: " << daemon.output();
      return run;
    }
    // The second step is half a second in: wait (bounded) until the metric counts it.
    bool played = false;
    for (int attempt = 0; attempt < 250 && !played; ++attempt) {
      const std::string metrics = testing::http_request(admin_port, "GET", "/metrics").body;
      played = metrics.find("kvmock_scenario_steps_total{action=\"set\"} 2") != std::string::npos;
      if (!played) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(played) << daemon.output();
    for (uint16_t i = 0; i < 2; ++i) {
      const auto settings =
          testing::http_request(static_cast<uint16_t>(http_port + i), "GET", "/admin/config");
      const json body = json::parse(settings.body, nullptr, /*allow_exceptions=*/false);
      run.rates.push_back(body.is_object() ? body.value("failure_injection_rate", -1.0) : -1.0);
    }
    for (int i = 0; i < requests; ++i) {
      const auto port = static_cast<uint16_t>(http_port + i % 2);
      run.statuses.push_back(testing::http_request(port, "POST", "/v1/completions",
                                                   R"({"prompt":"one two three","max_tokens":2})")
                                 .status);
    }
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait(std::chrono::seconds(15)), 0) << daemon.output();
    run.output = daemon.output();
    return run;
  }

  testing::NatsServer nats_;
  std::vector<std::string> files_;
};

TEST_F(FaultScenarioTest, TheSameScenarioAndSeedGiveTheSameFaultsInTwoRuns) {
  const std::string scenario = temp_file(kScenario);
  const ScenarioRun first = run_scenario(scenario, 2024, 40);
  const ScenarioRun second = run_scenario(scenario, 2024, 40);
  ASSERT_EQ(first.statuses.size(), 40u);
  EXPECT_EQ(first.statuses, second.statuses);
  EXPECT_EQ(first.rates, second.rates);

  // The fraction picked one worker of two for the second step; the other kept the first's.
  ASSERT_EQ(first.rates.size(), 2u);
  EXPECT_EQ(std::min(first.rates[0], first.rates[1]), 40);
  EXPECT_EQ(std::max(first.rates[0], first.rates[1]), 100);
  const size_t down = first.rates[0] == 100 ? 0 : 1;
  int failed = 0;
  for (size_t i = 0; i < first.statuses.size(); ++i) {
    const int status = first.statuses[i];
    if (i % 2 == down) {
      EXPECT_EQ(status, 503) << "request " << i;
    } else {
      EXPECT_TRUE(status == 200 || status == 429 || status == 500) << "request " << i << status;
      failed += status != 200;
    }
  }
  EXPECT_GT(failed, 0) << "40 % of 20 requests, none failed";
  EXPECT_LT(failed, 20) << "40 % of 20 requests, all failed";

  // One log line per step: what and on which workers.
  EXPECT_NE(first.output.find("step 0 at 0.000 s: set {\"failure_injection_rate\":40.0,"
                              "\"failure_types\":[\"rate_limit\",\"server_error\"]} on workers "
                              "1000-1001"),
            std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("step 1 at 0.500 s: set {\"failure_injection_rate\":100.0,"),
            std::string::npos)
      << first.output;
}

TEST_F(FaultScenarioTest, ABadScenarioFileFailsCheckConfigAndRunNamingTheField) {
  const std::string scenario = temp_file(
      "steps:\n"
      "  - {at: 0, workers: all, set: {failure_injection_rate: 10}}\n"
      "  - {at: -3, workers: all, action: crash}\n"
      "  - {at: 1, workers: [1000, 1007], set: {failure_typez: [rate_limit]}}\n");
  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  const auto http_port = static_cast<uint16_t>(testing::free_loopback_port_range(2));
  const std::string config_path = config(scenario, 1, admin_port, http_port);

  const auto checked =
      testing::run_process({testing::kvmockd_path(), "check-config", "--config", config_path}, "");
  EXPECT_EQ(checked.exit_status, 2) << checked.out << checked.err;
  EXPECT_NE(checked.err.find(scenario +
                             ":3: steps[1].at: must be a number >= 0 (seconds from the start), "
                             "got -3"),
            std::string::npos)
      << checked.err;
  EXPECT_NE(checked.err.find(scenario +
                             ":4: steps[2].workers: worker 1007 is not in the fleet (worker ids "
                             "1000-1001)"),
            std::string::npos)
      << checked.err;
  EXPECT_NE(checked.err.find(scenario + ":4: steps[2].set.failure_typez: unknown setting"),
            std::string::npos)
      << checked.err;
  EXPECT_TRUE(checked.out.empty()) << checked.out;

  // `run` refuses it too, before it binds a port or connects anywhere.
  const auto ran = testing::run_process({testing::kvmockd_path(), "run", "--config", config_path},
                                        "", std::chrono::seconds(15));
  EXPECT_EQ(ran.exit_status, 2) << ran.out << ran.err;
  EXPECT_NE(ran.err.find("steps[1].at: must be a number >= 0"), std::string::npos) << ran.err;
  EXPECT_EQ(ran.err.find("serving /metrics"), std::string::npos) << ran.err;

  // A missing file is named as the key's value.
  const auto missing =
      testing::run_process({testing::kvmockd_path(), "check-config", "--config", config_path,
                            "--set", "faults.scenario=/nonexistent/chaos.yaml"},
                           "");
  EXPECT_EQ(missing.exit_status, 2);
  EXPECT_NE(missing.err.find("faults.scenario: cannot read '/nonexistent/chaos.yaml'"),
            std::string::npos)
      << missing.err;
}

TEST_F(FaultScenarioTest, ACrashStepTakesTheWorkerDownAndARestartStepBringsItBack) {
  const std::string scenario = temp_file(
      "steps:\n"
      "  - {at: 1, workers: 1001, action: crash}\n"
      "  - {at: 2, workers: 1001, set: {failure_injection_rate: 100}}\n"
      "  - {at: 4, workers: 1001, action: restart}\n");
  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  const auto http_port = static_cast<uint16_t>(testing::free_loopback_port_range(2));
  testing::ChildProcess daemon(
      {testing::kvmockd_path(), "run", "--config", config(scenario, 5, admin_port, http_port)});
  ASSERT_TRUE(testing::wait_for_status(admin_port, "/ready", 200, std::chrono::seconds(10)))
      << daemon.output();
  const auto crashed_port = static_cast<uint16_t>(http_port + 1);
  auto complete = [](uint16_t port) {
    return testing::http_request(port, "POST", "/v1/completions",
                                 R"({"prompt":"one two","max_tokens":1})",
                                 std::chrono::milliseconds(2000));
  };
  // Down: the port refuses connections (no status at all), bounded by the 1 s step and slack.
  bool down = false;
  for (int attempt = 0; attempt < 300 && !down; ++attempt) {
    down = complete(crashed_port).status == 0;
    if (!down) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(down) << daemon.output();
  EXPECT_EQ(complete(http_port).status, 200) << "the other worker serves on";
  // Back: the restart step, three seconds later, serves again, with the config's settings:
  // the set step in between found the worker crashed and changed nothing.
  bool up = false;
  for (int attempt = 0; attempt < 500 && !up; ++attempt) {
    up = complete(crashed_port).status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(up) << daemon.output();
  const std::string metrics = testing::http_request(admin_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("kvmock_scenario_steps_total{action=\"crash\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kvmock_scenario_steps_total{action=\"set\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kvmock_scenario_steps_total{action=\"restart\"} 1"), std::string::npos)
      << metrics;
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(15)), 0) << daemon.output();
  const std::string output = daemon.output();
  EXPECT_NE(output.find("step 0 at 1.000 s: crash on worker 1001"), std::string::npos) << output;
  EXPECT_NE(output.find("step 1: worker 1001: crashed: its settings are not changed"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("step 2 at 4.000 s: restart on worker 1001"), std::string::npos) << output;
}

}  // namespace
}  // namespace kvmock
