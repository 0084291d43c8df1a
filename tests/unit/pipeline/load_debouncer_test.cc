#include "core/pipeline/load_debouncer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace kvmock {
namespace {

ActiveLoad load(uint64_t used, WorkerId worker = 1, DpRank rank = 0) {
  return ActiveLoad{worker, rank, used, std::nullopt, used};
}

TEST(LoadDebouncer, BurstWithinTheDebounceGivesOnePublishWithTheLastValue) {
  LoadDebouncer debouncer;  // 1 ms, 10 s
  for (uint64_t i = 0; i < 10; ++i) debouncer.update(load(i + 1), 1000);
  EXPECT_EQ(debouncer.next_deadline_ms(), std::optional<uint64_t>(1001));
  EXPECT_TRUE(debouncer.poll(1000).empty());
  EXPECT_EQ(debouncer.poll(1001), std::vector<ActiveLoad>{load(10)});
  EXPECT_TRUE(debouncer.poll(1002).empty());
  EXPECT_EQ(debouncer.counters().published_changes, 1u);
}

TEST(LoadDebouncer, DebounceCountsFromTheFirstUnpublishedChange) {
  LoadDebouncer debouncer(5, 10000);
  debouncer.update(load(1), 0);
  debouncer.update(load(2), 4);  // does not push the deadline back
  EXPECT_EQ(debouncer.poll(5), std::vector<ActiveLoad>{load(2)});
}

TEST(LoadDebouncer, AForgottenWorkerHasNoHeartbeatNorPendingChangeAndOthersKeepTheirs) {
  LoadDebouncer debouncer(1, 100);
  debouncer.update(load(1, /*worker=*/7, /*rank=*/0), 0);
  debouncer.update(load(2, /*worker=*/7, /*rank=*/1), 0);
  debouncer.update(load(3, /*worker=*/8), 0);
  ASSERT_EQ(debouncer.poll(1).size(), 3u);
  debouncer.update(load(4, /*worker=*/7, /*rank=*/0), 50);  // a change still pending
  debouncer.forget(7);
  std::vector<ActiveLoad> later;
  for (uint64_t now = 2; now <= 1040; ++now) {
    for (const ActiveLoad& published : debouncer.poll(now)) later.push_back(published);
  }
  ASSERT_FALSE(later.empty()) << "worker 8's heartbeats go on";
  for (const ActiveLoad& published : later) EXPECT_EQ(published.worker_id, 8u);
  debouncer.update(load(5, /*worker=*/7), 1050);  // a restart brings it back
  EXPECT_EQ(debouncer.poll(1051), std::vector<ActiveLoad>{load(5, 7)});
}

TEST(LoadDebouncer, UnchangedLoadIsOnlyRepublishedByHeartbeats) {
  LoadDebouncer debouncer;
  debouncer.update(load(3), 0);
  ASSERT_EQ(debouncer.poll(1), std::vector<ActiveLoad>{load(3)});
  std::vector<uint64_t> published_at;
  for (uint64_t now = 2; now <= 25000; ++now) {
    if (now % 500 == 0) debouncer.update(load(3), now);  // same value again and again
    if (!debouncer.poll(now).empty()) published_at.push_back(now);
  }
  EXPECT_EQ(published_at, (std::vector<uint64_t>{10001, 20001}));
  EXPECT_EQ(debouncer.counters().published_heartbeats, 2u);
  EXPECT_EQ(debouncer.next_deadline_ms(), std::optional<uint64_t>(30001));
}

TEST(LoadDebouncer, UpdateEqualToTheLastPublishedValueCancelsAPendingChange) {
  LoadDebouncer debouncer;
  debouncer.update(load(3), 0);
  ASSERT_EQ(debouncer.poll(1).size(), 1u);
  debouncer.update(load(4), 5);
  debouncer.update(load(3), 5);  // back to what the router already has
  EXPECT_TRUE(debouncer.poll(6).empty());
  EXPECT_EQ(debouncer.next_deadline_ms(), std::optional<uint64_t>(10001));
}

TEST(LoadDebouncer, RanksAreDebouncedIndependently) {
  LoadDebouncer debouncer(2, 10000);
  debouncer.update(load(1, 1, 0), 0);
  debouncer.update(load(7, 1, 1), 1);
  EXPECT_EQ(debouncer.poll(2), std::vector<ActiveLoad>{load(1, 1, 0)});
  EXPECT_EQ(debouncer.poll(3), std::vector<ActiveLoad>{load(7, 1, 1)});
}

TEST(LoadDebouncer, NothingIsDueBeforeTheFirstUpdate) {
  LoadDebouncer debouncer;
  EXPECT_FALSE(debouncer.next_deadline_ms().has_value());
  EXPECT_TRUE(debouncer.poll(100000).empty());
}

TEST(LoadDebouncer, ZeroHeartbeatDisablesRepublishing) {
  LoadDebouncer debouncer(1, 0);
  debouncer.update(load(3), 0);
  ASSERT_EQ(debouncer.poll(1).size(), 1u);
  EXPECT_FALSE(debouncer.next_deadline_ms().has_value());
  EXPECT_TRUE(debouncer.poll(1000000).empty());
}

TEST(LoadDebouncer, AHeartbeatSaturatedAtTheEndOfTimeIsPublishedOncePerPoll) {
  constexpr uint64_t kEnd = UINT64_MAX;
  LoadDebouncer debouncer(1, 10);
  debouncer.update(load(2), kEnd - 1);
  EXPECT_EQ(debouncer.poll(kEnd), std::vector<ActiveLoad>{load(2)});
  EXPECT_EQ(debouncer.poll(kEnd), std::vector<ActiveLoad>{load(2)});
  EXPECT_EQ(debouncer.counters().published_heartbeats, 1u);
}

// The rules of the header, applied by scanning every rank: the indexed debouncer must
// publish exactly what this model publishes, in the same order.
class ScanningModel {
 public:
  ScanningModel(uint64_t debounce_ms, uint64_t heartbeat_ms)
      : debounce_ms_(debounce_ms), heartbeat_ms_(heartbeat_ms) {}

