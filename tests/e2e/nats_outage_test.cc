// `kvmockd run` through NATS outages (issue #20): a full outbox with nats-server gone must
// not hold SIGTERM past shutdown.grace_s + shutdown.flush_deadline_s, and the events that
// never reach NATS are reported (exit status 1, docs/ARCHITECTURE.md shutdown order).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <regex>
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

constexpr int kGraceS = 2;
constexpr int kFlushDeadlineS = 2;

// The value of an unlabelled counter or gauge on the admin /metrics page (-1: absent).
double metric_value(uint16_t admin_port, const std::string& name) {
  const testing::HttpResult page =
      testing::http_request(admin_port, "GET", "/metrics", {}, std::chrono::seconds(2));
  const std::regex line("(^|\n)" + name + " ([0-9.e+]+)");
  std::smatch match;
  if (page.status != 200 || !std::regex_search(page.body, match, line)) return -1;
  return std::stod(match[2]);
}

// Waits (bounded) until the load has filled the outbox and the workers hold their events.
bool wait_until_events_held(uint16_t admin_port) {
  const auto filled_by = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (metric_value(admin_port, "kvmock_pipeline_events_held") <= 0 &&
         std::chrono::steady_clock::now() < filled_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return metric_value(admin_port, "kvmock_pipeline_events_held") > 0;
}

std::string outage_config(const std::string& nats_url, int admin_port, uint32_t workers,
                          size_t outbox_capacity, int worker_port = 0) {
  return "nats:\n  url: " + nats_url + "\n  outbox_capacity: " + std::to_string(outbox_capacity) +
         "\n  outbox_full_wait_ms: 200" +
         "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
         "\nshutdown:\n  grace_s: " + std::to_string(kGraceS) +
         "\n  flush_deadline_s: " + std::to_string(kFlushDeadlineS) +
         "\nworkers:\n  count: " + std::to_string(workers) +
         "\n  worker_id_base: 700\n  http_base_port: " + std::to_string(worker_port) +
         "\n  engine:\n    block_size: 16\n"
         "    num_gpu_blocks: 256\n    speedup_ratio: 20.0\n  load:\n    enabled: true\n"
         "    requests_per_s: 40.0\n    input_tokens: 200\n    output_tokens: 8\n"
         "    prefix_groups: 4\n";
}

TEST(NatsOutage, SigtermWithNatsDownAndTheOutboxFullEndsWithinTheDeadlines) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  const int admin_port = testing::free_loopback_port();
  const std::string config_path =
      testing::write_temp_file(outage_config(server.url(), admin_port, 3, 20));
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(10)))
      << daemon.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  server.stop();
  ASSERT_TRUE(wait_until_events_held(static_cast<uint16_t>(admin_port)))
      << "the outbox never filled up\n"
      << daemon.output();

  const auto signalled = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  const int status = daemon.wait(std::chrono::seconds(kGraceS + kFlushDeadlineS + 20));
  const auto took = std::chrono::steady_clock::now() - signalled;
  const std::string log = daemon.output();
  std::printf("shutdown took %.2f s\n", std::chrono::duration<double>(took).count());
  ASSERT_NE(status, -1) << "still running after SIGTERM\n" << log;
  EXPECT_EQ(status, 1) << log;  // some events never reached NATS
  EXPECT_LT(took, std::chrono::seconds(kGraceS + kFlushDeadlineS) + std::chrono::milliseconds(1500))
      << log;
  EXPECT_NE(log.find("could not be published to NATS"), std::string::npos) << log;
  ::unlink(config_path.c_str());
}

// Defect 6: with NATS away and the outbox full, every mock worker used to stall (requests
// hung, no status) while its /health said 200. Now the workers hold their events, refuse
// new requests with 503 at once and say why on /health and the admin /ready, and all of it
// recovers when NATS is back.
TEST(NatsOutage, AFullOutboxMakesWorkersAnswer503AtOnceAndTheyRecoverWithNats) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  const int admin_port = testing::free_loopback_port();
  const int worker_port = testing::free_loopback_port();
  const std::string config_path =
      testing::write_temp_file(outage_config(server.url(), admin_port, 1, 20, worker_port));
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  const auto admin = static_cast<uint16_t>(admin_port);
  const auto worker = static_cast<uint16_t>(worker_port);
  ASSERT_TRUE(testing::wait_for_status(admin, "/ready", 200, std::chrono::seconds(10)))
      << daemon.output();
  EXPECT_EQ(testing::http_request(worker, "GET", "/health").status, 200);

  server.stop();
  ASSERT_TRUE(wait_until_events_held(admin)) << daemon.output();
  const testing::HttpResult health = testing::http_request(worker, "GET", "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.body.find("event outbox is full"), std::string::npos) << health.body;
  const testing::HttpResult ready = testing::http_request(admin, "GET", "/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("event outbox full"), std::string::npos) << ready.body;

  const auto sent = std::chrono::steady_clock::now();
  const testing::HttpResult refused = testing::http_request(
      worker, "POST", "/v1/completions", R"({"model":"kvmock-model","prompt":"hi","max_tokens":2})",
      std::chrono::seconds(5));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(1));
  EXPECT_GE(metric_value(admin, "kvmock_pipeline_events_held_total"), 1);

  ASSERT_TRUE(server.start());
  EXPECT_TRUE(testing::wait_for_status(worker, "/health", 200, std::chrono::seconds(15)))
      << daemon.output();
  EXPECT_TRUE(testing::wait_for_status(admin, "/ready", 200, std::chrono::seconds(15)));
  EXPECT_EQ(metric_value(admin, "kvmock_pipeline_events_held"), 0);
  daemon.signal(SIGTERM);
  EXPECT_NE(daemon.wait(std::chrono::seconds(kGraceS + kFlushDeadlineS + 5)), -1);
  ::unlink(config_path.c_str());
}

