// `workers.zmq_events.connect` as llm-d uses vLLM's KV events: the test plays llm-d's
// scheduler, binding one SUB socket that every mock worker's PUB dials, each worker on its
// own `kv@<host>:<port>@<model>` topic (docs/wire-formats.md#engine-zmq-stream). The
// scheduler then restarts - its SUB closes and a new one binds the same port - and every
// stream must come back on its own with its seq still counting up.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "tests/support/daemon_harness.h"
#include "tests/support/engine_requests.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/zmq_test_support.h"

namespace kvmock {
namespace {

using nlohmann::json;

constexpr uint32_t kWorkers = 3;
constexpr uint32_t kBlockSize = 16;

// What one SUB session saw of one topic.
struct Stream {
  std::vector<uint64_t> seqs;  // in arrival order
  uint64_t stored_blocks = 0;
};

class ZmqConnectTopologyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.start());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_base_ = testing::free_loopback_port_range(kWorkers);
    ASSERT_NE(http_base_, 0);
    sub_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
    sub_->set(zmq::sockopt::linger, 0);
    sub_->set(zmq::sockopt::subscribe, "");
    endpoint_ = testing::bind_ephemeral(*sub_);
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(15)), 0) << daemon_->output();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  void start_daemon() {
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nworkers:\n  count: " + std::to_string(kWorkers) +
        "\n  http_base_port: " + std::to_string(http_base_) +
        "\n  engine:\n    block_size: " + std::to_string(kBlockSize) +
        "\n    num_gpu_blocks: 4096\n  zmq_events:\n    enabled: true\n    connect: " + endpoint_ +
        // base_port is unused when connecting, so even a range past 65535 must start.
        "\n    base_port: 65535\n    replay_base_port: 0\n    topic: "
        "\"kv@{host}:{port}@{model}\"\n");
    daemon_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    if (testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10))) return;
    FAIL() << "daemon not ready: " << daemon_->output();
  }

  std::string topic_of(uint32_t worker) const {
    return "kv@127.0.0.1:" + std::to_string(http_base_ + static_cast<int>(worker)) +
           "@kvmock-model";
  }

  // A prompt no other request shares, so its blocks are new and get a BlockStored.
  std::vector<TokenId> fresh_prompt() { return testing::seeded_prompt(++prompts_, 4 * kBlockSize); }

  void complete(uint32_t worker) {
    const json body{{"model", "kvmock-model"}, {"prompt", fresh_prompt()}, {"max_tokens", 2}};
    const auto answer =
        testing::http_request(static_cast<uint16_t>(http_base_ + static_cast<int>(worker)), "POST",
                              "/v1/completions", body.dump());
    EXPECT_EQ(answer.status, 200) << answer.error << answer.body;
  }

  // Sends a completion to every worker whose topic has not yet shown a stored block, then
  // reads what arrives for a while; repeats (bounded) until every topic has. A PUB drops
  // what it sends before its connection and our subscription are up, hence the rounds.
  std::map<std::string, Stream> collect_all_topics() {
    std::map<std::string, Stream> streams;
    auto complete_topics = [&] {
      for (uint32_t w = 0; w < kWorkers; ++w) {
        auto it = streams.find(topic_of(w));
        if (it == streams.end() || it->second.stored_blocks == 0) return false;
      }
      return true;
    };
    for (int round = 0; round < 40 && !complete_topics(); ++round) {
      for (uint32_t w = 0; w < kWorkers; ++w) {
        auto it = streams.find(topic_of(w));
        if (it == streams.end() || it->second.stored_blocks == 0) complete(w);
      }
      read_for(std::chrono::milliseconds(250), streams);
    }
    return streams;
  }

  void read_for(std::chrono::milliseconds span, std::map<std::string, Stream>& streams) {
    testing::read_engine_batches(*sub_, span, [&](const testing::ReceivedEngineBatch& received) {
      Stream& stream = streams[received.topic];
      stream.seqs.push_back(received.seq);
      for (const EngineEvent& event : received.batch.events) {
        if (const auto* stored = std::get_if<EngineBlockStored>(&event)) {
          EXPECT_EQ(stored->block_size, kBlockSize);
          EXPECT_EQ(stored->token_ids.size(), stored->block_hashes.size() * kBlockSize);
          stream.stored_blocks += stored->block_hashes.size();
        }
      }
    });
  }

  // Exactly the three workers' topics, each with stored blocks and rising seqs.
  void expect_three_streams(const std::map<std::string, Stream>& streams) {
    ASSERT_EQ(streams.size(), kWorkers);
    for (uint32_t w = 0; w < kWorkers; ++w) {
      auto it = streams.find(topic_of(w));
      ASSERT_NE(it, streams.end()) << topic_of(w) << "\n" << daemon_->output();
      EXPECT_GT(it->second.stored_blocks, 0u) << topic_of(w);
      for (size_t i = 1; i < it->second.seqs.size(); ++i) {
        EXPECT_GT(it->second.seqs[i], it->second.seqs[i - 1]) << topic_of(w);
      }
    }
  }

  testing::NatsServer nats_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> sub_;
  std::string endpoint_;
  uint16_t admin_port_ = 0;
  int http_base_ = 0;
  uint32_t prompts_ = 0;
  std::unique_ptr<testing::ChildProcess> daemon_;
  std::string config_path_;
};

TEST_F(ZmqConnectTopologyTest, EveryWorkerDialsTheSchedulerOnItsOwnTopicAcrossARestart) {
  start_daemon();
  const auto before = collect_all_topics();
  expect_three_streams(before);
  if (HasFatalFailure()) return;
  for (uint32_t w = 0; w < kWorkers; ++w) {
    EXPECT_NE(daemon_->output().find("connects to " + endpoint_ + ", topic \"" + topic_of(w)),
              std::string::npos)
        << daemon_->output();
  }

  // The scheduler restarts on the same address. Binding may briefly fail while the old
  // listener is torn down; retry, bounded.
  sub_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int attempt = 0; attempt < 50 && !sub_; ++attempt) {
    auto sub = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
    sub->set(zmq::sockopt::linger, 0);
    sub->set(zmq::sockopt::subscribe, "");
    try {
      sub->bind(endpoint_);
      sub_ = std::move(sub);
    } catch (const zmq::error_t&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_TRUE(sub_) << "could not bind " << endpoint_ << " again";

  const auto after = collect_all_topics();
  expect_three_streams(after);
  if (HasFatalFailure()) return;
  for (uint32_t w = 0; w < kWorkers; ++w) {
    const std::string topic = topic_of(w);
    // Each engine keeps its own counter: nothing reset it when the SUB went away.
    EXPECT_GT(after.at(topic).seqs.front(), before.at(topic).seqs.back()) << topic;
  }
}

}  // namespace
}  // namespace kvmock
