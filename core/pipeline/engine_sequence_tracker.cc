#include "core/pipeline/engine_sequence_tracker.h"

#include <algorithm>

namespace kvmock {

EngineSequenceTracker::EngineSequenceTracker(uint64_t max_gap)
    : max_gap_(std::max<uint64_t>(max_gap, 1)) {}

SequenceStep EngineSequenceTracker::next(uint64_t seq) {
  SequenceStep step;
  if (held_) {
    const uint64_t held = *held_;
    held_.reset();
    if (held != ~uint64_t{0} && seq == held + 1) {
      // Two consecutive seqs agree: the engine is on a new sequence.
      step.restart = true;
      step.deliver_held = held;
      last_seq_ = seq;
      return step;
    }
    step.held_corrupted = true;
  }
  return judge(seq, step);
}

SequenceStep EngineSequenceTracker::judge(uint64_t seq, SequenceStep step) {
  if (!have_seq_) {
    have_seq_ = true;
    last_seq_ = seq;
    return step;
  }
  const uint64_t last = last_seq_;
  if (seq == last) {
    if (seq != 0) {
      step.current = SequenceStep::Current::kDuplicate;
      return step;
    }
    step.restart = true;
  } else if (seq > last) {
    const uint64_t skipped = seq - last - 1;
    if (skipped > max_gap_) {
      held_ = seq;
      step.current = SequenceStep::Current::kHold;
      return step;
    }
    if (skipped > 0) {
      step.heal_from = last + 1;
      step.heal_to = seq;
    }
  } else {
    if (seq > max_gap_) {
      held_ = seq;
      step.current = SequenceStep::Current::kHold;
      return step;
    }
    step.restart = true;
    step.heal_from = 0;
    step.heal_to = seq;
  }
  last_seq_ = seq;
  return step;
}

}  // namespace kvmock
