// Crash and restart through a real kvmockd and nats-server (docs/faults.md#crash-and-restart),
// and the admin port's worker endpoints: a crashed worker refuses connections and publishes
// nothing; its restart publishes a Cleared whose id continues the channel's ids, and serves
// again from an empty KV cache on the same port. /admin/workers/{id}/config is the worker's
// own /admin/config; /admin/workers/config reaches every worker; bad requests name what is
// wrong and change nothing. With Dynamo discovery in a real etcd, the crashed worker's
// records go and come back under a new instance id.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon_harness.h"
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

constexpr const char* kKvSubject = "namespace.dynamo.component.backend.kv-events";
constexpr uint64_t kFirst = 1000;  // workers.worker_id_base
constexpr uint64_t kSecond = 1001;

// The errno of a TCP connect to 127.0.0.1:`port` (0: it connected).
int connect_errno(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return errno;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  const int error = result == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

// Waits (bounded) until `done` holds; true when it did.
template <typename Done>
bool eventually(Done done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// 40 words: two full blocks of 16 with the mock tokenizer (one id per word).
std::string prompt_words(const std::string& word) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += word + std::to_string(i) + " ";
  return text;
}

class CrashRestartTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(nats_.start()); }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(15s), 0) << daemon_->output();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  void start_daemon() {
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_base_ = static_cast<uint16_t>(testing::free_loopback_port_range(2));
    ASSERT_NE(http_base_, 0);
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() +
        "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
        "\nshutdown: { grace_s: 1, flush_deadline_s: 2 }\nworkers:\n  count: 2\n"
        "  http_base_port: " +
        std::to_string(http_base_) + "\n  engine:\n    block_size: 16\n    num_gpu_blocks: 1024\n");
    daemon_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    ASSERT_TRUE(testing::wait_for_status(admin_port_, "/ready", 200, 10s)) << daemon_->output();
  }

  testing::HttpResult admin(const std::string& method, const std::string& target,
                            const std::string& body = {}) {
    return testing::http_request(admin_port_, method, target, body);
  }
  // A completion of `prompt` on worker `index`; its cached_tokens, or -1 on failure.
  int complete(size_t index, const std::string& prompt) {
    const auto answer =
        testing::http_request(static_cast<uint16_t>(http_base_ + index), "POST", "/v1/completions",
                              json{{"prompt", prompt}, {"max_tokens", 2}}.dump());
    if (answer.status != 200) {
      ADD_FAILURE() << "completion on worker " << index << ": " << answer.status << " "
                    << answer.body << answer.error;
      return -1;
    }
    return json::parse(answer.body)["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
  }

  testing::NatsServer nats_;
  uint16_t admin_port_ = 0;
  uint16_t http_base_ = 0;
  std::unique_ptr<testing::ChildProcess> daemon_;
  std::string config_path_;
};

