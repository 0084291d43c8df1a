#include "core/pipeline/engine_sequence_tracker.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

using Current = SequenceStep::Current;

constexpr uint64_t kMaxGap = 1000;

SequenceStep deliver() { return {}; }

SequenceStep gap(uint64_t from, uint64_t to) {
  SequenceStep step;
  step.heal_from = from;
  step.heal_to = to;
  return step;
}

SequenceStep restart(uint64_t heal_to = 0) {
  SequenceStep step;
  step.restart = true;
  step.heal_to = heal_to;
  return step;
}

SequenceStep hold(bool held_corrupted = false) {
  SequenceStep step;
  step.held_corrupted = held_corrupted;
  step.current = Current::kHold;
  return step;
}

TEST(EngineSequenceTracker, FirstSeqIsDeliveredWhateverItsValue) {
  EngineSequenceTracker tracker(kMaxGap);
  EXPECT_FALSE(tracker.has_seq());
  EXPECT_EQ(tracker.next(uint64_t{1} << 40), deliver());
  EXPECT_EQ(tracker.last_seq(), uint64_t{1} << 40);
}

TEST(EngineSequenceTracker, InOrderSeqsAreDeliveredAndARepeatIsADuplicate) {
  EngineSequenceTracker tracker(kMaxGap);
  EXPECT_EQ(tracker.next(7), deliver());
  EXPECT_EQ(tracker.next(8), deliver());
  SequenceStep duplicate;
  duplicate.current = Current::kDuplicate;
  EXPECT_EQ(tracker.next(8), duplicate);
  EXPECT_EQ(tracker.next(9), deliver());
}

TEST(EngineSequenceTracker, APlausibleForwardJumpIsAGapToHeal) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(10);
  EXPECT_EQ(tracker.next(15), gap(11, 15));
  EXPECT_EQ(tracker.next(15 + kMaxGap + 1), gap(16, 16 + kMaxGap));  // exactly max_gap
  EXPECT_TRUE(tracker.next(16 + kMaxGap + 1).has_gap() == false);
}

TEST(EngineSequenceTracker, GoingBackIsARestartThatHealsTheNewRunsStart) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(500);
  EXPECT_EQ(tracker.next(0), restart());
  EXPECT_EQ(tracker.next(1), deliver());
  tracker.next(600);
  EXPECT_EQ(tracker.next(3), restart(3));
  EXPECT_EQ(tracker.last_seq(), 3u);
}

TEST(EngineSequenceTracker, RepeatedZeroIsARestart) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(0);
  EXPECT_EQ(tracker.next(0), restart());
}

TEST(EngineSequenceTracker, OneWildSeqThenTheStreamCarryingOnIsOneCorruptedDrop) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(41);
  EXPECT_EQ(tracker.next(42 + (uint64_t{1} << 40)), hold());
  EXPECT_EQ(tracker.held_seq(), 42 + (uint64_t{1} << 40));
  SequenceStep corrupted;
  corrupted.held_corrupted = true;
  EXPECT_EQ(tracker.next(42), corrupted);  // an extra frame: nothing is missing
  EXPECT_FALSE(tracker.held_seq());
  EXPECT_EQ(tracker.last_seq(), 42u);
  EXPECT_EQ(tracker.next(43), deliver());
}

TEST(EngineSequenceTracker, AWildSeqInPlaceOfABatchLeavesAGapOfOne) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(41);
  EXPECT_EQ(tracker.next(~uint64_t{0} - 5), hold());
  SequenceStep step = gap(42, 43);
  step.held_corrupted = true;
  EXPECT_EQ(tracker.next(43), step);
}

TEST(EngineSequenceTracker, AWildSeqBackwardsIsNotARestartUnlessConfirmed) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(5'000'000);
  EXPECT_EQ(tracker.next(2'000'000), hold());
  SequenceStep corrupted;
  corrupted.held_corrupted = true;
  EXPECT_EQ(tracker.next(5'000'001), corrupted);
  EXPECT_EQ(tracker.last_seq(), 5'000'001u);
}

TEST(EngineSequenceTracker, AnImplausibleJumpConfirmedByTheNextSeqIsANewSequence) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(5);
  EXPECT_EQ(tracker.next(1'000'000'000), hold());
  SequenceStep confirmed;
  confirmed.restart = true;
  confirmed.deliver_held = 1'000'000'000;
  EXPECT_EQ(tracker.next(1'000'000'001), confirmed);
  EXPECT_FALSE(confirmed.has_gap());
  EXPECT_EQ(tracker.next(1'000'000'002), deliver());
}

TEST(EngineSequenceTracker, TwoWildSeqsInARowHoldTheSecond) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(5);
  EXPECT_EQ(tracker.next(1u << 30), hold());
  EXPECT_EQ(tracker.next(3u << 30), hold(true));
  EXPECT_EQ(tracker.held_seq(), 3u << 30);
  SequenceStep corrupted;
  corrupted.held_corrupted = true;
  EXPECT_EQ(tracker.next(6), corrupted);
}

TEST(EngineSequenceTracker, AHeldEndMarkerValueCannotWrapIntoAConfirmation) {
  EngineSequenceTracker tracker(kMaxGap);
  tracker.next(5);
  EXPECT_EQ(tracker.next(~uint64_t{0}), hold());
  EXPECT_EQ(tracker.next(0).held_corrupted, true);
}

TEST(EngineSequenceTracker, AZeroMaxGapIsTreatedAsOne) {
  EngineSequenceTracker tracker(0);
  tracker.next(1);
  EXPECT_EQ(tracker.next(3), gap(2, 3));
}

}  // namespace
}  // namespace kvmock
