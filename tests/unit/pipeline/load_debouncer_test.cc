#include "core/pipeline/load_debouncer.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kvmock
