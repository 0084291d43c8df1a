// The shutdown acceptance test: `kvmockd run` with mock workers under the built-in
// load driver publishes to a real nats-server (core NATS); SIGTERM must end it with
// status 0 within shutdown.grace_s + shutdown.flush_deadline_s, and every event it
// produced must be on NATS: per (worker, dp rank), ids 1..last with no gap, where `last`
// is what the daemon's shutdown report says it produced.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using testing::ChildProcess;

constexpr uint32_t kWorkers = 3;
constexpr uint32_t kDpSize = 2;
constexpr uint64_t kWorkerIdBase = 500;
constexpr int kGraceS = 2;
constexpr int kFlushDeadlineS = 3;

// "worker 500 dp_rank 1: last event id 1234" lines of the shutdown report.
std::map<std::pair<uint64_t, uint32_t>, uint64_t> reported_last_ids(const std::string& log) {
  std::map<std::pair<uint64_t, uint32_t>, uint64_t> last;
  const std::regex line("worker ([0-9]+) dp_rank ([0-9]+): last event id ([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    last[{std::stoull((*it)[1]), static_cast<uint32_t>(std::stoul((*it)[2]))}] =
        std::stoull((*it)[3]);
  }
  return last;
}

TEST(ShutdownUnderLoad, EveryEventProducedBeforeSigtermIsOnNatsAndTheExitIsZeroInTime) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  testing::RouterEventRecorder recorder(server.url(),
                                        "namespace.dynamo.component.backend.kv-events");
  ASSERT_TRUE(recorder.subscribed());

  const int admin_port = testing::free_loopback_port();
  const std::string config_path = testing::write_temp_file(
      "nats:\n  url: " + server.url() + "\nadmin:\n  listen: 127.0.0.1:" +
      std::to_string(admin_port) + "\nshutdown:\n  grace_s: " + std::to_string(kGraceS) +
      "\n  flush_deadline_s: " + std::to_string(kFlushDeadlineS) + "\nworkers:\n  count: " +
      std::to_string(kWorkers) + "\n  worker_id_base: " + std::to_string(kWorkerIdBase) +
      "\n  http_base_port: 0\n  engine:\n    block_size: 16\n    num_gpu_blocks: 256\n"
      "    dp_size: " +
      std::to_string(kDpSize) +
      "\n    speedup_ratio: 20.0\n  load:\n    enabled: true\n    requests_per_s: 40.0\n"
      "    input_tokens: 400\n    output_tokens: 24\n    prefix_groups: 4\n");
  ChildProcess daemon(
      {testing::kvmockd_path(), "run", "--config", config_path, "--log-level", "debug"});
  ASSERT_TRUE(testing::wait_for_status(static_cast<uint16_t>(admin_port), "/ready", 200,
                                       std::chrono::seconds(10)))
      << daemon.output();

  // Load for a while, and make sure events are flowing at the moment of the signal.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const uint64_t before = recorder.total();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_GT(recorder.total(), before) << "no events were flowing when the signal came";
  ASSERT_GT(before, 200u);

  const auto signalled = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  const int status = daemon.wait(std::chrono::seconds(kGraceS + kFlushDeadlineS + 5));
  const auto took = std::chrono::steady_clock::now() - signalled;
  const std::string log = daemon.output();
  ASSERT_EQ(status, 0) << log;
  EXPECT_LT(took, std::chrono::seconds(kGraceS + kFlushDeadlineS + 2)) << log;
  EXPECT_NE(log.find("every event was published to NATS"), std::string::npos) << log;
  recorder.wait_quiet(std::chrono::milliseconds(500), std::chrono::seconds(10));

  const auto reported = reported_last_ids(log);
  const auto seen = recorder.ids();
  EXPECT_EQ(recorder.undecodable(), 0u);
  ASSERT_EQ(reported.size(), size_t{kWorkers} * kDpSize) << log;
  for (uint32_t w = 0; w < kWorkers; ++w) {
    for (uint32_t r = 0; r < kDpSize; ++r) {
      const std::pair<uint64_t, uint32_t> channel{kWorkerIdBase + w, r};
      ASSERT_TRUE(reported.count(channel)) << "worker " << channel.first << " rank " << r;
      const uint64_t last = reported.at(channel);
      EXPECT_GT(last, 0u);
      const auto it = seen.find(channel);
      ASSERT_NE(it, seen.end()) << "nothing arrived for worker " << channel.first << " rank " << r;
      const std::vector<uint64_t>& ids = it->second;
      // Core NATS keeps one publisher's order, so arrival order must be exactly 1..last.
      ASSERT_EQ(ids.size(), last) << "worker " << channel.first << " rank " << r;
      for (uint64_t i = 0; i < ids.size(); ++i) {
        ASSERT_EQ(ids[i], i + 1) << "worker " << channel.first << " rank " << r << " position "
                                 << i;
      }
    }
  }
  EXPECT_EQ(seen.size(), reported.size());
  ::unlink(config_path.c_str());
}

}  // namespace
}  // namespace kvmock
