// The draw behind the event faults (docs/faults.md#event-faults): which events a router
// does not receive and which it receives twice, as a pure function of the seed, the
// worker, the dp rank and the event id.
#include "core/faults/event_faults.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace kvmock {
namespace {

EventFaults faults(double drop, double duplicate, uint64_t seed) {
  EventFaults f;
  f.drop_rate = drop;
  f.duplicate_rate = duplicate;
  f.seed = seed;
  return f;
}

// The fates of events 1..count of worker 7, rank 0.
std::vector<EventFate> fates(const EventFaults& f, uint64_t count, uint64_t worker = 7,
                             uint32_t rank = 0) {
  std::vector<EventFate> out;
  for (uint64_t id = 1; id <= count; ++id) out.push_back(draw_event_fate(f, worker, rank, id));
  return out;
}

size_t count_of(const std::vector<EventFate>& all, EventFate fate) {
  return static_cast<size_t>(std::count(all.begin(), all.end(), fate));
}

TEST(EventFaults, TheSharesFollowTheRates) {
  const auto drawn = fates(faults(20, 10, 42), 100000);
  // 20% dropped; of the 80% sent, 10% twice: 8% of all. Binomial sd ~0.13% and ~0.09%.
  EXPECT_NEAR(count_of(drawn, EventFate::kDrop) / 100000.0, 0.20, 0.01);
  EXPECT_NEAR(count_of(drawn, EventFate::kDuplicate) / 100000.0, 0.08, 0.01);
}

TEST(EventFaults, TheSameSeedReplaysTheSameFatesAndAnotherSeedDoesNot) {
  const EventFaults f = faults(30, 30, 7);
  EXPECT_EQ(fates(f, 1000), fates(f, 1000));
  EXPECT_NE(fates(f, 1000), fates(faults(30, 30, 8), 1000));
}

TEST(EventFaults, WorkersAndRanksDrawApart) {
  const EventFaults f = faults(50, 0, 1);
  EXPECT_NE(fates(f, 1000, 7, 0), fates(f, 1000, 8, 0));
  EXPECT_NE(fates(f, 1000, 7, 0), fates(f, 1000, 7, 1));
}

TEST(EventFaults, TheBoundsAreExact) {
  EXPECT_EQ(count_of(fates(faults(0, 0, 3), 10000), EventFate::kSend), 10000u);
  EXPECT_EQ(count_of(fates(faults(100, 100, 3), 10000), EventFate::kDrop), 10000u);
  EXPECT_EQ(count_of(fates(faults(0, 100, 3), 10000), EventFate::kDuplicate), 10000u);
}

TEST(EventFaults, OnlyTheDelayIsNotADraw) {
  EventFaults delayed;
  delayed.delay_ms = 50;
  EXPECT_TRUE(delayed.any());
  EXPECT_FALSE(delayed.draws());
  EXPECT_FALSE(EventFaults{}.any());
  FaultSettings settings;
  settings.event_drop_rate = 12.5;
  settings.event_duplicate_rate = 3;
  settings.event_delay_ms = 40;
  const EventFaults of = event_faults_of(settings, 99);
  EXPECT_EQ(of.drop_rate, 12.5);
  EXPECT_EQ(of.duplicate_rate, 3);
  EXPECT_EQ(of.delay_ms, 40);
  EXPECT_EQ(of.seed, 99u);
}

}  // namespace
}  // namespace kvmock
