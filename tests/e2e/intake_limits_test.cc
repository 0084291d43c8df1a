// `kvmockd run` refusing what it cannot serve, the way vLLM would, and letting go of what
// nobody waits for: the context window when max_model_len is unset (the KV cache), the
// per-worker bound on queued prompt tokens, the waiting-queue bound counted where it is
// decided, and NATS generate requests whose requester went away. Also what a vLLM pod
// promises per request: a seed that fixes the output, a data-parallel rank pinned by header.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::http_request;
using testing::NatsServer;

constexpr uint64_t kWorker = 1000;
const std::string kGenerateSubject = "namespace.dynamo.component.backend.generate.1000";

std::string words(size_t count) {
  std::string text;
  for (size_t i = 0; i < count; ++i) text += "w" + std::to_string(i) + " ";
  return text;
}

std::vector<uint32_t> token_ids(size_t count) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < count; ++i) ids.push_back(static_cast<uint32_t>(1000 + i));
  return ids;
}

// The value of the first sample of `metric` whose labels contain `label`, or -1.
double metric_value(const std::string& text, const std::string& metric, const std::string& label) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const bool named = line.rfind(metric + "{", 0) == 0 || line.rfind(metric + " ", 0) == 0;
    if (named && line.find(label) != std::string::npos) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

class IntakeLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_port_ = static_cast<uint16_t>(testing::free_loopback_port());
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(20)), 0) << daemon_->output();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  // One worker with `engine` YAML lines under workers.engine and `workers` under workers.
  void start_daemon(const std::string& engine, const std::string& workers = {}) {
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + server_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nshutdown:\n  grace_s: 1\n  flush_deadline_s: 1\n" +
        "workers:\n  count: 1\n  http_base_port: " + std::to_string(http_port_) + "\n" + workers +
        "  engine:\n    block_size: 16\n" + engine);
    daemon_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    if (testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10))) return;
    FAIL() << "daemon not ready: " << daemon_->output();
  }

  double admin_metric(const std::string& metric, const std::string& label) {
    return metric_value(http_request(admin_port_, "GET", "/metrics").body, metric, label);
  }

  // Polls an admin metric until it equals `want` (bounded); returns the last value.
  double wait_metric(const std::string& metric, const std::string& label, double want,
                     std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    double value = admin_metric(metric, label);
    while (value != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      value = admin_metric(metric, label);
    }
    return value;
  }

  NatsServer server_;
  uint16_t admin_port_ = 0;
  uint16_t http_port_ = 0;
  std::unique_ptr<ChildProcess> daemon_;
  std::string config_path_;
};

TEST_F(IntakeLimitsTest, WithoutMaxModelLenTheKvCacheIsTheContextWindow) {
  start_daemon("    num_gpu_blocks: 64\n");  // 64 × 16 = 1024 tokens
  const auto start = std::chrono::steady_clock::now();
  const auto huge = http_request(http_port_, "POST", "/v1/completions",
                                 json{{"prompt", "hello"}, {"max_tokens", 4294967295u}}.dump(),
                                 std::chrono::seconds(5));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_EQ(huge.status, 400) << huge.body;
  const json error = json::parse(huge.body)["error"];
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_EQ(error["code"], "context_length_exceeded");
  EXPECT_EQ(error["message"],
            "This model's maximum context length is 1024 tokens. However, you requested "
            "4294967296 tokens (1 in the messages, 4294967295 in the completion). Please "
            "reduce the length of the messages or completion.");

  const auto long_prompt =
      http_request(http_port_, "POST", "/v1/completions", json{{"prompt", words(2000)}}.dump());
  ASSERT_EQ(long_prompt.status, 400) << long_prompt.body;
  EXPECT_EQ(json::parse(long_prompt.body)["error"]["code"], "context_length_exceeded");

  // A request that fits still runs.
  const auto fits = http_request(http_port_, "POST", "/v1/completions",
                                 json{{"prompt", words(1000)}, {"max_tokens", 24}}.dump());
  EXPECT_EQ(fits.status, 200) << fits.body;

  // The NATS intake applies the same window.
  auto client = testing::connect_test_client(server_.url());
  ASSERT_NE(client, nullptr);
  natsMsg* reply = nullptr;
  const std::string body = json{{"token_ids", token_ids(2000)}}.dump();
  ASSERT_EQ(natsConnection_Request(&reply, client->connection(), kGenerateSubject.c_str(),
                                   body.data(), static_cast<int>(body.size()), 5000),
            NATS_OK);
  const json last = json::parse(std::string(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  EXPECT_NE(last["finish_reason"]["error"].get<std::string>().find(
                "maximum context length is 1024 tokens"),
            std::string::npos)
      << last.dump();
  EXPECT_EQ(admin_metric("kvmock_worker_refused_requests_total", "reason=\"context_length\""), 3);
}

TEST_F(IntakeLimitsTest, QueuedPromptTokensAreBoundedPerWorkerAndFreedOnCancel) {
  start_daemon(
      "    num_gpu_blocks: 1024\n    timing:\n      model: fixed\n      fixed_prefill_ms: 5000\n"
      "      fixed_decode_ms: 1\n",
      "  max_queued_prompt_tokens: 1000\n");
  const std::string request = json{{"prompt", words(600)}, {"stream", true}}.dump();
  // The first request is held in a 5 s prefill; its client gives up after 2 s (the
  // stream's headers come at once, its first chunk only after the prefill). The engine
  // frees it at once and reports it finished when the pass in progress ends.
  const auto hang_up = [](const std::string&) { return false; };
  std::thread first([&] {
    testing::http_stream(http_port_, "POST", "/v1/completions", request, hang_up,
                         std::chrono::seconds(2));
  });
  ASSERT_EQ(
      wait_metric("vllm_num_requests_running", "worker_id=\"1000\"", 1, std::chrono::seconds(5)),
      1);
  const auto refused = http_request(http_port_, "POST", "/v1/completions", request);
  ASSERT_EQ(refused.status, 429) << refused.body;
  const json error = json::parse(refused.body)["error"];
  EXPECT_EQ(error["type"], "rate_limit_error");
  EXPECT_EQ(error["code"], "queue_full");
  EXPECT_NE(error["message"].get<std::string>().find("max_queued_prompt_tokens"),
            std::string::npos);
  EXPECT_EQ(admin_metric("kvmock_worker_refused_requests_total", "reason=\"prompt_tokens\""), 1);
  first.join();

  // The hang-up cancelled the first request and gave its tokens back.
  ASSERT_EQ(
      wait_metric("vllm_num_requests_running", "worker_id=\"1000\"", 0, std::chrono::seconds(10)),
      0);
  const auto again = testing::http_stream(http_port_, "POST", "/v1/completions", request, hang_up,
                                          std::chrono::seconds(1));
  EXPECT_EQ(again.status, 200) << again.body;
}

TEST_F(IntakeLimitsTest, WaitingQueueRefusalsAreDecidedAtIntakeAndCountedAsRejected) {
  // One request runs for 20 s; every later one waits, so the queue fills.
  start_daemon(
      "    num_gpu_blocks: 1024\n    max_num_seqs: 1\n    timing:\n      model: fixed\n"
      "      fixed_prefill_ms: 20000\n      fixed_decode_ms: 1\n",
      "  max_num_waiting: 300\n");
  auto client = testing::connect_test_client(server_.url());
  ASSERT_NE(client, nullptr);
  natsConnection* nc = client->connection();
  const std::string inbox = "_INBOX.kvmock-queue-" + std::to_string(::getpid());
  natsSubscription* replies = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&replies, nc, inbox.c_str()), NATS_OK);
  natsSubscription_SetPendingLimits(replies, -1, -1);
  constexpr int kRequests = 1000;
  const std::string body = json{{"token_ids", token_ids(4)}}.dump();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(natsConnection_PublishRequest(nc, kGenerateSubject.c_str(), inbox.c_str(),
                                            body.data(), static_cast<int>(body.size())),
              NATS_OK);
  }
  ASSERT_EQ(natsConnection_FlushTimeout(nc, 10000), NATS_OK);
  const std::string accepted_label = "result=\"accepted\"";
  const std::string rejected_label = "result=\"rejected\"";
  const std::string metric = "kvmock_nats_generate_requests_total";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (admin_metric(metric, accepted_label) + admin_metric(metric, rejected_label) < kRequests &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double accepted = admin_metric(metric, accepted_label);
  const double rejected = admin_metric(metric, rejected_label);
  ASSERT_EQ(accepted + rejected, kRequests);
  // Every refusal is an immediate final reply naming the queue; none arrives later from
  // the engine for a request already counted as accepted.
  int queue_full = 0;
  int other = 0;
  for (natsMsg* msg = nullptr;
       queue_full + other < kRequests && natsSubscription_NextMsg(&msg, replies, 1000) == NATS_OK;
       msg = nullptr) {
    const json output =
        json::parse(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)), nullptr, false);
    natsMsg_Destroy(msg);
    ASSERT_FALSE(output.is_discarded());
    if (!output["finish_reason"].is_object()) continue;  // tokens or a non-error finish
    const std::string error = output["finish_reason"]["error"];
    if (error.rfind("queue_full: ", 0) == 0) {
      ++queue_full;
    } else {
      ++other;
      ADD_FAILURE() << "unexpected error reply: " << error;
    }
  }
  natsSubscription_Destroy(replies);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(queue_full, rejected);
  EXPECT_GT(rejected, 0);
  // The waiting queue holds workers.max_num_waiting requests besides the one running.
  EXPECT_EQ(accepted, 301);
  EXPECT_EQ(admin_metric("kvmock_worker_refused_requests_total", "reason=\"queue_full\""),
            rejected);
}

