// SIGTERM while nats-server is down and kvmockd is under load from the built-in driver and
// from clients of both intakes (issue #20, "Keep it fixed"), on both event planes: the
// process ends within shutdown.grace_s + shutdown.flush_deadline_s (plus a little), with
// exit status 1 and a report of the events it could not publish
// (docs/ARCHITECTURE.md#shutdown-order).
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/chaos_harness.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/nats_server.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;

class SigtermDuringOutage : public ::testing::TestWithParam<bool> {};

TEST_P(SigtermDuringOutage, EndsWithinTheDeadlinesAndReportsWhatWasNotPublished) {
  testing::ChaosDaemonOptions options;
  options.jetstream = GetParam();
  options.workers = 3;
  options.requests_per_s = 40.0;
  options.flush_deadline_s = 3;
  testing::ChaosRig rig(options);
  ASSERT_TRUE(rig.ready()) << rig.daemon_output();
  testing::NatsServer& server = rig.server;
  testing::ChaosDaemon& daemon = *rig.daemon;
  testing::IntakeLoad intake(daemon, server.url());
  std::this_thread::sleep_for(testing::chaos_short() ? 1s : 5s);

  server.crash();
  ASSERT_TRUE(testing::wait_for_status(daemon.admin_port(), "/ready", 503, 5s));
  // Let a backlog build up that cannot reach NATS.
  std::this_thread::sleep_for(testing::chaos_short() ? 1s : 10s);
  ASSERT_GT(daemon.metric("kvmock_outbox_depth"), 0) << "nothing waits for NATS";

  std::chrono::duration<double> took{};
  const auto budget = std::chrono::seconds(options.grace_s + options.flush_deadline_s);
  const int status = daemon.terminate(budget + 20s, took);
  const std::string log = daemon.process().output();
  std::printf("shutdown during the outage took %.2f s (budget %ld s)\n", took.count(),
              static_cast<long>(budget.count()));
  ASSERT_NE(status, -1) << "still running after SIGTERM\n" << log;
  EXPECT_EQ(status, 1) << "events were left unpublished: the documented status is 1\n" << log;
  EXPECT_LT(took, budget + 1500ms) << log;
  EXPECT_NE(log.find("could not be published to NATS"), std::string::npos) << log;

  intake.stop();
  EXPECT_GT(intake.http_ok(), 0u) << "the HTTP intake was not busy";
}

INSTANTIATE_TEST_SUITE_P(Planes, SigtermDuringOutage, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "JetStream" : "CoreNats";
                         });

}  // namespace
}  // namespace kvmock
