// The scenario file (`faults.scenario`, config/fault_scenario.h): a good file becomes steps
// in time order, and every kind of bad file is refused with a line naming the step and field.
#include "config/fault_scenario.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_loader.h"

namespace kvmock {
namespace {

const std::vector<uint64_t> kFleet = {1000, 1001, 1002, 1003};

Result<FaultScenario> parse(std::string_view yaml) {
  return parse_fault_scenario(yaml, "chaos.yaml", kFleet);
}

FaultScenario parse_ok(std::string_view yaml) {
  Result<FaultScenario> scenario = parse(yaml);
  EXPECT_TRUE(scenario.ok()) << scenario.error().message;
  return scenario.ok() ? *scenario : FaultScenario{};
}

std::string parse_error(std::string_view yaml) {
  Result<FaultScenario> scenario = parse(yaml);
  EXPECT_FALSE(scenario.ok());
  return scenario.ok() ? std::string() : scenario.error().message;
}

TEST(FaultScenarioFile, AGoodFileBecomesStepsInTimeOrder) {
  const FaultScenario scenario = parse_ok(R"(
steps:
  - at: 30
    workers: [1000, "1002-1003"]
    set:
      failure_injection_rate: 50
      failure_types: [rate_limit, server_error]
  - at: 0.25
    workers: all
    set: {latency_scale: 2.5, paused: false}
  - at: 30
    workers: {fraction: 0.5}
    action: crash
  - at: 45
    workers: 1001
    action: restart
  - at: 60
    workers: 1000-1001
    set: {failure_injection_rate: 0}
)");
  ASSERT_EQ(scenario.steps.size(), 5u);
  const ScenarioStep& first = scenario.steps[0];
  EXPECT_EQ(first.index, 1u);
  EXPECT_EQ(first.at_ms, 250u);
  EXPECT_EQ(first.workers.kind, WorkerSelector::Kind::kAll);
  EXPECT_EQ(first.action, ScenarioAction::kSet);
  EXPECT_EQ(nlohmann::json::parse(first.patch),
            nlohmann::json::parse(R"({"latency_scale":2.5,"paused":false})"));

  // Equal times keep the file's order.
  const ScenarioStep& second = scenario.steps[1];
  EXPECT_EQ(second.index, 0u);
  EXPECT_EQ(second.at_ms, 30000u);
  EXPECT_EQ(second.workers.kind, WorkerSelector::Kind::kIds);
  EXPECT_EQ(second.workers.ranges,
            (std::vector<std::pair<uint64_t, uint64_t>>{{1000, 1000}, {1002, 1003}}));
  EXPECT_EQ(nlohmann::json::parse(second.patch),
            nlohmann::json::parse(
                R"({"failure_injection_rate":50,"failure_types":["rate_limit","server_error"]})"));

  const ScenarioStep& third = scenario.steps[2];
  EXPECT_EQ(third.index, 2u);
  EXPECT_EQ(third.action, ScenarioAction::kCrash);
  EXPECT_EQ(third.workers.kind, WorkerSelector::Kind::kFraction);
  EXPECT_EQ(third.workers.fraction, 0.5);
  EXPECT_TRUE(third.patch.empty());

  EXPECT_EQ(scenario.steps[3].action, ScenarioAction::kRestart);
  EXPECT_EQ(scenario.steps[3].workers.ranges,
            (std::vector<std::pair<uint64_t, uint64_t>>{{1001, 1001}}));
  EXPECT_EQ(scenario.steps[4].workers.ranges,
            (std::vector<std::pair<uint64_t, uint64_t>>{{1000, 1001}}));
}

TEST(FaultScenarioFile, AnEmptyStepListIsAScenarioThatDoesNothing) {
  EXPECT_TRUE(parse_ok("steps: []\n").steps.empty());
  EXPECT_TRUE(parse_ok("steps:\n").steps.empty());
}

TEST(FaultScenarioFile, EveryBadFieldIsNamedWithItsStepAndLine) {
  struct Case {
    const char* yaml;
    const char* error;
  };
  const Case cases[] = {
      {"steps:\n  - at: -1\n    workers: all\n    action: crash\n",
       "chaos.yaml:2: steps[0].at: must be a number >= 0 (seconds from the start), got -1"},
      {"steps:\n  - {at: 0, workers: all, action: crash}\n  - {at: 1, workers: all, action: "
       "crash}\n  - {at: soon, workers: all, action: crash}\n",
       "chaos.yaml:4: steps[2].at: must be a number >= 0 (seconds from the start), got soon"},
      {"steps:\n  - {at: \"5\", workers: all, action: crash}\n",
       "chaos.yaml:2: steps[0].at: must be a number >= 0 (seconds from the start), got the "
       "string \"5\""},
      {"steps:\n  - {at: 1e12, workers: all, action: crash}\n",
       "chaos.yaml:2: steps[0].at: must be at most 1e9 seconds, got 1e12"},
      {"steps:\n  - {workers: all, action: crash}\n",
       "chaos.yaml:2: steps[0].at: required key is missing (seconds from the start)"},
      {"steps:\n  - {at: 0, action: crash}\n",
       "chaos.yaml:2: steps[0].workers: required key is missing (all, a worker id, a range such "
       "as \"1000-1003\", a list of ids and ranges, or {fraction: F})"},
      {"steps:\n  - {at: 0, workers: all, action: crash, sett: {}}\n",
       "chaos.yaml:2: steps[0].sett: unknown key (did you mean set?)"},
      {"steps:\n  - {at: 0, workers: all, colour: red, action: crash}\n",
       "chaos.yaml:2: steps[0].colour: unknown key (at, workers, set, action)"},
      {"steps:\n  - at: 0\n    workers: all\n    action: crash\n    set: {paused: true}\n",
       "chaos.yaml:2: steps[0]: has both set and action; a step does one of them"},
      {"steps:\n  - at: 0\n    workers: all\n",
       "chaos.yaml:2: steps[0]: needs set (fault settings) or action (crash or restart)"},
      {"steps:\n  - {at: 0, workers: all, action: explode}\n",
       "chaos.yaml:2: steps[0].action: must be crash or restart, got explode"},
      {"steps:\n  - at: 0\n    workers: all\n    set:\n      failure_rate: 3\n",
       "chaos.yaml:5: steps[0].set.failure_rate: unknown setting (failure_injection_rate, "
       "failure_types, paused"},
      {"steps:\n  - at: 0\n    workers: all\n    set:\n      failure_injection_rate: 150\n",
       "chaos.yaml:5: steps[0].set.failure_injection_rate: must be between 0 and 100, got 150"},
      {"steps:\n  - at: 0\n    workers: all\n    set:\n      failure_injection_rate: \"50\"\n",
       "chaos.yaml:5: steps[0].set.failure_injection_rate: must be a number of percent"},
      {"steps:\n  - at: 0\n    workers: all\n    set:\n      failure_types: [teapot]\n",
       "chaos.yaml:5: steps[0].set.failure_types: unknown fault type \"teapot\""},
      {"steps:\n  - at: 0\n    workers: all\n    set: {}\n",
       "chaos.yaml:4: steps[0].set: must be a map of fault settings (as POST /admin/config "
       "takes), got an empty map"},
      {"steps:\n  - at: 0\n    workers: all\n    set:\n      paused: {a: 1}\n",
       "chaos.yaml:5: steps[0].set.paused: must be a number, true/false, a name or a list, got "
       "a map"},
      {"steps:\n  - {at: 0, workers: 2000, action: crash}\n",
       "chaos.yaml:2: steps[0].workers: worker 2000 is not in the fleet (worker ids 1000-1003)"},
      {"steps:\n  - {at: 0, workers: [1000, 1002-1007], action: crash}\n",
       "chaos.yaml:2: steps[0].workers: workers 1002-1007 are not all in the fleet (worker ids "
       "1000-1003)"},
      {"steps:\n  - {at: 0, workers: [1000, lots], action: crash}\n",
       "chaos.yaml:2: steps[0].workers[1]: must be a worker id or a range such as "
       "\"1000-1003\", got lots"},
      {"steps:\n  - {at: 0, workers: some, action: crash}\n",
       "chaos.yaml:2: steps[0].workers: must be all, a worker id, a range such as "
       "\"1000-1003\", a list of ids and ranges, or {fraction: F}, got some"},
      {"steps:\n  - {at: 0, workers: -5, action: crash}\n",
       "chaos.yaml:2: steps[0].workers: must be all, a worker id"},
      {"steps:\n  - {at: 0, workers: {fraction: 0}, action: crash}\n",
       "chaos.yaml:2: steps[0].workers.fraction: must be a number greater than 0 and at most 1, "
       "got 0"},
      {"steps:\n  - {at: 0, workers: {share: 0.5}, action: crash}\n",
       "chaos.yaml:2: steps[0].workers.share: unknown key (a selector map has one key: fraction)"},
      {"steps:\n  - {at: 0, at: 1, workers: all, action: crash}\n",
       "chaos.yaml:2: steps[0].at: duplicate key"},
      {"steps:\n  - just a string\n",
       "chaos.yaml:2: steps[0]: must be a map with at, workers, and set or action, got just a "
       "string"},
      {"steps: {at: 0}\n", "chaos.yaml:1: steps: must be a list of steps, got a map"},
      {"step: []\n", "chaos.yaml:1: step: unknown key (did you mean steps?)"},
      {"", "chaos.yaml: the top level must be a map with a `steps` list, got null"},
      {"- at: 0\n", "chaos.yaml:1: the top level must be a map with a `steps` list, got a list"},
      {"steps: [\n", "chaos.yaml:2: invalid YAML"},
      {"steps: []\n---\nsteps: []\n", "only one YAML document is allowed"},
  };
  for (const Case& c : cases) {
    const std::string error = parse_error(c.yaml);
    EXPECT_NE(error.find(c.error), std::string::npos) << c.yaml << "\ngot: " << error;
  }
}

TEST(FaultScenarioFile, EveryProblemIsReportedNotJustTheFirst) {
  const std::string error = parse_error(R"(steps:
  - at: -1
    workers: all
    action: crash
  - at: 0
    workers: 9999
    set: {jitter: -1, latency_scale: 0}
)");
  EXPECT_NE(error.find("chaos.yaml:2: steps[0].at:"), std::string::npos) << error;
  EXPECT_NE(error.find("chaos.yaml:6: steps[1].workers: worker 9999 is not in the fleet"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("steps[1].set.jitter: must be between 0 and 10, got -1"), std::string::npos)
      << error;
  EXPECT_NE(error.find("steps[1].set.latency_scale: must be greater than 0"), std::string::npos)
      << error;
}

TEST(FaultScenarioFile, AFleetWithoutWorkersRefusesEverySelector) {
  const std::vector<uint64_t> none;
  const auto scenario =
      parse_fault_scenario("steps:\n  - {at: 0, workers: all, action: crash}\n", "s.yaml", none);
  ASSERT_FALSE(scenario.ok());
  EXPECT_EQ(scenario.error().message,
            "s.yaml:2: steps[0].workers: there are no mock workers to act on");
}

TEST(FaultScenarioFile, LoadedFromTheConfigKeyAgainstTheConfiguredFleet) {
  Config config;
  EXPECT_TRUE(load_fault_scenario(config).ok());  // no scenario: nothing to read
  EXPECT_TRUE(load_fault_scenario(config)->steps.empty());

  config.faults.scenario = "/nonexistent/kvmock-scenario.yaml";
  const auto missing = load_fault_scenario(config);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "faults.scenario: cannot read '/nonexistent/kvmock-scenario.yaml' (No such file or "
            "directory)");

  char path[] = "/tmp/kvmock-scenario-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "steps:\n  - {at: 1, workers: 2001-2002, action: crash}\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  config.faults.scenario = path;
  config.workers.count = 2;
  config.workers.worker_id_base = 2000;
  const auto refused = load_fault_scenario(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, std::string(path) +
                                         ":2: steps[0].workers: workers 2001-2002 are not all in "
                                         "the fleet (worker ids 2000-2001)");
  config.workers.count = 3;
  const auto loaded = load_fault_scenario(config);
  ::unlink(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->steps.size(), 1u);
  EXPECT_EQ(loaded->steps[0].at_ms, 1000u);
}

TEST(FaultScenarioFile, TheConfigKeyIsAPath) {
  const auto config =
      parse_config("faults:\n  scenario: /etc/kvmock/chaos.yaml\n", "c.yaml", {}, {});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->faults.scenario, "/etc/kvmock/chaos.yaml");
}

// The example in docs/faults.md ("Scenario files") is a file kvmockd accepts for the default
// config's fleet, and a fraction's restart brings back the worker its crash took down.
TEST(FaultScenarioFile, TheDocumentedExampleIsValid) {
  std::ifstream in(std::string(KVMOCK_TEST_DATA_DIR) + "/../../docs/faults.md");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t section = doc.find("### Scenario files");
  ASSERT_NE(section, std::string::npos);
  const size_t begin = doc.find("```yaml\n", section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = doc.find("```", begin + 8);
  ASSERT_NE(end, std::string::npos);
  const std::vector<uint64_t> fleet = scenario_fleet_ids(Config{});
  const auto scenario =
      parse_fault_scenario(doc.substr(begin + 8, end - begin - 8), "faults.md", fleet);
  ASSERT_TRUE(scenario.ok()) << scenario.error().message;
  ASSERT_EQ(scenario->steps.size(), 5u);
  EXPECT_EQ(scenario->steps[2].action, ScenarioAction::kCrash);
  EXPECT_EQ(scenario->steps[3].action, ScenarioAction::kRestart);
  EXPECT_EQ(select_workers(scenario->steps[2].workers, fleet, 0),
            select_workers(scenario->steps[3].workers, fleet, 0));
  EXPECT_EQ(select_workers(scenario->steps[2].workers, fleet, 0).size(), 1u);
}

}  // namespace
}  // namespace kvmock