TEST_F(CrashRestartTest, ACrashedWorkerRefusesAndComesBackEmptyAfterACleared) {
  auto client = testing::connect_test_client(nats_.url());
  ASSERT_NE(client, nullptr);
  testing::EventSubscriber events(*client, kKvSubject);
  ASSERT_TRUE(events.subscribed());
  start_daemon();

  const std::string prompt = prompt_words("alpha");
  EXPECT_EQ(complete(0, prompt), 0);
  EXPECT_EQ(complete(0, prompt), 32) << "the prefix cache holds the two blocks";
  uint64_t last_id = 0;
  for (const RouterEvent& event : events.drain(300ms, 5s)) {
    if (event.worker_id == kFirst) last_id = event.event.event_id;
  }
  ASSERT_GE(last_id, 2u) << "a Cleared and a Stored at least";

  const auto crashed = admin("POST", "/admin/workers/1000/crash");
  ASSERT_EQ(crashed.status, 200) << crashed.body;
  EXPECT_EQ(json::parse(crashed.body)["state"], "crashed");
  EXPECT_EQ(connect_errno(http_base_), ECONNREFUSED) << "the crashed worker's port still accepts";
  EXPECT_EQ(admin("POST", "/admin/workers/1000/crash").status, 409) << "crashed twice";
  const json listed = json::parse(admin("GET", "/admin/workers").body)["workers"];
  ASSERT_EQ(listed.size(), 2u) << listed;
  EXPECT_EQ(listed[0]["state"], "crashed");
  EXPECT_EQ(listed[1]["state"], "running");
  EXPECT_EQ(complete(1, prompt), 0) << "the other worker serves on";
  EXPECT_EQ(admin("GET", "/admin/workers/1000/config").status, 409);
  // Nothing of the crashed worker reaches NATS any more.
  for (const RouterEvent& event : events.drain(300ms, 5s)) {
    EXPECT_NE(event.worker_id, kFirst) << "an event after the crash";
  }

  const auto restarted = admin("POST", "/admin/workers/1000/restart");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  EXPECT_EQ(json::parse(restarted.body)["worker_id"], kFirst) << "same id without Dynamo";
  EXPECT_EQ(json::parse(restarted.body)["state"], "running");
  ASSERT_TRUE(eventually([&] { return connect_errno(http_base_) == 0; }, 5s));
  EXPECT_EQ(complete(0, prompt), 0) << "the restarted worker's cache is empty";
  std::vector<RouterEvent> after;
  for (const RouterEvent& event : events.drain(300ms, 5s)) {
    if (event.worker_id == kFirst) after.push_back(event);
  }
  ASSERT_GE(after.size(), 2u) << "a Cleared and the new request's Stored";
  EXPECT_TRUE(is_clear(after[0].event.data)) << "the restart opens with a Cleared";
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].event.event_id, last_id + 1 + i) << "ids continue without a gap";
  }

  const std::string metrics = admin("GET", "/metrics").body;
  EXPECT_NE(metrics.find("kvmock_worker_crashes_total{worker_id=\"1000\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kvmock_worker_restarts_total{worker_id=\"1000\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("kvmock_worker_crashes_total{worker_id=\"1001\"} 0"), std::string::npos);
  // A restart of a running worker is a crash and a restart.
  ASSERT_EQ(admin("POST", "/admin/workers/1001/restart").status, 200);
  EXPECT_EQ(complete(1, prompt), 0) << "the bounced worker's cache is empty";
  const std::string log = daemon_->output();
  EXPECT_NE(log.find("worker 1000 crashed on purpose"), std::string::npos) << log;
  EXPECT_NE(log.find("worker 1000 restarted"), std::string::npos) << log;
}

TEST_F(CrashRestartTest, ACrashCutsTheStreamsInFlightWithoutAnAnswer) {
  start_daemon();
  // Slow passes, so the stream is still running when the crash comes.
  ASSERT_EQ(admin("POST", "/admin/workers/1000/config", R"({"latency_scale":50})").status, 200);
  std::atomic<bool> streaming{false};
  std::string received;
  testing::HttpResult result;
  std::thread client([&] {
    result = testing::http_stream(
        http_base_, "POST", "/v1/completions",
        json{{"prompt", "one two three"}, {"max_tokens", 5000}, {"stream", true}}.dump(),
        [&](const std::string& data) {
          received += data;
          streaming = true;
          return true;
        },
        20s);
  });
  ASSERT_TRUE(eventually([&] { return streaming.load(); }, 10s));
  const auto crashed = admin("POST", "/admin/workers/1000/crash");
  client.join();
  ASSERT_EQ(crashed.status, 200) << crashed.body;
  EXPECT_EQ(result.status, 200) << "the stream had begun";
  EXPECT_EQ(received.find("[DONE]"), std::string::npos) << "a cut stream has no end";
  EXPECT_EQ(received.find("finish_reason\":\"length"), std::string::npos) << received;
}

