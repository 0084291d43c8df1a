// The issue's observability acceptance test: the admin /metrics of a busy `kvmockd run`
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
  std::this_thread::sleep_for(std::chrono::seconds(2));
  // A crash and a restart under the load driver's traffic leave the exposition clean.
  ASSERT_EQ(
      http_request(static_cast<uint16_t>(admin_port), "POST", "/admin/workers/1001/crash").status,
      200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(
      http_request(static_cast<uint16_t>(admin_port), "POST", "/admin/workers/1001/restart").status,
      200);
  std::this_thread::sleep_for(std::chrono::seconds(1));

  const auto admin = http_request(static_cast<uint16_t>(admin_port), "GET", "/metrics");
  const auto worker = http_request(static_cast<uint16_t>(worker_port), "GET", "/metrics");
  EXPECT_NE(admin.body.find("kvmock_worker_crashes_total{worker_id=\"1001\"} 1\n"),
            std::string::npos);
  EXPECT_NE(admin.body.find("kvmock_worker_restarts_total{worker_id=\"1001\"} 1\n"),
            std::string::npos);
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

// The value of the series whose line starts with `series` (name and labels), or -1.
double series_value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// Issue #17: a worker's vLLM request metrics after one request of each finish reason: one
// that runs to max_tokens ("length"), one that meets its EOS ("stop": the output-length
// distribution ends it) and one whose client hangs up ("abort"). Every series names its
// reason and counts each request once; the exposition still passes promtool.
TEST(MetricsPromtool, AWorkerCountsEachFinishReasonAndItsRequestHistograms) {
  ASSERT_EQ(::access(kPromtool, X_OK), 0);
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  const int admin_port = testing::free_loopback_port();
  const int worker_port = testing::free_loopback_port();
  ASSERT_GT(worker_port, 0);
  // Prefill passes take 300 ms and decode passes 1 ms; output lengths are uniform over
  // [1, 1999] tokens, so the third request is still decoding when its client's hang-up is
  // noticed (at the latest, when its next chunk cannot be written).
  const std::string config_path = testing::write_temp_file(
      "nats:\n  url: " + server.url() +
      "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
      "\nworkers:\n  count: 1\n  http_base_port: " + std::to_string(worker_port) +
      "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 512\n    timing:\n"
      "      model: fixed\n      fixed_prefill_ms: 300\n      fixed_decode_ms: 1\n"
      "    output_length:\n      distribution: uniform\n      mean: 1000\n");
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  const auto port = static_cast<uint16_t>(worker_port);
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(10)))
      << daemon.output();

  // max_tokens 1: the EOS can never come first.
  const auto length = http_request(port, "POST", "/v1/completions",
                                   R"({"prompt": "one two three four", "max_tokens": 1})");
  ASSERT_EQ(length.status, 200) << length.body;
  EXPECT_NE(length.body.find("\"finish_reason\":\"length\""), std::string::npos) << length.body;
  // A uniform output length of mean 1000 (at most 1999 tokens) always ends before 2000.
  const auto stop = http_request(port, "POST", "/v1/completions",
                                 R"({"prompt": "five six seven eight", "max_tokens": 2000})");
  ASSERT_EQ(stop.status, 200) << stop.body;
  EXPECT_NE(stop.body.find("\"finish_reason\":\"stop\""), std::string::npos) << stop.body;
  // The client leaves at the first bytes of its stream.
  testing::http_stream(
      port, "POST", "/v1/completions",
      R"({"prompt": "nine ten eleven twelve", "max_tokens": 2000, "stream": true})",
      [](const std::string&) { return false; }, std::chrono::seconds(5));

  const std::string labels = "model_name=\"kvmock-model\",worker_id=\"1000\"";
  auto success = [&](const std::string& text, const char* reason) {
    return series_value(
        text, "vllm:request_success_total{" + labels + ",finished_reason=\"" + reason + "\"}");
  };
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = http_request(port, "GET", "/metrics").body;
    if (success(text, "abort") == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // A scrape is not a snapshot: the one that first showed the abort may have read the
  // histograms (rendered before request_success_total) just before the abort was recorded.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  text = http_request(port, "GET", "/metrics").body;
  EXPECT_EQ(success(text, "length"), 1) << text;
  EXPECT_EQ(success(text, "stop"), 1) << text;
  EXPECT_EQ(success(text, "abort"), 1) << text;
  for (const char* histogram :
       {"vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
        "vllm:request_inference_time_seconds", "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens", "vllm:request_params_max_tokens"}) {
    EXPECT_EQ(series_value(text, std::string(histogram) + "_count{" + labels + "}"), 3)
        << histogram << "\n"
        << text;
  }
  EXPECT_EQ(series_value(text, "vllm:request_params_max_tokens_sum{" + labels + "}"), 4001);
  // Two prefills of 300 ms each: the finished requests' prefill time shows them.
  EXPECT_GE(series_value(text, "vllm:request_prefill_time_seconds_sum{" + labels + "}"), 0.6);
  EXPECT_GE(series_value(text, "vllm:time_per_output_token_seconds_count{" + labels + "}"), 0);
  EXPECT_NE(text.find("vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\","
                      "enable_prefix_caching=\"True\",engine=\"0\",gpu_memory_utilization="
                      "\"0.9\",num_cpu_blocks=\"None\",num_gpu_blocks=\"512\",worker_id="
                      "\"1000\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_GT(series_value(text,
                         "vllm:lora_requests_info{max_lora=\"1\",running_lora_adapters="
                         "\"\",waiting_lora_adapters=\"\",worker_id=\"1000\"}"),
            1.7e9);

  // promtool: the worker's only complaints are the vLLM colons; the admin endpoint (the
  // same series with '_') has none.
  const auto worker_check = promtool_check(text);
  std::istringstream problems(worker_check.out + worker_check.err);
  for (std::string line; std::getline(problems, line);) {
    EXPECT_TRUE(std::regex_match(line, std::regex("vllm:[a-z0-9_]+ metric names should not "
                                                  "contain ':'")))
        << line;
  }
  const auto admin = http_request(static_cast<uint16_t>(admin_port), "GET", "/metrics");
  EXPECT_NE(
      admin.body.find("vllm_request_success_total{" + labels + ",finished_reason=\"abort\"} 1\n"),
      std::string::npos)
      << admin.body;
  const auto admin_check = promtool_check(admin.body);
  EXPECT_EQ(admin_check.exit_status, 0) << admin_check.out << admin_check.err;
  EXPECT_EQ(admin_check.out + admin_check.err, "");

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