  void update(const ActiveLoad& value, uint64_t now) {
    Rank& rank = ranks_[{value.worker_id, value.dp_rank}];
    rank.latest = value;
    if (rank.published == value) {
      rank.changed_since.reset();
    } else if (!rank.changed_since) {
      rank.changed_since = now;
    }
  }

  std::vector<ActiveLoad> poll(uint64_t now) {
    std::vector<ActiveLoad> out;
    for (auto& [key, rank] : ranks_) {
      const auto due = deadline(rank);
      if (!due || now < *due) continue;
      rank.published = rank.latest;
      rank.published_at = now;
      rank.changed_since.reset();
      out.push_back(rank.latest);
    }
    return out;
  }

  std::optional<uint64_t> next_deadline() const {
    std::optional<uint64_t> earliest;
    for (const auto& [key, rank] : ranks_) {
      const auto due = deadline(rank);
      if (due && (!earliest || *due < *earliest)) earliest = due;
    }
    return earliest;
  }

 private:
  struct Rank {
    ActiveLoad latest;
    std::optional<ActiveLoad> published;
    uint64_t published_at = 0;
    std::optional<uint64_t> changed_since;
  };
  std::optional<uint64_t> deadline(const Rank& rank) const {
    if (rank.changed_since) return *rank.changed_since + debounce_ms_;
    if (rank.published && heartbeat_ms_ > 0) return rank.published_at + heartbeat_ms_;
    return std::nullopt;
  }
  uint64_t debounce_ms_;
  uint64_t heartbeat_ms_;
  std::map<std::pair<WorkerId, DpRank>, Rank> ranks_;
};

TEST(LoadDebouncer, PublishesWhatAScanOfEveryRankWouldUnderRandomTraffic) {
  for (const uint64_t debounce : {uint64_t{0}, uint64_t{1}, uint64_t{3}}) {
    for (const uint64_t heartbeat : {uint64_t{0}, uint64_t{7}, uint64_t{50}}) {
      LoadDebouncer debouncer(debounce, heartbeat);
      ScanningModel model(debounce, heartbeat);
      std::mt19937 random(static_cast<uint32_t>(debounce * 100 + heartbeat));
      uint64_t now = 0;
      for (int step = 0; step < 5000; ++step) {
        now += random() % 3;
        if (random() % 3 != 0) {
          const ActiveLoad value = load(random() % 4, 1 + random() % 5, random() % 2);
          debouncer.update(value, now);
          model.update(value, now);
        } else {
          ASSERT_EQ(debouncer.poll(now), model.poll(now)) << "step " << step;
        }
        ASSERT_EQ(debouncer.next_deadline_ms(), model.next_deadline()) << "step " << step;
      }
    }
  }
}

}  // namespace
}  // namespace kvmock
