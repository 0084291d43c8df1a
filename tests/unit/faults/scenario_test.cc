// Worker selection of a fault scenario (core/faults/scenario.h): ids, ranges, every worker,
// and a fraction that the seed makes repeatable.
#include "core/faults/scenario.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace kvmock {
namespace {

std::vector<uint64_t> fleet(uint64_t base, size_t count) {
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < count; ++i) ids.push_back(base + i);
  return ids;
}

WorkerSelector ids(std::vector<std::pair<uint64_t, uint64_t>> ranges) {
  WorkerSelector selector;
  selector.kind = WorkerSelector::Kind::kIds;
  selector.ranges = std::move(ranges);
  return selector;
}

WorkerSelector fraction(double share) {
  WorkerSelector selector;
  selector.kind = WorkerSelector::Kind::kFraction;
  selector.fraction = share;
  return selector;
}

TEST(ScenarioSelector, AllAndIdsAndRangesPickThoseWorkersInFleetOrder) {
  const std::vector<uint64_t> fleet_ids = fleet(1000, 8);
  EXPECT_EQ(select_workers(WorkerSelector{}, fleet_ids, 0),
            (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(select_workers(ids({{1005, 1005}, {1001, 1002}}), fleet_ids, 0),
            (std::vector<size_t>{1, 2, 5}));
  // Overlapping ranges pick a worker once.
  EXPECT_EQ(select_workers(ids({{1000, 1001}, {1001, 1001}}), fleet_ids, 0),
            (std::vector<size_t>{0, 1}));
}

TEST(ScenarioSelector, IdsOutsideTheFleetAreNamed) {
  const std::vector<uint64_t> fleet_ids = fleet(1000, 4);
  EXPECT_EQ(check_worker_selector(ids({{1000, 1003}}), fleet_ids), std::nullopt);
  EXPECT_EQ(check_worker_selector(ids({{1004, 1004}}), fleet_ids),
            "worker 1004 is not in the fleet (worker ids 1000-1003)");
  EXPECT_EQ(check_worker_selector(ids({{1002, 1009}}), fleet_ids),
            "workers 1002-1009 are not all in the fleet (worker ids 1000-1003)");
  EXPECT_EQ(check_worker_selector(ids({{1003, 1001}}), fleet_ids), "range 1003-1001 is reversed");
  // The whole 64-bit range must not wrap around into "four ids, four workers".
  EXPECT_NE(check_worker_selector(ids({{0, UINT64_MAX}}), fleet_ids), std::nullopt);
  EXPECT_EQ(check_worker_selector(WorkerSelector{}, {}), "there are no mock workers to act on");
  EXPECT_NE(check_worker_selector(fraction(0), fleet_ids), std::nullopt);
  EXPECT_NE(check_worker_selector(fraction(1.5), fleet_ids), std::nullopt);
  EXPECT_EQ(check_worker_selector(fraction(1), fleet_ids), std::nullopt);
}

TEST(ScenarioSelector, AFractionPicksItsShareRepeatablyFromTheSeed) {
  const std::vector<uint64_t> fleet_ids = fleet(1000, 16);
  const std::vector<size_t> quarter = select_workers(fraction(0.25), fleet_ids, 7);
  EXPECT_EQ(quarter.size(), 4u);
  EXPECT_TRUE(std::is_sorted(quarter.begin(), quarter.end()));
  // The same seed, the same workers (every run, every step).
  EXPECT_EQ(select_workers(fraction(0.25), fleet_ids, 7), quarter);
  // A smaller share is a subset of a larger one, so "fraction 0.5 then 0.25" narrows down.
  const std::vector<size_t> half = select_workers(fraction(0.5), fleet_ids, 7);
  EXPECT_EQ(half.size(), 8u);
  EXPECT_TRUE(std::includes(half.begin(), half.end(), quarter.begin(), quarter.end()));
  // Another seed picks others (for some seed among a few: not all equal).
  std::set<std::vector<size_t>> picks;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    picks.insert(select_workers(fraction(0.25), fleet_ids, seed));
  }
  EXPECT_GT(picks.size(), 1u);
  // Rounded to the nearest worker, never none, at most all.
  EXPECT_EQ(select_workers(fraction(0.01), fleet_ids, 7).size(), 1u);
  EXPECT_EQ(select_workers(fraction(0.22), fleet_ids, 7).size(), 4u);  // 3.52 -> 4
  EXPECT_EQ(select_workers(fraction(1), fleet_ids, 7).size(), 16u);
}

TEST(ScenarioSelector, AFractionDependsOnTheIdsNotOnTheirOrder) {
  std::vector<uint64_t> fleet_ids = fleet(1000, 10);
  std::vector<uint64_t> picked;
  for (size_t i : select_workers(fraction(0.3), fleet_ids, 3)) picked.push_back(fleet_ids[i]);
  std::reverse(fleet_ids.begin(), fleet_ids.end());
  std::vector<uint64_t> reversed;
  for (size_t i : select_workers(fraction(0.3), fleet_ids, 3)) reversed.push_back(fleet_ids[i]);
  std::sort(reversed.begin(), reversed.end());
  EXPECT_EQ(picked, reversed);
}

TEST(ScenarioSteps, OrderedByTimeAndStableForEqualTimes) {
  std::vector<ScenarioStep> steps(4);
  const uint64_t times[] = {500, 0, 500, 100};
  for (size_t i = 0; i < steps.size(); ++i) {
    steps[i].index = i;
    steps[i].at_ms = times[i];
  }
  order_scenario_steps(steps);
  std::vector<size_t> order;
  for (const ScenarioStep& step : steps) order.push_back(step.index);
  EXPECT_EQ(order, (std::vector<size_t>{1, 3, 0, 2}));
}

TEST(ScenarioSteps, IdsAreDescribedAsRanges) {
  EXPECT_EQ(describe_worker_ids(std::vector<uint64_t>{1000, 1001, 1002, 1005, 1007, 1008}),
            "1000-1002, 1005, 1007-1008");
  EXPECT_EQ(describe_worker_ids(std::vector<uint64_t>{}), "none");
  EXPECT_EQ(describe_worker_ids(std::vector<uint64_t>{UINT64_MAX}), "18446744073709551615");
}

}  // namespace
}  // namespace kvmock