// Runs the daemon until ready, lets it serve load for `load_for`, then SIGTERMs it.
void run_once(const std::string& config_path, int admin_port, std::chrono::milliseconds load_for) {
  ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config_path});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(10)))
      << daemon.output();
  std::this_thread::sleep_for(load_for);
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.wait(std::chrono::seconds(kGraceS + kFlushDeadlineS + 5)), 0) << daemon.output();
}

TEST(NatsOutage, EveryChannelStartsWithClearedSoARestartIsVisibleToRouters) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  auto client = testing::connect_test_client(server.url());
  ASSERT_TRUE(client);
  testing::EventSubscriber subscriber(*client, "namespace.dynamo.component.backend.kv-events");
  ASSERT_TRUE(subscriber.subscribed());
  const int admin_port = testing::free_loopback_port();
  const std::string config_path =
      testing::write_temp_file(outage_config(server.url(), admin_port, 2, 100000));

  // Two lives of the same workers (a restart), each with load, so Stored events follow.
  run_once(config_path, admin_port, std::chrono::milliseconds(1500));
  run_once(config_path, admin_port, std::chrono::milliseconds(1500));
  const std::vector<RouterEvent> events =
      subscriber.drain(std::chrono::milliseconds(500), std::chrono::seconds(10));

  std::map<std::pair<WorkerId, DpRank>, std::vector<const RouterEvent*>> channels;
  for (const RouterEvent& e : events) channels[{e.worker_id, e.event.dp_rank}].push_back(&e);
  ASSERT_EQ(channels.size(), 2u);
  for (const auto& [channel, seen] : channels) {
    SCOPED_TRACE("worker " + std::to_string(channel.first));
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.front()->event.event_id, 1u);
    EXPECT_TRUE(is_clear(seen.front()->event.data)) << "the first event is not Cleared";
    size_t starts = 0;
    size_t stored = 0;
    for (size_t i = 0; i < seen.size(); ++i) {
      const KvCacheEvent& e = seen[i]->event;
      if (std::holds_alternative<StoreData>(e.data)) ++stored;
      if (e.event_id == 1) {
        ++starts;
        EXPECT_TRUE(is_clear(e.data)) << "a life starts at id 1 without Cleared, position " << i;
      } else {
        ASSERT_GT(i, 0u);
        EXPECT_EQ(e.event_id, seen[i - 1]->event.event_id + 1) << "position " << i;
      }
    }
    EXPECT_EQ(starts, 2u) << "one Cleared id 1 per start of the daemon";
    EXPECT_GT(stored, 0u) << "no Stored events followed";
  }
  ::unlink(config_path.c_str());
}

// Core NATS is at-most-once: what kvmockd flushes after an outage may reach a router that
// has not re-subscribed yet. The ids must then let the router see the gap (they continue,
// never reset), so that it recovers through the indexer query.
TEST(NatsOutage, AfterAnOutageIdsContinueSoASubscriberCanSeeAnyGap) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  testing::RouterEventRecorder recorder(server.url(),
                                        "namespace.dynamo.component.backend.kv-events");
  ASSERT_TRUE(recorder.subscribed());
  const int admin_port = testing::free_loopback_port();
  const std::string config_path =
      testing::write_temp_file(outage_config(server.url(), admin_port, 2, 100000));
  ChildProcess daemon(
      {testing::kvmockd_path(), "run", "--config", config_path, "--log-level", "debug"});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(10)))
      << daemon.output();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::map<std::pair<uint64_t, uint32_t>, uint64_t> before;
  for (const auto& [channel, ids] : recorder.ids()) before[channel] = ids.back();
  ASSERT_FALSE(before.empty()) << daemon.output();

  server.stop();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(15)))
      << daemon.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.wait(std::chrono::seconds(kGraceS + kFlushDeadlineS + 5)), 0) << daemon.output();
  recorder.wait_quiet(std::chrono::milliseconds(500), std::chrono::seconds(10));

  for (const auto& [channel, ids] : recorder.ids()) {
    SCOPED_TRACE("worker " + std::to_string(channel.first));
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 1u);
    for (size_t i = 1; i < ids.size(); ++i) {
      // Strictly increasing: a missing id shows as a jump, never as a reset or a repeat.
      ASSERT_GT(ids[i], ids[i - 1]) << "position " << i;
    }
    if (before.count(channel)) {
      EXPECT_GT(ids.back(), before.at(channel)) << "nothing arrived after the outage";
    }
  }
  ::unlink(config_path.c_str());
}

}  // namespace
}  // namespace kvmock
