// kvmockd's mock workers as Dynamo 1.0 instances, as a Dynamo frontend meets them
// (docs/dynamo-discovery.md): records in a real etcd (or in discovery files), requests on
// the TCP or NATS request plane answered over call-home streams, KV events under the
// instance id, the indexer query per dp rank, and the records gone when the process goes
// (revoked on SIGTERM, expired after SIGKILL).
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/events/router_event.h"
#include "core/tokens/block_hash.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/dynamo_frontend_client.h"
#include "tests/support/etcd_server.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/etcd/etcd_client.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;

// tests/data/model_dirs/tiny_chat: vocab_size 1000, EOS id 2.
const std::string kModelDir = std::string(KVMOCK_TEST_DATA_DIR) + "/model_dirs/tiny_chat";
constexpr uint64_t kVocabSize = 1000;
constexpr uint32_t kEosId = 2;

std::string daemon_config(const std::string& nats_url, int admin_port,
                          const std::string& workers_extra, const std::string& dynamo) {
  return "nats: { url: \"" + nats_url + "\" }\n" +                                  //
         "admin: { listen: \"127.0.0.1:" + std::to_string(admin_port) + "\" }\n" +  //
         "shutdown: { grace_s: 1, flush_deadline_s: 2 }\n" +                        //
         "workers:\n  model: { name: tiny-chat, path: \"" + kModelDir + "\" }\n" +  //
         workers_extra + "dynamo:\n" + dynamo;
}

std::unique_ptr<etcd::EtcdClient> etcd_client(const testing::EtcdServer& server) {
  etcd::EtcdClientOptions options;
  options.endpoints = {server.endpoint()};
  auto client = etcd::EtcdClient::create(options);
  return client ? std::move(*client) : nullptr;
}

std::map<std::string, etcd::KeyValue> records_in(etcd::EtcdClient& client) {
  std::map<std::string, etcd::KeyValue> records;
  auto range = client.range_prefix("v1/");
  if (!range) {
    ADD_FAILURE() << range.error().message;
    return records;
  }
  for (auto& kv : *range) records[kv.key] = kv;
  return records;
}

// "v1/instances/dynamo/backend/generate/{id:x}" -> id, from every generate record.
std::vector<uint64_t> generate_instances(const std::map<std::string, etcd::KeyValue>& records) {
  const std::string prefix = "v1/instances/dynamo/backend/generate/";
  std::vector<uint64_t> ids;
  for (const auto& [key, kv] : records) {
    if (!key.starts_with(prefix)) continue;
    const json value = json::parse(kv.value);
    const auto id = value["instance_id"].get<uint64_t>();
    char hex[32];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(id));
    EXPECT_EQ(key.substr(prefix.size()), hex) << "the key names the instance id in hex";
    ids.push_back(id);
  }
  return ids;
}

std::string hex_id(uint64_t id) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(id));
  return hex;
}

std::string generate_body(const std::vector<uint32_t>& tokens, uint32_t max_tokens,
                          uint32_t dp_rank) {
  return json{{"model", "tiny-chat"},
              {"token_ids", tokens},
              {"stop_conditions", {{"max_tokens", max_tokens}, {"ignore_eos", nullptr}}},
              {"eos_token_ids", {kEosId}},
              {"annotations", json::array()},
              {"routing", {{"dp_rank", dp_rank}}}}
      .dump();
}

std::vector<uint32_t> prompt(uint32_t length, uint32_t seed) {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < length; ++i) tokens.push_back(3 + (seed * 7919 + i * 104729) % 990);
  return tokens;
}

// Waits (bounded) until `done` holds; true when it did.
template <typename Done>
bool eventually(Done done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

class DynamoWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::etcd_server_available()) << "etcd (Debian etcd-server) is not installed";
    ASSERT_TRUE(nats_.start());
    ASSERT_TRUE(etcd_.start());
    client_ = etcd_client(etcd_);
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  std::vector<std::string> run_etcd_daemon(uint32_t workers, uint32_t dp_size) {
    admin_port_ = testing::free_loopback_port();
    config_path_ = testing::write_temp_file(daemon_config(
        nats_.url(), admin_port_,
        "  count: " + std::to_string(workers) + "\n  http_base_port: 0\n  engine: { dp_size: " +
            std::to_string(dp_size) + ", block_size: 16, num_gpu_blocks: 512 }\n",
        "  discovery: etcd\n  etcd_endpoints: \"" + etcd_.endpoint() +
            "\"\n  tcp_listen: \"127.0.0.1:0\"\n  tcp_host: 127.0.0.1\n"));
    return {testing::kvmockd_path(), "run", "--config", config_path_};
  }

  testing::NatsServer nats_;
  testing::EtcdServer etcd_;
  std::unique_ptr<etcd::EtcdClient> client_;
  int admin_port_ = 0;
  std::string config_path_;
};

