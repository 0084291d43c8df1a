#include "core/pipeline/event_sequencer.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::event_id;
using testing::removed;

TEST(EventSequencer, IdsStartAtOneAndIncreaseByOne) {
  EventSequencer sequencer;
  EXPECT_EQ(sequencer.last_assigned(1, 0), 0u);
  EXPECT_EQ(event_id(sequencer.assign(removed(1, 0, {5}, 77))), 1u);
  EXPECT_EQ(event_id(sequencer.assign(cleared(1, 0, 3))), 2u);
  EXPECT_EQ(event_id(sequencer.assign(removed(1, 0, {6}))), 3u);
  EXPECT_EQ(sequencer.last_assigned(1, 0), 3u);
}

TEST(EventSequencer, EachWorkerRankHasItsOwnGapFreeCounter) {
  EventSequencer sequencer;
  std::vector<EventId> rank0;
  std::vector<EventId> rank1;
  std::vector<EventId> other_worker;
  for (int i = 0; i < 3; ++i) {
    rank0.push_back(event_id(sequencer.assign(removed(1, 0, {1}))));
    rank1.push_back(event_id(sequencer.assign(removed(1, 1, {1}))));
    rank1.push_back(event_id(sequencer.assign(removed(1, 1, {2}))));
    other_worker.push_back(event_id(sequencer.assign(removed(2, 0, {1}))));
  }
  EXPECT_EQ(rank0, (std::vector<EventId>{1, 2, 3}));
  EXPECT_EQ(rank1, (std::vector<EventId>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(other_worker, (std::vector<EventId>{1, 2, 3}));
}

TEST(EventSequencer, AssignLeavesTheRestOfTheEventAlone) {
  EventSequencer sequencer;
  RouterEvent in = removed(4, 2, {9, 8}, 123);
  in.storage_tier = StorageTier::kDisk;
  RouterEvent expected = in;
  expected.event.event_id = 1;
  EXPECT_EQ(sequencer.assign(in), expected);
}

}  // namespace
}  // namespace kvmock
