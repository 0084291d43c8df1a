// `kvmockd run` with a mock worker whose engine has a G2 (host) tier, driven as a client
// would: completions over HTTP push the working set out of a small G1, the evicted blocks
// appear on NATS in the host_pinned tier, a revisit is served from G2, and the worker's
// /metrics shows the kvmock_g2_* series moving.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <thread>

#include "tests/support/daemon_harness.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

using testing::ChildProcess;
using testing::EventSubscriber;
using testing::http_request;
using testing::NatsServer;

constexpr uint32_t kBlockSize = 16;
constexpr uint32_t kPromptTokens = 128;  // 8 blocks
constexpr uint32_t kG1Blocks = 64;
constexpr uint32_t kPrompts = 16;  // 128 blocks: twice G1
constexpr uint64_t kKvBytesPerToken = 131072;
constexpr const char* kWorkerId = "1000";  // worker_id_base default + 0

// Distinct token ids per prompt, so prompts share no block.
std::string completion_body(uint32_t prompt) {
  nlohmann::json tokens = nlohmann::json::array();
  for (uint32_t i = 0; i < kPromptTokens; ++i) tokens.push_back(prompt * 10000 + i + 1);
  return nlohmann::json{{"model", "kvmock-model"}, {"prompt", tokens}, {"max_tokens", 2}}.dump();
}

// The value of the series whose line starts with `series` ("name{labels}"), or -1.
double metric_value(const std::string& body, const std::string& series) {
  size_t at = 0;
  while ((at = body.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || body[at - 1] == '\n') {
      return std::strtod(body.c_str() + at + series.size() + 1, nullptr);
    }
    at += series.size();
  }
  return -1;
}

std::string series(const std::string& name, const std::string& link = "") {
  std::string labels = "worker_id=\"" + std::string(kWorkerId) + "\"";
  if (!link.empty()) labels += ",link=\"" + link + "\"";
  return name + "{" + labels + "}";
}

