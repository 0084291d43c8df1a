// LoRA adapters as a vLLM pod serves them (docs/wire-formats.md#lora-adapters), through a
// real kvmockd: configured and runtime-loaded adapters are served models listed with their
// parent, requests naming one run on it and its KV events carry it (lora_name, lora_id, and
// block hashes apart from the base model's), vllm:lora_requests_info names the adapters in
// use, and after an unload - even with requests for it in flight - new ones get 404.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
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

constexpr uint32_t kBlockSize = 16;

// The stored blocks one SUB session saw, by the adapter their event names ("" for none).
struct StoredByAdapter {
  std::map<std::string, std::set<uint64_t>> hashes;
  std::map<std::string, std::set<int64_t>> lora_ids;
};

class LoraAdaptersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.start());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    sub_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
    sub_->set(zmq::sockopt::linger, 0);
    sub_->set(zmq::sockopt::subscribe, "");
    endpoint_ = testing::bind_ephemeral(*sub_);
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() +
        "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
        "\nworkers:\n  count: 1\n  http_base_port: " + std::to_string(http_port_) +
        "\n  model:\n    aliases: base-alias\n" +
        "  lora:\n    modules: \"sql-lora, alias-lora=base-alias\"\n    max_loras: 2\n" +
        "  engine:\n    block_size: " + std::to_string(kBlockSize) +
        "\n    num_gpu_blocks: 4096\n  zmq_events:\n    enabled: true\n    connect: " + endpoint_ +
        "\n    replay_base_port: 0\n");
    daemon_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    if (!testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10))) {
      FAIL() << "daemon not ready: " << daemon_->output();
    }
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(15)), 0) << daemon_->output();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  testing::HttpResult post(const std::string& path, const json& body) {
    return testing::http_request(http_port_, "POST", path, body.dump());
  }

  testing::HttpResult complete(const std::string& model, const std::vector<TokenId>& prompt,
                               uint32_t max_tokens = 2) {
    return post("/v1/completions",
                json{{"model", model}, {"prompt", prompt}, {"max_tokens", max_tokens}});
  }

  json models() {
    const auto answer = testing::http_request(http_port_, "GET", "/v1/models");
    EXPECT_EQ(answer.status, 200) << answer.body;
    json by_id = json::object();
    const json listed = json::parse(answer.body);
    for (const json& model : listed.at("data")) {
      by_id[model.at("id").get<std::string>()] = model;
    }
    return by_id;
  }

  // A prompt no other request shares, so its blocks are new and get a BlockStored.
  std::vector<TokenId> fresh_prompt() { return testing::seeded_prompt(++prompts_, 4 * kBlockSize); }

  // Sends the same fresh prompt to each of `models` and reads the events, in rounds (a PUB
  // drops what it sends before the SUB's connection is up), until every model's blocks
  // were seen; bounded.
  StoredByAdapter store_one_prompt_on(const std::vector<std::string>& models) {
    StoredByAdapter seen;
    const auto all_seen = [&] {
      for (const std::string& model : models) {
        const std::string adapter = model == "kvmock-model" ? "" : model;
        if (seen.hashes[adapter].empty()) return false;
      }
      return true;
    };
    for (int round = 0; round < 40 && !all_seen(); ++round) {
      seen = {};
      const std::vector<TokenId> prompt = fresh_prompt();
      for (const std::string& model : models) {
        const auto answer = complete(model, prompt);
        EXPECT_EQ(answer.status, 200) << answer.body;
      }
      read_for(std::chrono::milliseconds(250), seen);
    }
    return seen;
  }

  void read_for(std::chrono::milliseconds span, StoredByAdapter& seen) {
    testing::read_engine_batches(*sub_, span, [&](const testing::ReceivedEngineBatch& received) {
      for (const EngineEvent& event : received.batch.events) {
        const auto* stored = std::get_if<EngineBlockStored>(&event);
        if (stored == nullptr) continue;
        const std::string adapter = stored->lora_name.value_or("");
        for (uint64_t hash : stored->block_hashes) seen.hashes[adapter].insert(hash);
        if (stored->lora_id) seen.lora_ids[adapter].insert(*stored->lora_id);
      }
    });
  }

  testing::NatsServer nats_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> sub_;
  std::string endpoint_;
  uint16_t admin_port_ = 0;
  uint16_t http_port_ = 0;
  uint32_t prompts_ = 0;
  std::unique_ptr<testing::ChildProcess> daemon_;
  std::string config_path_;
};

TEST_F(LoraAdaptersTest, ConfiguredAndLoadedAdaptersAreServedModelsWithTheirParent) {
  json listed = models();
  ASSERT_TRUE(listed.contains("sql-lora")) << listed.dump();
  EXPECT_EQ(listed["sql-lora"]["parent"], "kvmock-model");
  EXPECT_EQ(listed["alias-lora"]["parent"], "base-alias");
  EXPECT_TRUE(listed["kvmock-model"]["parent"].is_null());

  const auto loaded =
      post("/v1/load_lora_adapter", {{"lora_name", "chat-lora"}, {"lora_path", "/adapters/chat"}});
  EXPECT_EQ(loaded.status, 200) << loaded.body;
  EXPECT_EQ(loaded.body, "Success: LoRA adapter 'chat-lora' added successfully.");
  listed = models();
  ASSERT_TRUE(listed.contains("chat-lora")) << listed.dump();
  EXPECT_EQ(listed["chat-lora"]["root"], "/adapters/chat");
  EXPECT_EQ(listed["chat-lora"]["parent"], "kvmock-model");

  // vLLM's refusals, in OpenAI's error shape.
  const auto again =
      post("/v1/load_lora_adapter", {{"lora_name", "chat-lora"}, {"lora_path", "/adapters/chat"}});
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(json::parse(again.body)["error"]["message"],
            "The lora adapter 'chat-lora' has already been loaded.");
  const auto no_path = post("/v1/load_lora_adapter", {{"lora_name", "x"}});
  EXPECT_EQ(no_path.status, 400);
  EXPECT_EQ(json::parse(no_path.body)["error"]["message"],
            "Both 'lora_name' and 'lora_path' must be provided.");
  const auto bad_type = post("/v1/load_lora_adapter", {{"lora_name", 3}, {"lora_path", "/p"}});
  EXPECT_EQ(bad_type.status, 400) << bad_type.body;
  const auto unknown = post("/v1/unload_lora_adapter", {{"lora_name", "nope"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(json::parse(unknown.body)["error"]["message"],
            "The lora adapter 'nope' cannot be found.");
}

TEST_F(LoraAdaptersTest, LoadRequestEventsUnloadAnd404EvenWithRequestsInFlight) {
  const auto loaded =
      post("/v1/load_lora_adapter", {{"lora_name", "chat-lora"}, {"lora_path", "/adapters/chat"}});
  ASSERT_EQ(loaded.status, 200) << loaded.body;

  // The answer names the adapter, as vLLM's does.
  const auto answer = complete("chat-lora", fresh_prompt());
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(json::parse(answer.body)["model"], "chat-lora");

  // One prompt on the base model and on two adapters: three sets of blocks, apart.
  const StoredByAdapter seen = store_one_prompt_on({"kvmock-model", "sql-lora", "chat-lora"});
  ASSERT_FALSE(seen.hashes.at("").empty()) << daemon_->output();
  ASSERT_FALSE(seen.hashes.at("sql-lora").empty());
  ASSERT_FALSE(seen.hashes.at("chat-lora").empty());
  for (uint64_t hash : seen.hashes.at("chat-lora")) {
    EXPECT_EQ(seen.hashes.at("").count(hash), 0u) << "an adapter's block hashes as the base's";
    EXPECT_EQ(seen.hashes.at("sql-lora").count(hash), 0u);
  }
  // lora_id is vLLM's lora_int_id: the configured adapters came first (1, 2), then this one.
  EXPECT_EQ(seen.lora_ids.at("sql-lora"), std::set<int64_t>{1});
  EXPECT_EQ(seen.lora_ids.at("chat-lora"), std::set<int64_t>{3});
  EXPECT_EQ(seen.lora_ids.count(""), 0u);

  // vllm:lora_requests_info names the adapter while a long request runs on it.
  std::thread long_request([&] {
    const auto answer = complete("chat-lora", fresh_prompt(), 300);
    EXPECT_EQ(answer.status, 200) << answer.body;
  });
  bool named = false;
  for (int i = 0; i < 200 && !named; ++i) {
    const auto metrics = testing::http_request(http_port_, "GET", "/metrics");
    named = metrics.body.find("max_lora=\"2\"") != std::string::npos &&
            metrics.body.find("running_lora_adapters=\"chat-lora\"") != std::string::npos;
    if (!named) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(named) << testing::http_request(http_port_, "GET", "/metrics").body;

  // Clients keep asking for the adapter while it is unloaded: each answer is a 200 (it ran)
  // or vLLM's 404, nothing else, and once the unload has answered only 404s follow.
  std::atomic<bool> unloaded{false};
  std::atomic<int> after_unload_ok{0};
  std::atomic<int> not_found{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 200; ++i) {
        const bool was_unloaded = unloaded.load();
        std::vector<TokenId> prompt(32, static_cast<TokenId>(500 + c));
        const auto answer = complete("chat-lora", prompt);
        if (answer.status == 404) {
          ++not_found;
          EXPECT_EQ(json::parse(answer.body)["error"]["code"], "model_not_found");
          if (was_unloaded) return;
        } else {
          EXPECT_EQ(answer.status, 200) << answer.body;
          if (was_unloaded) ++after_unload_ok;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto unload = post("/v1/unload_lora_adapter", {{"lora_name", "chat-lora"}});
  EXPECT_EQ(unload.status, 200) << unload.body;
  EXPECT_EQ(unload.body, "Success: LoRA adapter 'chat-lora' removed successfully.");
  unloaded = true;
  for (auto& client : clients) client.join();
  long_request.join();  // started before the unload: it runs to the end
  EXPECT_EQ(after_unload_ok.load(), 0);
  EXPECT_GE(not_found.load(), 4);
  EXPECT_EQ(complete("chat-lora", fresh_prompt()).status, 404);
  EXPECT_FALSE(models().contains("chat-lora"));
  EXPECT_EQ(post("/v1/unload_lora_adapter", {{"lora_name", "chat-lora"}}).status, 404);
  // The other adapters and the model are untouched.
  EXPECT_EQ(complete("sql-lora", fresh_prompt()).status, 200);
  EXPECT_EQ(complete("base-alias", fresh_prompt()).status, 200);
}

}  // namespace
}  // namespace kvmock
