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
  RankState& state = ranks_[{load.worker_id, load.dp_rank}];
  state.latest = load;
  if (state.published && *state.published == load) {
    state.changed_since_ms.reset();
  } else if (!state.changed_since_ms) {
    state.changed_since_ms = now_ms;
  }
}

std::optional<uint64_t> LoadDebouncer::deadline(const RankState& state) const {
  if (state.changed_since_ms) return saturating_add(*state.changed_since_ms, debounce_ms_);
  if (state.published && heartbeat_ms_ > 0) {
    return saturating_add(state.published_at_ms, heartbeat_ms_);
  }
  return std::nullopt;
}

std::vector<ActiveLoad> LoadDebouncer::poll(uint64_t now_ms) {
  std::vector<ActiveLoad> out;
  for (auto& [key, state] : ranks_) {
    const std::optional<uint64_t> due = deadline(state);
    if (!due || now_ms < *due) continue;
    if (state.changed_since_ms) {
      ++counters_.published_changes;
    } else {
      ++counters_.published_heartbeats;
    }
    state.published = state.latest;
    state.published_at_ms = now_ms;
    state.changed_since_ms.reset();
    out.push_back(state.latest);
  }
  return out;
}

std::optional<uint64_t> LoadDebouncer::next_deadline_ms() const {
  std::optional<uint64_t> earliest;
  for (const auto& [key, state] : ranks_) {
    const std::optional<uint64_t> due = deadline(state);
    if (due && (!earliest || *due < *earliest)) earliest = due;
  }
  return earliest;
}

}  // namespace kvmock