TEST_F(CrashRestartTest, TheAdminPortReadsAndChangesEachWorkerOrAllOfThem) {
  start_daemon();
  const auto own = testing::http_request(http_base_, "GET", "/admin/config");
  const auto via_admin = admin("GET", "/admin/workers/1000/config");
  ASSERT_EQ(via_admin.status, 200) << via_admin.body;
  EXPECT_EQ(json::parse(via_admin.body), json::parse(own.body)) << "the same settings";

  const auto set = admin("POST", "/admin/workers/1001/config", R"({"failure_injection_rate":25})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(json::parse(set.body)["failure_injection_rate"], 25);
  const auto second_own =
      testing::http_request(static_cast<uint16_t>(http_base_ + 1), "GET", "/admin/config");
  EXPECT_EQ(json::parse(second_own.body)["failure_injection_rate"], 25);
  EXPECT_EQ(
      json::parse(
          testing::http_request(http_base_, "GET", "/admin/config").body)["failure_injection_rate"],
      0)
      << "the other worker kept its settings";

  // A bad patch for every worker names the key and changes none.
  const auto bad = admin("POST", "/admin/workers/config",
                         R"({"failure_injection_rate":50,"no_such_setting":1})");
  ASSERT_EQ(bad.status, 400) << bad.body;
  const json error = json::parse(bad.body)["error"];
  EXPECT_NE(error["message"].get<std::string>().find("no_such_setting"), std::string::npos)
      << error;
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_EQ(json::parse(admin("GET", "/admin/workers/1000/config").body)["failure_injection_rate"],
            0);
  EXPECT_EQ(json::parse(admin("GET", "/admin/workers/1001/config").body)["failure_injection_rate"],
            25);
  const auto bad_one = admin("POST", "/admin/workers/1000/config", R"({"failure_types":["x"]})");
  EXPECT_EQ(bad_one.status, 400);
  EXPECT_NE(bad_one.body.find("failure_types"), std::string::npos) << bad_one.body;

  const auto all = admin("POST", "/admin/workers/config", R"({"failure_injection_rate":10})");
  ASSERT_EQ(all.status, 200) << all.body;
  const json per_worker = json::parse(all.body)["workers"];
  EXPECT_EQ(per_worker["1000"]["failure_injection_rate"], 10) << per_worker;
  EXPECT_EQ(per_worker["1001"]["failure_injection_rate"], 10) << per_worker;
  for (uint16_t port : {http_base_, static_cast<uint16_t>(http_base_ + 1)}) {
    const auto settings = testing::http_request(port, "GET", "/admin/config");
    EXPECT_EQ(json::parse(settings.body)["failure_injection_rate"], 10) << port;
  }

  // Unknown ids are named; other bad requests are refused and change nothing.
  const auto unknown = admin("POST", "/admin/workers/4242/crash");
  ASSERT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(json::parse(unknown.body)["error"]["message"].get<std::string>().find("4242"),
            std::string::npos);
  EXPECT_EQ(admin("GET", "/admin/workers/abc/config").status, 404);
  EXPECT_EQ(admin("GET", "/admin/workers/1000/crash").status, 405);
  EXPECT_EQ(admin("DELETE", "/admin/workers/1000/config").status, 405);
  EXPECT_EQ(admin("GET", "/admin/workers/config").status, 405);
  EXPECT_EQ(admin("POST", "/admin/workers/1000/explode").status, 404);
  EXPECT_EQ(connect_errno(http_base_), 0) << "no bad request crashed a worker";
  const json listed = json::parse(admin("GET", "/admin/workers").body)["workers"];
  for (const json& worker : listed) EXPECT_EQ(worker["state"], "running") << listed;
}

// Dynamo discovery in a real etcd: the crashed worker's records go at once (its lease is
// revoked) and its restart registers a new instance id.
TEST(CrashRestartDynamoTest, TheRecordsGoAndComeBackUnderANewInstanceId) {
  ASSERT_TRUE(testing::etcd_server_available()) << "etcd (Debian etcd-server) is not installed";
  testing::NatsServer nats;
  ASSERT_TRUE(nats.start());
  testing::EtcdServer etcd;
  ASSERT_TRUE(etcd.start());
  etcd::EtcdClientOptions options;
  options.endpoints = {etcd.endpoint()};
  auto client = etcd::EtcdClient::create(options);
  ASSERT_TRUE(client);
  auto generate_ids = [&] {
    std::vector<uint64_t> ids;
    auto range = (*client)->range_prefix("v1/instances/dynamo/backend/generate/");
    if (!range) return ids;
    for (const auto& kv : *range) ids.push_back(json::parse(kv.value)["instance_id"]);
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  auto records_of = [&](uint64_t id) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "/%llx", static_cast<unsigned long long>(id));
    size_t count = 0;
    if (auto range = (*client)->range_prefix("v1/"); range) {
      for (const auto& kv : *range) count += kv.key.ends_with(hex) ? 1 : 0;
    }
    return count;
  };

  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  const std::string config_path = testing::write_temp_file(
      "nats: { url: \"" + nats.url() +
      "\" }\nadmin: { listen: \"127.0.0.1:" + std::to_string(admin_port) +
      "\" }\nshutdown: { grace_s: 1, flush_deadline_s: 2 }\n"
      "workers:\n  count: 2\n  http_base_port: 0\n  model: { name: tiny-chat, path: \"" +
      std::string(KVMOCK_TEST_DATA_DIR) +
      "/model_dirs/tiny_chat\" }\n  engine: { block_size: 16, num_gpu_blocks: 512 }\n"
      "dynamo:\n  discovery: etcd\n  etcd_endpoints: \"" +
      etcd.endpoint() + "\"\n  tcp_listen: \"127.0.0.1:0\"\n  tcp_host: 127.0.0.1\n");
  testing::ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  ASSERT_TRUE(testing::wait_for_status(admin_port, "/ready", 200, 15s)) << daemon.output();

  const std::vector<uint64_t> before = generate_ids();
  ASSERT_EQ(before.size(), 2u);
  const json listed =
      json::parse(testing::http_request(admin_port, "GET", "/admin/workers").body)["workers"];
  ASSERT_EQ(listed.size(), 2u);
  const uint64_t crashed_id = listed[0]["worker_id"];
  const uint64_t other_id = listed[1]["worker_id"];
  EXPECT_EQ(records_of(crashed_id), 5u) << "card, generate, one query endpoint, two channels";

  const auto crashed = testing::http_request(
      admin_port, "POST", "/admin/workers/" + std::to_string(crashed_id) + "/crash");
  ASSERT_EQ(crashed.status, 200) << crashed.body;
  EXPECT_TRUE(eventually([&] { return records_of(crashed_id) == 0; }, 3s))
      << "the crashed instance's records stay";
  EXPECT_EQ(generate_ids(), std::vector<uint64_t>{other_id});

  const auto restarted = testing::http_request(
      admin_port, "POST", "/admin/workers/" + std::to_string(crashed_id) + "/restart");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  const uint64_t new_id = json::parse(restarted.body)["worker_id"];
  EXPECT_NE(new_id, crashed_id) << "a restarted Dynamo worker is a new instance";
  EXPECT_NE(new_id, other_id);
  EXPECT_TRUE(eventually([&] { return records_of(new_id) == 5; }, 3s)) << daemon.output();
  std::vector<uint64_t> expected{other_id, new_id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(generate_ids(), expected);
  EXPECT_EQ(records_of(crashed_id), 0u);
  // The old id is gone from the admin port too; the new one answers.
  EXPECT_EQ(testing::http_request(admin_port, "GET",
                                  "/admin/workers/" + std::to_string(crashed_id) + "/config")
                .status,
            404);
  EXPECT_EQ(testing::http_request(admin_port, "GET",
                                  "/admin/workers/" + std::to_string(new_id) + "/config")
                .status,
            200);

  // The old id's gauges are gone from /metrics; the new id has its own.
  const std::string metrics = testing::http_request(admin_port, "GET", "/metrics").body;
  EXPECT_EQ(metrics.find("vllm_kv_cache_usage_perc{model_name=\"tiny-chat\",worker_id=\"" +
                         std::to_string(crashed_id) + "\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vllm_kv_cache_usage_perc{model_name=\"tiny-chat\",worker_id=\"" +
                         std::to_string(new_id) + "\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find("kvmock_worker_restarts_total{worker_id=\"" + std::to_string(new_id) + "\"} 1"),
      std::string::npos);

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(15s), 0) << daemon.output();
  EXPECT_TRUE(generate_ids().empty()) << "every lease revoked at shutdown";
  ::unlink(config_path.c_str());
}

// The file backend and the NATS request plane: the crashed instance's record files go and
// its request subject has no subscriber; the restart writes the files of a new instance.
TEST(CrashRestartDynamoTest, FileRecordsAndNatsSubjectsGoAndComeBack) {
  testing::NatsServer nats;
  ASSERT_TRUE(nats.start());
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("kvmock-crash-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  const std::string config_path = testing::write_temp_file(
      "nats: { url: \"" + nats.url() +
      "\" }\nadmin: { listen: \"127.0.0.1:" + std::to_string(admin_port) +
      "\" }\nshutdown: { grace_s: 1, flush_deadline_s: 2 }\n"
      "workers:\n  count: 1\n  http_base_port: 0\n  model: { name: tiny-chat, path: \"" +
      std::string(KVMOCK_TEST_DATA_DIR) +
      "/model_dirs/tiny_chat\" }\n  engine: { block_size: 16, num_gpu_blocks: 512 }\n"
      "dynamo:\n  discovery: file\n  file_root: \"" +
      root.string() + "\"\n  request_plane: nats\n");
  testing::ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  ASSERT_TRUE(testing::wait_for_status(admin_port, "/ready", 200, 15s)) << daemon.output();
  auto files_of = [&](uint64_t id) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(id));
    size_t count = 0;
    if (!std::filesystem::exists(root)) return count;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      // The key's rest is one percent-encoded file name: ...%2Fgenerate%2F{id:x}.
      const std::string name = entry.path().filename().string();
      const bool of_id = name == hex || name.ends_with(std::string("%2F") + hex) ||
                         name.ends_with(std::string("%2f") + hex);
      count += entry.is_regular_file() && of_id ? 1 : 0;
    }
    return count;
  };
  auto client = testing::connect_test_client(nats.url());
  ASSERT_NE(client, nullptr);
  auto responds = [&](uint64_t id) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(id));
    const std::string subject = std::string("dynamo_backend.generate-") + hex;
    natsMsg* reply = nullptr;
    const natsStatus status =
        natsConnection_RequestString(&reply, client->connection(), subject.c_str(), "x", 2000);
    natsMsg_Destroy(reply);
    return status != NATS_NO_RESPONDERS;
  };

  const json listed =
      json::parse(testing::http_request(admin_port, "GET", "/admin/workers").body)["workers"];
  ASSERT_EQ(listed.size(), 1u);
  const uint64_t old_id = listed[0]["worker_id"];
  ASSERT_EQ(files_of(old_id), 5u);
  EXPECT_TRUE(responds(old_id));

  ASSERT_EQ(testing::http_request(admin_port, "POST",
                                  "/admin/workers/" + std::to_string(old_id) + "/crash")
                .status,
            200);
  EXPECT_EQ(files_of(old_id), 0u) << "the crashed instance's record files stay";
  EXPECT_TRUE(eventually([&] { return !responds(old_id); }, 3s)) << "its subject still answers";

  const auto restarted = testing::http_request(
      admin_port, "POST", "/admin/workers/" + std::to_string(old_id) + "/restart");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  const uint64_t new_id = json::parse(restarted.body)["worker_id"];
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(files_of(new_id), 5u);
  EXPECT_TRUE(responds(new_id));
  EXPECT_FALSE(responds(old_id));

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(15s), 0) << daemon.output();
  EXPECT_EQ(files_of(new_id), 0u);
  std::filesystem::remove_all(root);
  ::unlink(config_path.c_str());
}

}  // namespace
}  // namespace kvmock