TEST_F(DynamoWorkerTest, AFrontendFindsTheWorkersInEtcdAndRoutesRequestsToThem) {
  auto router = testing::connect_test_client(nats_.url());
  ASSERT_NE(router, nullptr);
  testing::EventSubscriber events(*router, "namespace.dynamo.component.backend.kv-events");
  ASSERT_TRUE(events.subscribed());
  ChildProcess daemon(run_etcd_daemon(/*workers=*/2, /*dp_size=*/2));
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port_), "/ready", 200, 15s))
      << daemon.output();

  // Per worker: the model card, generate, one query endpoint per dp rank, two event channels;
  // every one attached to the worker's own lease, whose id is the instance id.
  const auto records = records_in(*client_);
  const std::vector<uint64_t> ids = generate_instances(records);
  ASSERT_EQ(ids.size(), 2u) << daemon.output();
  EXPECT_EQ(records.size(), 12u);
  for (const uint64_t id : ids) {
    SCOPED_TRACE("instance " + hex_id(id));
    const std::string hex = hex_id(id);
    for (const std::string& key : {"v1/instances/dynamo/backend/generate/" + hex,
                                   "v1/instances/dynamo/backend/worker_kv_indexer_query_dp0/" + hex,
                                   "v1/instances/dynamo/backend/worker_kv_indexer_query_dp1/" + hex,
                                   "v1/mdc/dynamo/backend/generate/" + hex,
                                   "v1/event_channels/dynamo/backend/kv-events/" + hex,
                                   "v1/event_channels/dynamo//kv_metrics/" + hex}) {
      ASSERT_EQ(records.count(key), 1u) << key;
      EXPECT_EQ(static_cast<uint64_t>(records.at(key).lease), id) << key;
    }
    const json card = json::parse(records.at("v1/mdc/dynamo/backend/generate/" + hex).value);
    EXPECT_EQ(card["type"], "Model");
    EXPECT_EQ(card["card_json"]["display_name"], "tiny-chat");
    EXPECT_EQ(card["card_json"]["kv_cache_block_size"], 16);
    EXPECT_EQ(card["card_json"]["runtime_config"]["total_kv_blocks"], 512);
    EXPECT_EQ(card["card_json"]["runtime_config"]["data_parallel_size"], 2);
  }

  // The generate instance names where to send requests: "host:port/{id:x}/generate".
  const uint64_t id = ids.front();
  const json generate =
      json::parse(records.at("v1/instances/dynamo/backend/generate/" + hex_id(id)).value);
  const std::string address = generate["transport"]["tcp"].get<std::string>();
  ASSERT_TRUE(address.starts_with("127.0.0.1:")) << address;
  const size_t slash = address.find('/');
  ASSERT_EQ(address.substr(slash + 1), hex_id(id) + "/generate");
  const auto port = static_cast<uint16_t>(std::stoi(address.substr(10, slash - 10)));

  testing::DynamoFrontendClient frontend;
  ASSERT_TRUE(frontend.connect(port));
  const std::string path = hex_id(id) + "/generate";
  const std::vector<uint32_t> shared = prompt(64, 1);
  std::vector<uint32_t> longer = shared;
  for (const uint32_t t : prompt(16, 2)) longer.push_back(t);
  std::vector<testing::FrontendResponse> answers;
  for (const auto& tokens : {shared, longer}) {
    const auto sent = frontend.send_request(path, generate_body(tokens, 8, /*dp_rank=*/1));
    EXPECT_EQ(frontend.read_ack(), std::optional<std::string>(""));
    auto stream = frontend.stream_for(sent.subject, 10s);
    ASSERT_NE(stream, nullptr) << daemon.output();
    answers.push_back(stream->read_all(10s));
  }
  for (const auto& answer : answers) {
    EXPECT_EQ(answer.protocol_error, "");
    EXPECT_FALSE(answer.error.has_value());
    ASSERT_EQ(answer.items.size(), 8u);
    EXPECT_TRUE(answer.sentinel);
    for (const json& item : answer.items) {
      for (const json& token : item["data"]["token_ids"]) {
        EXPECT_LT(token.get<uint64_t>(), kVocabSize) << "not an id of the model's vocabulary";
        EXPECT_NE(token.get<uint64_t>(), kEosId) << "EOS would end the frontend's stream";
      }
    }
    EXPECT_EQ(answer.items.back()["data"]["finish_reason"], "length");
  }
  // The second prompt extends the first: its shared blocks come from the prefix cache.
  EXPECT_GE(answers[1]
                .items.back()["data"]["completion_usage"]["prompt_tokens_details"]["cached_tokens"]
                .get<uint64_t>(),
            48u);

  // The router's recovery path: the worker's indexer, per dp rank, under the instance id.
  const auto query_sent = frontend.send_request(
      hex_id(id) + "/worker_kv_indexer_query_dp1",
      json{{"worker_id", id}, {"start_event_id", nullptr}, {"end_event_id", nullptr}}.dump());
  EXPECT_EQ(frontend.read_ack(), std::optional<std::string>(""));
  auto query_stream = frontend.stream_for(query_sent.subject, 10s);
  ASSERT_NE(query_stream, nullptr);
  const auto dump = query_stream->read_all(10s);
  ASSERT_EQ(dump.items.size(), 1u);
  ASSERT_TRUE(dump.items[0].contains("TreeDump")) << dump.items[0].dump().substr(0, 300);
  size_t blocks = 0;
  for (const json& event : dump.items[0]["TreeDump"]) {
    const json& stored = event["event"]["data"]["stored"];
    if (stored.is_object()) blocks += stored["blocks"].size();
  }
  EXPECT_GE(blocks, 5u) << "the 80-token prompt's five blocks: " << dump.items[0].dump();
  EXPECT_EQ(dump.items[0]["TreeDump"][0]["worker_id"].get<uint64_t>(), id);

  // KV events: under the instance id, on the rank that did the work (a channel publishes
  // its Cleared with its first event, so idle ranks publish nothing), with the content
  // hashes a router computes from the prompt's tokens.
  const std::vector<RouterEvent> published = events.drain(300ms, 10s);
  std::set<std::pair<uint64_t, uint32_t>> channels;
  std::set<uint64_t> stored_tokens_hashes;
  for (const RouterEvent& event : published) {
    channels.insert({event.worker_id, event.event.dp_rank});
    if (const auto* store = std::get_if<StoreData>(&event.event.data)) {
      for (const StoredBlock& block : store->blocks) stored_tokens_hashes.insert(block.tokens_hash);
    }
  }
  EXPECT_EQ(channels, (std::set<std::pair<uint64_t, uint32_t>>{{id, 1}}));
  EXPECT_EQ(events.last_envelope().publisher_id, id) << "the envelope names the instance";
  const std::vector<TokenId> longer_tokens(longer.begin(), longer.end());
  for (const uint64_t hash : tokens_hashes(longer_tokens, 16)) {
    EXPECT_EQ(stored_tokens_hashes.count(hash), 1u) << "a prompt block no router would match";
  }

  // A frontend's "stop" mid-stream cancels the request: nothing runs, no block stays in use
  // (the admin port renders vLLM's series with "_" for ":").
  const auto long_request =
      frontend.send_request(path, generate_body(prompt(64, 4), 1500, /*dp_rank=*/0));
  EXPECT_EQ(frontend.read_ack(), std::optional<std::string>(""));
  auto long_stream = frontend.stream_for(long_request.subject, 10s);
  ASSERT_NE(long_stream, nullptr);
  ASSERT_TRUE(long_stream->read_prologue());
  ASSERT_TRUE(long_stream->read_item(10s).has_value());
  long_stream->send_stop();
  EXPECT_TRUE(long_stream->closed_without_more(5s));
  const std::string worker_label = "worker_id=\"" + std::to_string(id) + "\"}";
  const auto gauge = [&](const std::string& name) -> std::optional<double> {
    const auto metrics =
        testing::http_request(static_cast<uint16_t>(admin_port_), "GET", "/metrics");
    std::istringstream lines(metrics.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with(name + "{") && line.find(worker_label) != std::string::npos) {
        return std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return std::nullopt;
  };
  EXPECT_TRUE(eventually(
      [&] {
        return gauge("vllm_num_requests_running") == 0.0 &&
               gauge("vllm_kv_cache_usage_perc") == 0.0;
      },
      5s))
      << "still running or holding blocks after stop: running "
      << gauge("vllm_num_requests_running").value_or(-1) << ", KV usage "
      << gauge("vllm_kv_cache_usage_perc").value_or(-1);

  // SIGTERM: the leases are revoked, so every record is gone at once.
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(15s), 0) << daemon.output();
  EXPECT_TRUE(records_in(*client_).empty()) << "records left after a clean shutdown";
}

