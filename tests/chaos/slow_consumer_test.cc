// Slow consumers (issue #20, "Keep it fixed"). A router that subscribes to the KV events
// and never reads is nats-server's problem (it cuts the slow consumer off), never
// kvmockd's: other subscribers still get every event, gap-free, and the daemon's outbox
// and memory stay small. HTTP clients that read their streams very slowly hold only their
// own connections: other clients of the same worker are served at normal speed.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "tests/integration/http/raw_connection.h"
#include "tests/support/chaos_harness.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;

const std::string kEventSubject = "namespace.dynamo.component.backend.kv-events";
constexpr long kRssGrowthBoundKib = 64 * 1024;

std::chrono::seconds hold_time() { return testing::chaos_short() ? 6s : 30s; }

// A router that never reads: subscribes with a tiny receive buffer, then stops reading.
std::unique_ptr<testing::RawConnection> stalled_nats_subscriber(int port) {
  auto connection = std::make_unique<testing::RawConnection>(static_cast<uint16_t>(port), 1024);
  connection->read_until("\r\n", 1, 2s);  // INFO
  connection->send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB " + kEventSubject +
                   " 1\r\nPING\r\n");
  connection->read_until("PONG", 1, 2s);
  return connection;
}

double slow_consumers(uint16_t monitor_port) {
  const auto varz = testing::http_request(monitor_port, "GET", "/varz", {}, 2s);
  const auto json = nlohmann::json::parse(varz.body, nullptr, false);
  return json.is_object() && json.contains("slow_consumers") ? json["slow_consumers"].get<double>()
                                                             : -1;
}

TEST(SlowConsumer, ARouterThatNeverReadsDoesNotSlowTheDaemonOrOtherRouters) {
  const int monitor_port = testing::free_loopback_port();
  // Small server-side limits so the stalled subscriber is cut off within seconds.
  const std::string server_config =
      testing::write_temp_file("write_deadline: \"500ms\"\nmax_pending: 1048576\n");
  testing::ChaosDaemonOptions options;
  options.workers = 3;
  options.requests_per_s = 60.0;
  testing::ChaosRig rig(options, {"-c", server_config, "-m", std::to_string(monitor_port)});
  ASSERT_TRUE(rig.ready()) << rig.daemon_output();
  testing::ChaosDaemon& daemon = *rig.daemon;
  const long rss_start = testing::rss_kib(daemon.process().pid());
  const auto stalled = stalled_nats_subscriber(rig.server.port());
  ASSERT_TRUE(stalled->connected());

  const auto deadline = std::chrono::steady_clock::now() + 30s;
  double max_outbox = 0;
  while (slow_consumers(static_cast<uint16_t>(monitor_port)) < 1 &&
         std::chrono::steady_clock::now() < deadline) {
    max_outbox = std::max(max_outbox, daemon.metric("kvmock_outbox_depth"));
    EXPECT_TRUE(testing::wait_for_status(daemon.admin_port(), "/ready", 200, 2s));
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_GE(slow_consumers(static_cast<uint16_t>(monitor_port)), 1)
      << "nats-server never saw the stalled subscriber as a slow consumer";
  std::this_thread::sleep_for(hold_time() / 3);
  const long rss_end = testing::rss_kib(daemon.process().pid());
  std::printf("slow consumer: RSS %ld -> %ld KiB, outbox depth at most %.0f\n", rss_start, rss_end,
              max_outbox);
  EXPECT_LT(max_outbox, 1000) << "events piled up in the daemon";
  EXPECT_LT(rss_end - rss_start, kRssGrowthBoundKib);
  EXPECT_EQ(daemon.metric("kvmock_nats_reconnects_total"), 0) << "the daemon itself was cut off";

  std::chrono::duration<double> took{};
  const int status = daemon.terminate(15s, took);
  const std::string log = daemon.process().output();
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find("every event was published to NATS"), std::string::npos) << log;
  rig.recorder->wait_quiet(500ms, 10s);
  const auto seen = rig.recorder->ids();
  EXPECT_EQ(seen.size(), daemon.options().workers);
  EXPECT_EQ(testing::first_gap(seen), "") << "no outage here: the healthy subscriber saw 1..N";
  ::unlink(server_config.c_str());
}

TEST(SlowConsumer, HttpClientsThatReadVerySlowlyDoNotHoldUpOthers) {
  testing::ChaosDaemonOptions options;
  options.num_gpu_blocks = 1024;
  testing::ChaosRig rig(options);
  ASSERT_TRUE(rig.ready()) << rig.daemon_output();
  testing::ChaosDaemon& daemon = *rig.daemon;
  const long rss_start = testing::rss_kib(daemon.process().pid());

  // Streams of 1,500 tokens on worker 0, read 64 bytes every 200 ms through a tiny buffer.
  const std::string body = nlohmann::json{
      {"prompt", "a slow reader's prompt"},
      {"max_tokens", 1500},
      {"stream", true}}.dump();
  std::vector<std::unique_ptr<testing::RawConnection>> slow_readers;
  for (int i = 0; i < 8; ++i) {
    auto reader = std::make_unique<testing::RawConnection>(daemon.worker_port(0), 1024);
    ASSERT_TRUE(
        reader->send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
    slow_readers.push_back(std::move(reader));
  }
  testing::IntakeLoad intake(daemon, rig.server.url());
  std::vector<size_t> received(slow_readers.size(), 0);
  long rss_peak = rss_start;
  const auto until = std::chrono::steady_clock::now() + hold_time();
  while (std::chrono::steady_clock::now() < until) {
    for (size_t i = 0; i < slow_readers.size(); ++i)
      received[i] += slow_readers[i]->read_some(64, 1ms).size();
    rss_peak = std::max(rss_peak, testing::rss_kib(daemon.process().pid()));
    std::this_thread::sleep_for(200ms);
  }
  intake.stop();
  std::printf("slow readers: RSS %ld KiB, peak %ld KiB; others: %lu ok, slowest %ld ms\n",
              rss_start, rss_peak, static_cast<unsigned long>(intake.http_ok()),
              static_cast<long>(intake.slowest_http().count()));
  for (size_t i = 0; i < received.size(); ++i) EXPECT_GT(received[i], 0u) << "reader " << i;
  EXPECT_GT(intake.http_ok(), 20u);
  EXPECT_EQ(intake.http_failed(), 0u);
  EXPECT_LT(intake.slowest_http(), 2s) << "a slow reader held up other clients";
  EXPECT_GT(intake.nats_ok(), 0u);
  EXPECT_LT(rss_peak - rss_start, kRssGrowthBoundKib);
  EXPECT_TRUE(daemon.wait_ready(1s));

  slow_readers.clear();  // they hang up; their requests are cancelled
  std::chrono::duration<double> took{};
  EXPECT_EQ(daemon.terminate(15s, took), 0) << daemon.process().output();
}

}  // namespace
}  // namespace kvmock
