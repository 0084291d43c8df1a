// nats-server killed (SIGKILL) and restarted while kvmockd is under load on both planes
// (issue #20, "Keep it fixed"): the event plane (core NATS or JetStream) and the request
// plane (the NATS generate intake). After each restart: /ready is 200 again, KV events and
// load reports flow again, generate requests over NATS are answered, and the ids a router
// sees let it detect what it missed (core NATS: they keep increasing, never reset;
// JetStream: the stream holds every id exactly once). HTTP is served throughout.
#include <gtest/gtest.h>

#include <thread>

#include "core/events/subjects.h"
#include "tests/support/chaos_harness.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;
using testing::ChaosDaemon;

// Polls `value` until it exceeds `floor` or `limit` passes; returns whether it did.
template <typename Value>
bool wait_above(Value value, uint64_t floor, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (value() <= floor) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string event_subject(bool jetstream) {
  return jetstream ? jetstream_subject(jetstream_stream_name("dynamo", "backend"), "kv-events")
                   : kv_events_subject("dynamo", "backend", "kv-events");
}

class NatsRestartUnderLoad : public ::testing::TestWithParam<bool> {};

TEST_P(NatsRestartUnderLoad, EveryPlaneResumesAndRoutersCanSeeTheGap) {
  const bool jetstream = GetParam();
  const int restarts = testing::chaos_short() ? 1 : 3;
  testing::ChaosDaemonOptions options;
  options.jetstream = jetstream;
  testing::ChaosRig rig(options);
  ASSERT_TRUE(rig.ready()) << rig.daemon_output();
  testing::NatsServer& server = rig.server;
  testing::ChaosDaemon& daemon = *rig.daemon;
  testing::MessageCounter events(server.url(), event_subject(jetstream));
  testing::MessageCounter loads(server.url(), kv_metrics_subject("dynamo"));
  ASSERT_TRUE(events.subscribed() && loads.subscribed());
  testing::IntakeLoad intake(daemon, server.url());
  std::this_thread::sleep_for(2s);
  ASSERT_GT(events.count(), 0u) << daemon.process().output();
  ASSERT_GT(intake.nats_ok(), 0u) << daemon.process().output();

  for (int round = 1; round <= restarts; ++round) {
    SCOPED_TRACE("restart " + std::to_string(round));
    server.crash();
    // /ready tells the truth during the outage.
    EXPECT_TRUE(testing::wait_for_status(daemon.admin_port(), "/ready", 503, 5s));
    std::this_thread::sleep_for(2s);
    const uint64_t events_before = events.count();
    const uint64_t loads_before = loads.count();
    const uint64_t generated_before = intake.nats_ok();
    ASSERT_TRUE(server.start());

    // kvmockd's reconnect backoff is capped at 5 s; the test clients reconnect too.
    ASSERT_TRUE(daemon.wait_ready(15s)) << daemon.process().output();
    EXPECT_TRUE(wait_above([&] { return events.count(); }, events_before, 15s))
        << "no KV events after the restart";
    EXPECT_TRUE(wait_above([&] { return loads.count(); }, loads_before, 15s))
        << "no load reports after the restart";
    EXPECT_TRUE(wait_above([&] { return intake.nats_ok(); }, generated_before, 15s))
        << "no NATS generate request answered after the restart";
    ASSERT_TRUE(daemon.process().running()) << daemon.process().output();
  }
  intake.stop();
  std::printf("intake: http %lu ok / %lu failed, nats generate %lu ok / %lu failed\n",
              static_cast<unsigned long>(intake.http_ok()),
              static_cast<unsigned long>(intake.http_failed()),
              static_cast<unsigned long>(intake.nats_ok()),
              static_cast<unsigned long>(intake.nats_failed()));
  // The HTTP intake does not depend on NATS: nothing failed there, outage or not.
  EXPECT_GT(intake.http_ok(), 0u);
  EXPECT_EQ(intake.http_failed(), 0u);
  EXPECT_GT(daemon.metric("kvmock_nats_reconnects_total"), 0) << "the daemon never reconnected";

  std::chrono::duration<double> took{};
  EXPECT_EQ(
      daemon.terminate(std::chrono::seconds(options.grace_s + options.flush_deadline_s + 10), took),
      0)
      << daemon.process().output();
  rig.recorder->wait_quiet(500ms, 10s);

  if (jetstream) {
    auto client = testing::connect_test_client(server.url());
    ASSERT_TRUE(client);
    uint64_t undecodable = 0;
    const auto stored = testing::jetstream_event_ids(
        *client, jetstream_stream_name("dynamo", "backend"), undecodable);
    EXPECT_EQ(undecodable, 0u);
    EXPECT_EQ(stored.size(), options.workers);
    // Exactly once through every outage: 1..N, no gap, no duplicate.
    EXPECT_EQ(testing::first_gap(stored), "");
    return;
  }
  const auto seen = rig.recorder->ids();
  EXPECT_EQ(rig.recorder->undecodable(), 0u);
  EXPECT_EQ(seen.size(), options.workers);
  // At-most-once: events may be missing, but a missing id shows as a jump; a reset or a
  // repeat would hide it from a router.
  EXPECT_EQ(testing::first_reset(seen), "");
  for (const auto& [channel, ids] : seen) {
    std::printf("worker %lu: %zu events seen, last id %lu\n",
                static_cast<unsigned long>(channel.first), ids.size(),
                static_cast<unsigned long>(ids.empty() ? 0 : ids.back()));
  }
}

INSTANTIATE_TEST_SUITE_P(Planes, NatsRestartUnderLoad, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "JetStream" : "CoreNats";
                         });

}  // namespace
}  // namespace kvmock