TEST_F(DynamoWorkerTest, AfterSigkillTheRecordsExpireWithTheLease) {
  ChildProcess daemon(run_etcd_daemon(/*workers=*/1, /*dp_size=*/1));
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port_), "/ready", 200, 15s))
      << daemon.output();
  ASSERT_EQ(records_in(*client_).size(), 5u);
  // Kept alive past the 10 s TTL? Checked by the etcd backend's own tests with a 1 s TTL;
  // here: once the process is gone, the frontend sees the instance leave within the TTL.
  daemon.signal(SIGKILL);
  daemon.wait(5s);
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return records_in(*client_).empty(); }, 20s));
  EXPECT_LE(std::chrono::steady_clock::now() - killed, 12s) << "etcd lease TTL is 10 s";
}

// Registering many workers outlasts a lease's TTL: every lease must stay alive while the
// rest are granted and registered (at 1,000 workers and the 10 s TTL the first leases had
// expired before the last records were written, and the daemon stopped).
TEST_F(DynamoWorkerTest, EveryLeaseStaysAliveWhileManyWorkersRegister) {
  admin_port_ = testing::free_loopback_port();
  config_path_ = testing::write_temp_file(
      daemon_config(nats_.url(), admin_port_, "  count: 300\n  http_base_port: 0\n  threads: 1\n",
                    "  discovery: etcd\n  etcd_endpoints: \"" + etcd_.endpoint() +
                        "\"\n  lease_ttl_s: 1\n  tcp_listen: \"127.0.0.1:0\"\n"));
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port_), "/ready", 200, 60s))
      << daemon.output().substr(0, 2000);
  std::this_thread::sleep_for(2500ms);  // past the TTL: only kept-alive leases hold records
  EXPECT_EQ(records_in(*client_).size(), 300u * 5u);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s), 0);
}

