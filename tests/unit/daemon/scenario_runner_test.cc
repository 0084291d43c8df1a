// The scenario runner (daemon/scenario_runner.h) on a manual clock: each step is played when
// its time comes and not before, in order, on the workers its selector picks, and counted.
#include "daemon/scenario_runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "config/fault_scenario.h"
#include "tests/support/manual_clock.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;

// Records what the runner does to which worker; worker ids are 1000 + position.
class RecordingTargets final : public ScenarioTargets {
 public:
  uint64_t worker_id(size_t position) const override { return 1000 + position; }
  Result<bool> set_faults(size_t position, std::string_view patch) override {
    calls.push_back("set " + std::to_string(worker_id(position)) + " " + std::string(patch));
    return true;
  }
  Result<bool> crash(size_t position) override {
    calls.push_back("crash " + std::to_string(worker_id(position)));
    if (refuse_crash) return make_error("conflict", "crashed already");
    return true;
  }
  Result<bool> restart(size_t position) override {
    calls.push_back("restart " + std::to_string(worker_id(position)));
    return true;
  }

  std::vector<std::string> take() { return std::exchange(calls, {}); }
  std::vector<std::string> calls;
  bool refuse_crash = false;
};

FaultScenario scenario_of(std::string_view yaml, const std::vector<uint64_t>& fleet) {
  Result<FaultScenario> scenario = parse_fault_scenario(yaml, "s.yaml", fleet);
  EXPECT_TRUE(scenario.ok()) << scenario.error().message;
  return scenario.ok() ? *scenario : FaultScenario{};
}

uint64_t steps_counted(MetricsRegistry& metrics, const char* action) {
  return metrics.counter("kvmock_scenario_steps_total", "", {{"action", action}}).value();
}

TEST(ScenarioRunner, PlaysEachStepWhenItsTimeComesInOrder) {
  const std::vector<uint64_t> fleet = {1000, 1001, 1002, 1003};
  test::ManualClock clock;
  RecordingTargets targets;
  MetricsRegistry metrics;
  const auto origin = clock.steady_now();
  ScenarioRunner runner(scenario_of(R"(
steps:
  - at: 0
    workers: all
    set: {failure_injection_rate: 10}
  - at: 2
    workers: [1001]
    action: crash
  - at: 0.5
    workers: "1002-1003"
    set: {paused: true}
  - at: 2
    workers: 1001
    action: restart
)",
                                    fleet),
                        fleet, /*seed=*/0, targets, clock, origin, metrics);
  EXPECT_EQ(runner.step_count(), 4u);

  // At 0 s: only the first step; the next is 500 ms away.
  EXPECT_EQ(runner.tick(), milliseconds(500));
  EXPECT_EQ(targets.take(), (std::vector<std::string>{
                                R"(set 1000 {"failure_injection_rate":10.0})",
                                R"(set 1001 {"failure_injection_rate":10.0})",
                                R"(set 1002 {"failure_injection_rate":10.0})",
                                R"(set 1003 {"failure_injection_rate":10.0})",
                            }));
  EXPECT_EQ(steps_counted(metrics, "set"), 1u);

  // Not before its time: 499 ms plays nothing.
  clock.advance(milliseconds(499));
  EXPECT_EQ(runner.tick(), milliseconds(1));
  EXPECT_TRUE(targets.take().empty());
  clock.advance(milliseconds(1));
  EXPECT_EQ(runner.tick(), milliseconds(1500));
  EXPECT_EQ(targets.take(), (std::vector<std::string>{R"(set 1002 {"paused":true})",
                                                      R"(set 1003 {"paused":true})"}));

  // Steps of one time play together, in the file's order; then nothing is left.
  clock.advance(milliseconds(1500));
  EXPECT_EQ(runner.tick(), std::nullopt);
  EXPECT_EQ(targets.take(), (std::vector<std::string>{"crash 1001", "restart 1001"}));
  EXPECT_EQ(runner.steps_played(), 4u);
  EXPECT_EQ(steps_counted(metrics, "set"), 2u);
  EXPECT_EQ(steps_counted(metrics, "crash"), 1u);
  EXPECT_EQ(steps_counted(metrics, "restart"), 1u);
  EXPECT_NE(metrics.render().find("kvmock_scenario_steps_total{action=\"crash\"} 1"),
            std::string::npos);

  clock.advance(std::chrono::seconds(10));
  EXPECT_EQ(runner.tick(), std::nullopt);
  EXPECT_TRUE(targets.take().empty());
}

TEST(ScenarioRunner, ALateTickPlaysEveryStepDueSinceInOrder) {
  const std::vector<uint64_t> fleet = {1000, 1001};
  test::ManualClock clock;
  RecordingTargets targets;
  MetricsRegistry metrics;
  const auto origin = clock.steady_now();
  // The daemon starts its workers after the origin: steps due meanwhile play at once.
  clock.advance(std::chrono::seconds(3));
  ScenarioRunner runner(scenario_of(R"(
steps:
  - {at: 2, workers: 1000, action: restart}
  - {at: 1, workers: 1000, action: crash}
  - {at: 4, workers: 1001, action: crash}
)",
                                    fleet),
                        fleet, 0, targets, clock, origin, metrics);
  EXPECT_EQ(runner.tick(), milliseconds(1000));
  EXPECT_EQ(targets.take(), (std::vector<std::string>{"crash 1000", "restart 1000"}));
}

TEST(ScenarioRunner, AFractionPicksTheSameWorkersForTheSameSeed) {
  std::vector<uint64_t> fleet;
  for (uint64_t id = 1000; id < 1016; ++id) fleet.push_back(id);
  const std::string yaml = R"(
steps:
  - {at: 0, workers: {fraction: 0.25}, action: crash}
  - {at: 1, workers: {fraction: 0.25}, action: restart}
)";
  auto played = [&](uint64_t seed) {
    test::ManualClock clock;
    RecordingTargets targets;
    MetricsRegistry metrics;
    ScenarioRunner runner(scenario_of(yaml, fleet), fleet, seed, targets, clock, clock.steady_now(),
                          metrics);
    clock.advance(std::chrono::seconds(1));
    EXPECT_EQ(runner.tick(), std::nullopt);
    return targets.take();
  };
  const std::vector<std::string> first = played(42);
  ASSERT_EQ(first.size(), 8u);
  EXPECT_EQ(played(42), first);
  // The restart step picks the workers the crash step picked.
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(first[i].substr(6), first[4 + i].substr(8)) << first[i] << " / " << first[4 + i];
  }
}

TEST(ScenarioRunner, AFailedActionIsLoggedAndTheStepStillCounts) {
  const std::vector<uint64_t> fleet = {1000, 1001};
  test::ManualClock clock;
  RecordingTargets targets;
  targets.refuse_crash = true;
  MetricsRegistry metrics;
  ScenarioRunner runner(scenario_of("steps:\n  - {at: 0, workers: all, action: crash}\n", fleet),
                        fleet, 0, targets, clock, clock.steady_now(), metrics);
  EXPECT_EQ(runner.tick(), std::nullopt);
  // One worker refusing does not stop the step on the others.
  EXPECT_EQ(targets.take(), (std::vector<std::string>{"crash 1000", "crash 1001"}));
  EXPECT_EQ(steps_counted(metrics, "crash"), 1u);
}

}  // namespace
}  // namespace kvmock
