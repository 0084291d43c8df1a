#include "core/pipeline/load_debouncer.h"

#include <algorithm>
#include <limits>

namespace kvmock {

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

}  // namespace

LoadDebouncer::LoadDebouncer(uint64_t debounce_ms, uint64_t heartbeat_ms)
    : debounce_ms_(debounce_ms), heartbeat_ms_(heartbeat_ms) {}

void LoadDebouncer::update(const ActiveLoad& load, uint64_t now_ms) {
  ++counters_.updates;
  const RankKey key{load.worker_id, load.dp_rank};
  RankState& state = ranks_[key];
  const std::optional<uint64_t> before = deadline(state);
  state.latest = load;
  if (state.published && *state.published == load) {
    state.changed_since_ms.reset();
  } else if (!state.changed_since_ms) {
    state.changed_since_ms = now_ms;
  }
  reindex(key, state, before);
}

void LoadDebouncer::forget(WorkerId worker) {
  auto it = ranks_.lower_bound(RankKey{worker, 0});
  while (it != ranks_.end() && it->first.first == worker) {
    if (const std::optional<uint64_t> due = deadline(it->second)) due_.erase({*due, it->first});
    it = ranks_.erase(it);
  }
}

std::optional<uint64_t> LoadDebouncer::deadline(const RankState& state) const {
  if (state.changed_since_ms) return saturating_add(*state.changed_since_ms, debounce_ms_);
  if (state.published && heartbeat_ms_ > 0) {
    return saturating_add(state.published_at_ms, heartbeat_ms_);
  }
  return std::nullopt;
}

void LoadDebouncer::reindex(const RankKey& key, const RankState& state,
                            std::optional<uint64_t> before) {
  const std::optional<uint64_t> after = deadline(state);
  if (before == after) return;
  if (before) due_.erase({*before, key});
  if (after) due_.insert({*after, key});
}

std::vector<ActiveLoad> LoadDebouncer::poll(uint64_t now_ms) {
  // Taken out before any is re-armed: a heartbeat deadline saturated at the end of time
  // would otherwise come due again in the same poll.
  std::vector<RankKey> due_now;
  while (!due_.empty() && due_.begin()->first <= now_ms) {
    due_now.push_back(due_.begin()->second);
    due_.erase(due_.begin());
  }
  std::sort(due_now.begin(), due_now.end());
  std::vector<ActiveLoad> out;
  out.reserve(due_now.size());
  for (const RankKey& key : due_now) {
    RankState& state = ranks_.at(key);
    if (state.changed_since_ms) {
      ++counters_.published_changes;
    } else {
      ++counters_.published_heartbeats;
    }
    state.published = state.latest;
    state.published_at_ms = now_ms;
    state.changed_since_ms.reset();
    reindex(key, state, std::nullopt);
    out.push_back(state.latest);
  }
  return out;
}

std::optional<uint64_t> LoadDebouncer::next_deadline_ms() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

}  // namespace kvmock