TEST_F(DynamoWorkerTest, FileDiscoveryAndTheNatsRequestPlane) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("kvmock-dynamo-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  admin_port_ = testing::free_loopback_port();
  const int http_port = testing::free_loopback_port();
  config_path_ = testing::write_temp_file(daemon_config(
      nats_.url(), admin_port_, "  count: 1\n  http_base_port: " + std::to_string(http_port) + "\n",
      "  discovery: file\n  file_root: \"" + root.string() + "\"\n  request_plane: nats\n"));
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path_});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port_), "/ready", 200, 15s))
      << daemon.output();
  const auto record_files = [&] {
    std::vector<std::string> files;
    if (!std::filesystem::exists(root)) return files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (entry.is_regular_file()) files.push_back(entry.path().string());
    }
    return files;
  };
  ASSERT_EQ(record_files().size(), 5u) << daemon.output();

  // The generate record advertises the NATS subject; a request there is ACKed empty and
  // answered over the call-home stream.
  std::string subject;
  for (const std::string& file : record_files()) {
    std::ifstream in(file);
    const json value = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (value.is_object() && value.value("endpoint", "") == "generate" &&
        value.value("type", "") == "Endpoint") {
      subject = value["transport"]["nats_tcp"].get<std::string>();
    }
  }
  ASSERT_TRUE(subject.starts_with("dynamo_backend.generate-")) << subject;
  testing::DynamoFrontendClient frontend;
  std::string payload;
  const auto sent = frontend.make_request(&payload, generate_body(prompt(32, 3), 4, 0));
  auto requester = testing::connect_test_client(nats_.url());
  ASSERT_NE(requester, nullptr);
  natsMsg* reply = nullptr;
  ASSERT_EQ(natsConnection_Request(&reply, requester->connection(), subject.c_str(), payload.data(),
                                   static_cast<int>(payload.size()), 5000),
            NATS_OK);
  EXPECT_EQ(natsMsg_GetDataLength(reply), 0) << "the ACK is empty";
  natsMsg_Destroy(reply);
  auto stream = frontend.stream_for(sent.subject, 10s);
  ASSERT_NE(stream, nullptr);
  const auto answer = stream->read_all(10s);
  EXPECT_EQ(answer.items.size(), 4u);
  EXPECT_TRUE(answer.sentinel);

  // The served name is the model's everywhere, the OpenAI port included.
  const auto models = testing::http_request(static_cast<uint16_t>(http_port), "GET", "/v1/models");
  EXPECT_NE(models.body.find("\"tiny-chat\""), std::string::npos) << models.body;

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(15s), 0) << daemon.output();
  EXPECT_TRUE(record_files().empty()) << "record files left after a clean shutdown";
  std::filesystem::remove_all(root);
}

TEST(DynamoWorkerConfig, AModelDirectoryWithoutTokenizerIsAConfigErrorNamingIt) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("kvmock-model-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModelDir + "/config.json", dir / "config.json",
                             std::filesystem::copy_options::overwrite_existing);
  const std::string config_path = testing::write_temp_file(
      "workers:\n  count: 1\n  http_base_port: 0\n  model: { path: \"" + dir.string() +
      "\" }\nadmin: { listen: \"\" }\ndynamo: { discovery: file, file_root: \"" +
      (dir / "store").string() + "\" }\n");
  const auto result =
      testing::run_process({testing::kvmockd_path(), "run", "--config", config_path}, "", 20s);
  EXPECT_EQ(result.exit_status, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("tokenizer.json"), std::string::npos) << result.err;
  ::unlink(config_path.c_str());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvmock
