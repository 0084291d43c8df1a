// The soak (issue #20, "Keep it fixed"): steady load on every intake for
// KVMOCK_SOAK_SECONDS (600 s; 60 s in the short form), the daemon's RSS sampled every few
// seconds, /metrics scraped as Prometheus would.
//
// Levelling-off criterion. The first 20% of the run is warm-up (KV caches and the
// indexers' event rings fill, allocator arenas grow) and is ignored. The rest is cut in
// thirds; the mean RSS of the last third may exceed the mean of the middle third by at
// most 5% plus 2 MiB (allocator noise on a small process). Means of many samples are
// robust to one-off spikes, and a leak as slow as 1 KiB per request exceeds the bound
// within the full run. The samples are printed.
#include <gtest/gtest.h>

#include <numeric>
#include <thread>
#include <vector>

#include "tests/support/chaos_harness.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;

constexpr double kWarmUpShare = 0.2;
constexpr double kGrowthRatio = 0.05;
constexpr double kGrowthSlackKib = 2048;

double mean(std::vector<long>::const_iterator begin, std::vector<long>::const_iterator end) {
  return std::accumulate(begin, end, 0.0) / static_cast<double>(end - begin);
}

TEST(Soak, RssLevelsOffAfterWarmUpUnderSteadyLoad) {
  const std::chrono::seconds duration = testing::soak_duration();
  const std::chrono::seconds interval = duration >= 300s ? 5s : 2s;
  testing::ChaosDaemonOptions options;
  options.workers = 4;
  testing::ChaosRig rig(options);
  ASSERT_TRUE(rig.ready()) << rig.daemon_output();
  testing::ChaosDaemon& daemon = *rig.daemon;
  testing::RouterEventRecorder& recorder = *rig.recorder;
  testing::IntakeLoad intake(daemon, rig.server.url());

  std::vector<long> samples;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < duration) {
    std::this_thread::sleep_for(interval);
    ASSERT_TRUE(daemon.process().running()) << daemon.process().output();
    ASSERT_NE(daemon.metric("kvmock_outbox_depth"), -1) << "/metrics did not answer";
    samples.push_back(testing::rss_kib(daemon.process().pid()));
  }
  intake.stop();

  std::printf("soak: %lld s, RSS KiB every %lld s:", static_cast<long long>(duration.count()),
              static_cast<long long>(interval.count()));
  for (long kib : samples) std::printf(" %ld", kib);
  std::printf("\n");
  ASSERT_GE(samples.size(), 10u) << "too short a soak to judge";
  const auto settled = samples.begin() + static_cast<long>(samples.size() * kWarmUpShare);
  const long third = (samples.end() - settled) / 3;
  const double middle = mean(settled + third, settled + 2 * third);
  const double last = mean(samples.end() - third, samples.end());
  std::printf(
      "soak: middle third %.0f KiB, last third %.0f KiB (%+.1f%%); events %lu; "
      "http %lu ok / %lu failed; nats generate %lu ok / %lu failed\n",
      middle, last, 100.0 * (last - middle) / middle, static_cast<unsigned long>(recorder.total()),
      static_cast<unsigned long>(intake.http_ok()),
      static_cast<unsigned long>(intake.http_failed()),
      static_cast<unsigned long>(intake.nats_ok()),
      static_cast<unsigned long>(intake.nats_failed()));
  EXPECT_LE(last, middle * (1 + kGrowthRatio) + kGrowthSlackKib) << "RSS keeps growing";
  EXPECT_EQ(intake.http_failed(), 0u);
  EXPECT_EQ(intake.nats_failed(), 0u);
  EXPECT_GT(intake.http_ok(), 0u);
  EXPECT_GT(recorder.total(), 0u);

  std::chrono::duration<double> took{};
  const int status = daemon.terminate(15s, took);
  EXPECT_EQ(status, 0) << daemon.process().output();
  recorder.wait_quiet(500ms, 10s);
  EXPECT_EQ(testing::first_gap(recorder.ids()), "");
}

}  // namespace
}  // namespace kvmock