TEST_F(IntakeLimitsTest, NatsGenerateRequestIsCancelledWhenItsRequesterLeaves) {
  start_daemon(
      "    num_gpu_blocks: 1024\n    timing:\n      model: fixed\n      fixed_prefill_ms: 1\n"
      "      fixed_decode_ms: 5\n");
  auto client = testing::connect_test_client(server_.url());
  ASSERT_NE(client, nullptr);
  natsConnection* nc = client->connection();
  const std::string inbox = "_INBOX.kvmock-cancel-" + std::to_string(::getpid());
  natsSubscription* replies = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&replies, nc, inbox.c_str()), NATS_OK);
  // 10,000 tokens at 5 ms each: 50 s unless cancelled.
  const std::string body =
      json{{"token_ids", token_ids(32)}, {"stop_conditions", {{"max_tokens", 10000}}}}.dump();
  ASSERT_EQ(natsConnection_PublishRequest(nc, kGenerateSubject.c_str(), inbox.c_str(), body.data(),
                                          static_cast<int>(body.size())),
            NATS_OK);
  for (int i = 0; i < 3; ++i) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(natsSubscription_NextMsg(&msg, replies, 5000), NATS_OK);
    natsMsg_Destroy(msg);
  }
  EXPECT_EQ(admin_metric("vllm_num_requests_running", "worker_id=\"1000\""), 1);
  ASSERT_EQ(natsSubscription_Unsubscribe(replies), NATS_OK);
  natsSubscription_Destroy(replies);
  ASSERT_EQ(natsConnection_FlushTimeout(nc, 2000), NATS_OK);

  EXPECT_EQ(
      wait_metric("vllm_num_requests_running", "worker_id=\"1000\"", 0, std::chrono::seconds(3)),
      0);
  EXPECT_EQ(
      wait_metric("vllm_kv_cache_usage_perc", "worker_id=\"1000\"", 0, std::chrono::seconds(3)), 0);
  EXPECT_EQ(admin_metric("kvmock_nats_generate_cancelled_total", ""), 1);
}

// Parity note M4: the same prompt with the same seed gives the same output, on any rank.
TEST_F(IntakeLimitsTest, ASeedFixesTheOutput) {
  start_daemon("    num_gpu_blocks: 256\n    dp_size: 2\n");
  const auto text = [&](uint64_t seed) {
    const auto result = http_request(
        http_port_, "POST", "/v1/completions",
        json{{"prompt", "alpha beta gamma"}, {"max_tokens", 6}, {"seed", seed}, {"temperature", 0}}
            .dump());
    EXPECT_EQ(result.status, 200) << result.body;
    return json::parse(result.body)["choices"][0]["text"].get<std::string>();
  };
  const std::string first = text(7);
  EXPECT_EQ(text(7), first);  // the other rank (round robin), same words
  EXPECT_EQ(text(7), first);
  EXPECT_NE(text(8), first);
}

// Parity note M11: a request pinned to a rank by X-data-parallel-rank always finds the
// prefix its earlier twin left there; out-of-range ranks are refused.
TEST_F(IntakeLimitsTest, TheDataParallelRankHeaderPinsRequestsToOneRank) {
  start_daemon("    num_gpu_blocks: 256\n    dp_size: 2\n");
  const std::string body = json{{"prompt", words(64)}, {"max_tokens", 1}}.dump();
  std::vector<uint64_t> cached;
  for (int i = 0; i < 4; ++i) {
    const auto result =
        http_request(http_port_, "POST", "/v1/completions", body, {{"X-data-parallel-rank", "1"}});
    ASSERT_EQ(result.status, 200) << result.body;
    cached.push_back(json::parse(result.body)["usage"]["prompt_tokens_details"]["cached_tokens"]);
  }
  EXPECT_EQ(cached[0], 0u);
  for (int i = 1; i < 4; ++i) EXPECT_GT(cached[i], 0u) << i;
  const auto out_of_range =
      http_request(http_port_, "POST", "/v1/completions", body, {{"X-data-parallel-rank", "2"}});
  ASSERT_EQ(out_of_range.status, 400) << out_of_range.body;
  EXPECT_NE(out_of_range.body.find("data_parallel_rank 2 is out of range"), std::string::npos);
}

}  // namespace
}  // namespace kvmock
