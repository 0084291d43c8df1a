// Decides when ActiveLoad metrics go out (docs/wire-formats.md#activeload), per
// (worker_id, dp_rank):
//   - a value different from the last published one is published once `debounce_ms` has
//     passed since the first unpublished change; later changes in that window replace it
//     (latest wins), so a burst gives one publish;
//   - a value equal to the last published one cancels a pending change and publishes
//     nothing;
//   - every rank's last value is published again `heartbeat_ms` after its last publish, so
//     a router that starts late learns it.
//
// Not thread-safe. Time is the caller's monotonic milliseconds; nothing here reads a clock,
// so the caller polls at next_deadline_ms(). Deadlines are kept in an ordered index, so a
// poll costs O(log n) per rank due rather than a scan of every rank: a thousand mock
// workers update their load on most passes and the caller polls every millisecond.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "core/events/router_event.h"

namespace kvmock {

inline constexpr uint64_t kDefaultLoadDebounceMs = 1;
inline constexpr uint64_t kDefaultLoadHeartbeatMs = 10000;

struct LoadDebouncerCounters {
  uint64_t updates = 0;
  uint64_t published_changes = 0;
  uint64_t published_heartbeats = 0;
};

class LoadDebouncer {
 public:
  // `heartbeat_ms` 0 turns heartbeats off.
  explicit LoadDebouncer(uint64_t debounce_ms = kDefaultLoadDebounceMs,
                         uint64_t heartbeat_ms = kDefaultLoadHeartbeatMs);

  // Records the latest load of (load.worker_id, load.dp_rank).
  void update(const ActiveLoad& load, uint64_t now_ms);
  // Forgets every rank of `worker`: nothing of it is due any more, not even a heartbeat
  // (a crashed worker). A later update() starts it afresh.
  void forget(WorkerId worker);
  // Loads due at `now_ms`, ordered by (worker_id, dp_rank); each rank at most once.
  std::vector<ActiveLoad> poll(uint64_t now_ms);
  // The earliest time poll() will have something to return; nullopt when never.
  std::optional<uint64_t> next_deadline_ms() const;

  const LoadDebouncerCounters& counters() const { return counters_; }

 private:
  struct RankState {
    ActiveLoad latest;
    std::optional<ActiveLoad> published;
    uint64_t published_at_ms = 0;
    std::optional<uint64_t> changed_since_ms;  // set while `latest` is unpublished
  };

  using RankKey = std::pair<WorkerId, DpRank>;

  std::optional<uint64_t> deadline(const RankState& state) const;
  // Moves `key`'s entry in due_ from `before` to its state's current deadline.
  void reindex(const RankKey& key, const RankState& state, std::optional<uint64_t> before);

  uint64_t debounce_ms_;
  uint64_t heartbeat_ms_;
  std::map<RankKey, RankState> ranks_;
  std::set<std::pair<uint64_t, RankKey>> due_;  // (deadline, rank) for every rank that has one
  LoadDebouncerCounters counters_;
};

}  // namespace kvmock
