// File descriptors run out while kvmockd is under load (issue #20, "Keep it fixed"): the
// daemon runs with `ulimit -n 128` and one worker's port is flooded with idle connections.
// During the episode the event plane and the NATS generate intake (connections that are
// already open) keep working and /ready is not 200; once the flood leaves, every worker
// port and the admin port serve again, /ready is 200, and /metrics counts the EMFILE
// accept errors.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "tests/integration/http/raw_connection.h"
#include "tests/support/chaos_harness.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;

constexpr int kDescriptorLimit = 128;
constexpr int kFloodConnections = 300;

bool wait_for_log(testing::ChaosDaemon& daemon, const std::string& text,
                  std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (daemon.process().output().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

TEST(FdExhaustionUnderLoad, PortsRecoverAndTheOtherPlanesKeepWorking) {
  testing::ChaosDaemonOptions options;
  options.nofile_limit = kDescriptorLimit;
  testing::ChaosRig rig(options);
  ASSERT_TRUE(rig.ready()) << rig.daemon_output();
  testing::ChaosDaemon& daemon = *rig.daemon;
  testing::RouterEventRecorder& recorder = *rig.recorder;
  testing::IntakeLoad intake(daemon, rig.server.url());
  std::this_thread::sleep_for(1s);

  const int episodes = testing::chaos_short() ? 1 : 3;
  for (int episode = 1; episode <= episodes; ++episode) {
    SCOPED_TRACE("episode " + std::to_string(episode));
    {
      std::vector<std::unique_ptr<testing::RawConnection>> flood;
      for (int i = 0; i < kFloodConnections; ++i)
        flood.push_back(std::make_unique<testing::RawConnection>(daemon.worker_port(0)));
      ASSERT_TRUE(wait_for_log(daemon, "accept failed (EMFILE", 10s)) << daemon.process().output();
      const uint64_t events_before = recorder.total();
      const uint64_t generated_before = intake.nats_ok();
      std::this_thread::sleep_for(testing::chaos_short() ? 2s : 5s);
      EXPECT_GT(recorder.total(), events_before) << "the event plane stalled";
      EXPECT_GT(intake.nats_ok(), generated_before) << "the NATS generate intake stalled";
      EXPECT_NE(testing::http_request(daemon.admin_port(), "GET", "/ready", {}, 1s).status, 200)
          << "ready while no descriptor is left";
    }
    EXPECT_TRUE(testing::wait_for_status(daemon.worker_port(0), "/health", 200, 10s))
        << daemon.process().output();
    EXPECT_TRUE(testing::wait_for_status(daemon.worker_port(1), "/health", 200, 10s));
    EXPECT_TRUE(daemon.wait_ready(10s)) << daemon.process().output();
    const uint64_t served_before = intake.http_ok();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (intake.http_ok() < served_before + 10 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    EXPECT_GE(intake.http_ok(), served_before + 10) << "HTTP completions did not resume";
  }
  intake.stop();
  EXPECT_GT(daemon.metric("kvmock_http_accept_errors_total", "errno=\"EMFILE\""), 0);
  EXPECT_TRUE(wait_for_log(daemon, "accepting again", 1s)) << daemon.process().output();
  std::chrono::duration<double> took{};
  EXPECT_EQ(daemon.terminate(15s, took), 0) << daemon.process().output();
}

}  // namespace
}  // namespace kvmock
