// The observability acceptance test: the admin /metrics of a busy `kvmockd run`
// (mock workers under the built-in load driver, a relay, a real nats-server) passes
// `promtool check metrics` (Debian package prometheus) with no problem reported at all,
// lint warnings included; a worker's /metrics differs only by vLLM's own `vllm:` names.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using testing::ChildProcess;
using testing::http_request;

constexpr const char* kPromtool = "/usr/bin/promtool";

testing::ProcessResult promtool_check(const std::string& exposition) {
  return testing::run_process({kPromtool, "check", "metrics"}, exposition);
}

TEST(MetricsPromtool, AdminAndWorkerMetricsOfABusyDaemonPassPromtoolCheck) {
  ASSERT_EQ(::access(kPromtool, X_OK), 0)
      << kPromtool << " is missing: deploy/install-deps.sh installs it (package prometheus)";
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  const int admin_port = testing::free_loopback_port();
  const int worker_port = testing::free_loopback_port_range(2);
  const int relay_port = testing::free_loopback_port();  // nothing publishes there
  ASSERT_GT(worker_port, 0);
  const std::string config_path = testing::write_temp_file(
      "nats:\n  url: " + server.url() +
      "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
      "\nworkers:\n  count: 2\n  http_base_port: " + std::to_string(worker_port) +
      "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 512\n    speedup_ratio: 10.0\n"
      "  load:\n    enabled: true\n    requests_per_s: 20.0\n    input_tokens: 256\n"
      "    output_tokens: 16\nrelays:\n  - endpoint: tcp://127.0.0.1:" +
      std::to_string(relay_port) + "\n    worker_id: 7\n");
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(10)))
      << daemon.output();
  std::this_thread::sleep_for(std::chrono::seconds(3));

  const auto admin = http_request(static_cast<uint16_t>(admin_port), "GET", "/metrics");
  const auto worker = http_request(static_cast<uint16_t>(worker_port), "GET", "/metrics");
  ASSERT_EQ(admin.status, 200);
  ASSERT_EQ(worker.status, 200);
  // Both carry real traffic, so histograms and labelled series are filled in.
  EXPECT_NE(admin.body.find("kvmock_pipeline_events_queued_total{plane=\"nats\"}"),
            std::string::npos);
  EXPECT_EQ(admin.body.find("kvmock_pipeline_events_queued_total{plane=\"nats\"} 0\n"),
            std::string::npos)
      << admin.body;
  EXPECT_NE(admin.body.find("kvmock_relay_"), std::string::npos);
  EXPECT_NE(admin.body.find("vllm_num_requests_running{"), std::string::npos);
  EXPECT_NE(worker.body.find("vllm:time_to_first_token_seconds_bucket"), std::string::npos)
      << worker.body;
  EXPECT_NE(worker.body.find("vllm:request_success_total"), std::string::npos);
  EXPECT_EQ(worker.body.find("worker_id=\"" + std::to_string(1001) + "\""), std::string::npos)
      << "worker 0's /metrics shows only worker 0";

  // kvmockd's own endpoint: no problem at all.
  const auto admin_check = promtool_check(admin.body);
  EXPECT_EQ(admin_check.exit_status, 0) << admin_check.out << admin_check.err;
  EXPECT_EQ(admin_check.out + admin_check.err, "") << admin.body.substr(0, 4000);

  // A worker's endpoint impersonates vLLM, so it keeps vLLM's `vllm:` names, which routers
  // scrape and promtool's linter flags (colons are reserved for recording rules). That is
  // the only complaint allowed, once per vLLM family; with the colons written as '_' (as
  // the admin endpoint writes them) the same exposition passes without a word.
  const auto worker_check = promtool_check(worker.body);
  std::istringstream problems(worker_check.out + worker_check.err);
  std::set<std::string> flagged;
  for (std::string line; std::getline(problems, line);) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(
        line, m, std::regex("(vllm:[a-z0-9_]+) metric names should not contain ':'")))
        << line;
    flagged.insert(m[1]);
  }
  std::set<std::string> families;
  const std::regex type_line("# TYPE (vllm:[a-z0-9_]+) ");
  for (auto it = std::sregex_iterator(worker.body.begin(), worker.body.end(), type_line);
       it != std::sregex_iterator(); ++it) {
    families.insert((*it)[1]);
  }
  EXPECT_EQ(flagged, families);
  EXPECT_GT(families.size(), 5u);
  std::string underscored = worker.body;
  std::replace(underscored.begin(), underscored.end(), ':', '_');
  const auto underscored_check = promtool_check(underscored);
  EXPECT_EQ(underscored_check.exit_status, 0) << underscored_check.out << underscored_check.err;
  EXPECT_EQ(underscored_check.out + underscored_check.err, "") << worker.body.substr(0, 4000);

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(15)), 0) << daemon.output();
  ::unlink(config_path.c_str());
}

// The check itself is not vacuous: promtool does flag a malformed exposition.
TEST(MetricsPromtool, PromtoolRejectsAMalformedExposition) {
  ASSERT_EQ(::access(kPromtool, X_OK), 0);
  const auto checked = promtool_check("# TYPE requests counter\nrequests{code=\"200\" 1\n");
  EXPECT_NE(checked.exit_status, 0);
  EXPECT_FALSE((checked.out + checked.err).empty());
}

}  // namespace
}  // namespace kvmock
