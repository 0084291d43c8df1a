#include "core/faults/scenario.h"

#include <algorithm>
#include <cmath>

#include "core/common/splitmix.h"

namespace kvmock {
namespace {

// A salt of its own keeps the worker ranking independent of the request draws of the same
// seed (pick_fault mixes the seed the same way).
constexpr uint64_t kSelectionSalt = 0x5ce7a210c4a05ull;

std::string range_text(uint64_t lo, uint64_t hi) {
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

}  // namespace

std::string_view scenario_action_name(ScenarioAction action) {
  switch (action) {
    case ScenarioAction::kSet:
      return "set";
    case ScenarioAction::kCrash:
      return "crash";
    case ScenarioAction::kRestart:
      return "restart";
  }
  return "set";
}

void order_scenario_steps(std::vector<ScenarioStep>& steps) {
  std::stable_sort(steps.begin(), steps.end(),
                   [](const ScenarioStep& a, const ScenarioStep& b) { return a.at_ms < b.at_ms; });
}

std::optional<std::string> check_worker_selector(const WorkerSelector& selector,
                                                 std::span<const uint64_t> fleet_ids) {
  if (fleet_ids.empty()) return std::string("there are no mock workers to act on");
  switch (selector.kind) {
    case WorkerSelector::Kind::kAll:
      return std::nullopt;
    case WorkerSelector::Kind::kFraction:
      if (!std::isfinite(selector.fraction) || selector.fraction <= 0 || selector.fraction > 1) {
        return std::string("fraction must be greater than 0 and at most 1");
      }
      return std::nullopt;
    case WorkerSelector::Kind::kIds:
      break;
  }
  if (selector.ranges.empty()) return std::string("names no worker");
  std::vector<uint64_t> sorted(fleet_ids.begin(), fleet_ids.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const auto& [lo, hi] : selector.ranges) {
    if (lo > hi) return "range " + std::to_string(lo) + "-" + std::to_string(hi) + " is reversed";
    const auto first = std::lower_bound(sorted.begin(), sorted.end(), lo);
    const auto last = std::upper_bound(sorted.begin(), sorted.end(), hi);
    const auto inside = static_cast<uint64_t>(last - first);
    // Every id of the range must be a worker: `hi - lo` cannot overflow, `+ 1` could.
    if (inside == 0 || hi - lo != inside - 1) {
      return (lo == hi ? "worker " : "workers ") + range_text(lo, hi) +
             (lo == hi ? " is not" : " are not all") + " in the fleet (worker ids " +
             describe_worker_ids(sorted) + ")";
    }
  }
  return std::nullopt;
}

std::vector<size_t> select_workers(const WorkerSelector& selector,
                                   std::span<const uint64_t> fleet_ids, uint64_t seed) {
  std::vector<size_t> picked;
  switch (selector.kind) {
    case WorkerSelector::Kind::kAll:
      for (size_t i = 0; i < fleet_ids.size(); ++i) picked.push_back(i);
      break;
    case WorkerSelector::Kind::kIds:
      for (size_t i = 0; i < fleet_ids.size(); ++i) {
        const bool in_range = std::any_of(
            selector.ranges.begin(), selector.ranges.end(),
            [id = fleet_ids[i]](const auto& r) { return r.first <= id && id <= r.second; });
        if (in_range) picked.push_back(i);
      }
      break;
    case WorkerSelector::Kind::kFraction: {
      if (fleet_ids.empty() || !(selector.fraction > 0)) break;
      const double wanted =
          std::round(std::min(1.0, selector.fraction) * static_cast<double>(fleet_ids.size()));
      const size_t count = std::clamp<size_t>(static_cast<size_t>(wanted), 1, fleet_ids.size());
      // Ranked by the id's hash, not its position: the pick does not depend on the fleet's
      // order, and ties (equal hashes) fall back to the position so it is total.
      std::vector<std::pair<uint64_t, size_t>> ranked;
      ranked.reserve(fleet_ids.size());
      const uint64_t key = splitmix64(seed ^ kSelectionSalt);
      for (size_t i = 0; i < fleet_ids.size(); ++i) {
        ranked.emplace_back(splitmix64(key + splitmix64(fleet_ids[i])), i);
      }
      std::partial_sort(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(count),
                        ranked.end());
      for (size_t i = 0; i < count; ++i) picked.push_back(ranked[i].second);
      std::sort(picked.begin(), picked.end());
      break;
    }
  }
  return picked;
}

std::string describe_worker_ids(std::span<const uint64_t> ids) {
  std::string text;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j] != UINT64_MAX && ids[j + 1] == ids[j] + 1) ++j;
    if (!text.empty()) text += ", ";
    text += range_text(ids[i], ids[j]);
    i = j + 1;
  }
  return text.empty() ? "none" : text;
}

}  // namespace kvmock