class RunG2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start());
    admin_port_ = testing::free_loopback_port();
    http_port_ = testing::free_loopback_port();
    ASSERT_NE(admin_port_, http_port_);
    client_ = testing::connect_test_client(server_.url());
    ASSERT_TRUE(client_);
    router_ =
        std::make_unique<EventSubscriber>(*client_, "namespace.dynamo.component.backend.kv-events");
    ASSERT_TRUE(router_->subscribed());
  }
  void TearDown() override {
    router_.reset();
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  // One worker, no load driver; G2 on when `g2_blocks` > 0.
  void write_worker_config(uint64_t g2_blocks) {
    std::string text = "nats:\n  url: " + server_.url() +
                       "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
                       "\nworkers:\n  count: 1\n  http_host: 127.0.0.1\n  http_base_port: " +
                       std::to_string(http_port_) +
                       "\n  engine:\n    block_size: " + std::to_string(kBlockSize) +
                       "\n    num_gpu_blocks: " + std::to_string(kG1Blocks) + "\n";
    if (g2_blocks > 0) {
      text += "    g2:\n      num_blocks: " + std::to_string(g2_blocks) +
              "\n      kv_bytes_per_token: " + std::to_string(kKvBytesPerToken) + "\n";
    }
    config_path_ = testing::write_temp_file(text);
  }

  bool wait_ready(std::chrono::seconds timeout) {
    return testing::wait_for_status(admin_port_, "/ready", 200, timeout) &&
           testing::wait_for_status(http_port_, "/health", 200, timeout);
  }

  // Sends one completion and returns usage.prompt_tokens_details.cached_tokens, or -1.
  int64_t complete(uint32_t prompt) {
    const auto result = http_request(http_port_, "POST", "/v1/completions", completion_body(prompt),
                                     std::chrono::seconds(10));
    EXPECT_EQ(result.status, 200) << result.body << result.error;
    if (result.status != 200) return -1;
    const auto json = nlohmann::json::parse(result.body, nullptr, false);
    if (json.is_discarded()) return -1;
    const auto& usage = json["usage"];
    EXPECT_EQ(usage["prompt_tokens"], kPromptTokens) << result.body;
    return usage["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
  }

  std::string worker_metrics() { return http_request(http_port_, "GET", "/metrics").body; }

  NatsServer server_;
  std::unique_ptr<NatsClient> client_;
  std::unique_ptr<EventSubscriber> router_;
  int admin_port_ = 0;
  int http_port_ = 0;
  std::string config_path_;
};

TEST_F(RunG2Test, EvictedBlocksReachHostTierAndARevisitIsOnboardedFromG2) {
  write_worker_config(/*g2_blocks=*/1024);
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  ASSERT_TRUE(wait_ready(std::chrono::seconds(10))) << daemon.output();

  const std::string before = worker_metrics();
  EXPECT_EQ(metric_value(before, series("kvmock_g2_blocks_capacity")), 1024) << before;
  EXPECT_EQ(metric_value(before, series("kvmock_g2_onboard_hit_tokens_total")), 0) << before;

  // One at a time, so each prompt is cached and released before the next arrives.
  for (uint32_t p = 0; p < kPrompts; ++p) {
    ASSERT_EQ(complete(p), 0) << "prompt " << p << ": nothing shared yet\n" << daemon.output();
  }
  const std::string filled = worker_metrics();
  EXPECT_GT(metric_value(filled, series("kvmock_g2_bytes_moved_total", "offload")), 0) << filled;
  EXPECT_EQ(metric_value(filled, series("kvmock_g2_onboard_hit_tokens_total")), 0) << filled;

  // Prompt 0 left G1 first (LRU); all but its last block (recomputed for logits) come
  // back from G2.
  const int64_t cached = complete(0);
  EXPECT_GT(cached, 0) << daemon.output();
  EXPECT_LE(cached, kPromptTokens - kBlockSize);

  const std::string after = worker_metrics();
  const double hit_tokens = metric_value(after, series("kvmock_g2_onboard_hit_tokens_total"));
  EXPECT_GT(hit_tokens, 0) << after;
  EXPECT_EQ(hit_tokens, static_cast<double>(cached)) << after;
  const double onboarded = metric_value(after, series("kvmock_g2_bytes_moved_total", "onboard"));
  EXPECT_EQ(onboarded, hit_tokens * static_cast<double>(kKvBytesPerToken)) << after;
  EXPECT_GT(metric_value(after, series("kvmock_g2_blocks_used")), 0) << after;
  EXPECT_GE(metric_value(after, series("kvmock_g2_transfers_in_flight", "offload")), 0) << after;
  EXPECT_GE(metric_value(after, series("kvmock_g2_transfers_in_flight", "onboard")), 0) << after;
  EXPECT_EQ(metric_value(after, series("kvmock_g2_offloads_dropped_total")), 0) << after;

  const std::vector<RouterEvent> events = router_->drain(std::chrono::milliseconds(1000));
  std::set<BlockHash> removed_from_device;
  std::set<BlockHash> stored_on_host;
  uint64_t host_stores = 0;
  for (const RouterEvent& e : events) {
    EXPECT_EQ(e.worker_id, 1000u);
    if (e.storage_tier == StorageTier::kDevice) {
      if (const auto* removed = std::get_if<RemoveData>(&e.event.data)) {
        removed_from_device.insert(removed->block_hashes.begin(), removed->block_hashes.end());
      }
    } else {
      EXPECT_EQ(e.storage_tier, StorageTier::kHostPinned);
      if (const auto* stored = std::get_if<StoreData>(&e.event.data)) {
        ++host_stores;
        for (const StoredBlock& b : stored->blocks) {
          EXPECT_EQ(removed_from_device.count(b.block_hash), 1u)
              << "host Stored of block " << b.block_hash << " before its device Removed";
          stored_on_host.insert(b.block_hash);
        }
      }
    }
  }
  EXPECT_GT(host_stores, 0u) << events.size() << " events\n" << daemon.output();
  // G1 evicted at least the overflow of the working set, and each went to the host tier.
  EXPECT_GE(stored_on_host.size(), (kPrompts * kPromptTokens / kBlockSize) - kG1Blocks);
  const double bytes_offloaded =
      metric_value(worker_metrics(), series("kvmock_g2_bytes_moved_total", "offload"));
  EXPECT_EQ(bytes_offloaded,
            static_cast<double>(stored_on_host.size() * kBlockSize * kKvBytesPerToken));

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
}

TEST_F(RunG2Test, WorkerWithoutG2ExportsNoG2SeriesAndNoHostEvents) {
  write_worker_config(/*g2_blocks=*/0);
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  ASSERT_TRUE(wait_ready(std::chrono::seconds(10))) << daemon.output();
  for (uint32_t p = 0; p < kPrompts; ++p) ASSERT_EQ(complete(p), 0) << daemon.output();
  EXPECT_EQ(complete(0), 0);  // evicted from G1 and nowhere else to come from

  const std::string metrics = worker_metrics();
  EXPECT_NE(metrics.find("vllm:prefix_cache_queries_total"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("kvmock_g2_"), std::string::npos) << metrics;
  const std::vector<RouterEvent> events = router_->drain(std::chrono::milliseconds(500));
  EXPECT_FALSE(events.empty());
  for (const RouterEvent& e : events) EXPECT_EQ(e.storage_tier, StorageTier::kDevice);

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
}

}  // namespace
}  // namespace kvmock
