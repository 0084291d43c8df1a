// Decides what one engine rank's next live seq means: in order, a duplicate, a gap to heal,
// an engine restart, or a corrupted seq. Pure: the caller (the relay's ZMQ subscriber)
// carries out the decision (replay, sink calls, counters).
//
// Seq counts from 0 per engine process and goes up by one per batch. With L the last
// trusted seq and `max_gap` the largest gap that is still plausible:
//
//   first seq ever          deliver, whatever its value.
//   seq == L (not 0)        duplicate: drop.
//   seq == L == 0           restart (the engine repeated its first batch as a new process).
//   L < seq <= L+1+max_gap  deliver; heal [L+1, seq) first if that is not empty.
//   seq < L, seq <= max_gap restart: the new process is seq batches in; heal [0, seq) first.
//   anything else           implausible: the batch is held, not delivered, until the next
//                           seq decides. If the next seq is held+1 the engine really is on a
//                           new sequence: restart, deliver the held batch, then the next one,
//                           without healing (nothing before the jump is plausible to ask
//                           for). Otherwise the held seq was corrupted: it is dropped (the
//                           caller counts it under its own reason) and the next seq is
//                           judged against L as if the held one never came.
//
// So one wild seq (e.g. L + 2^40) followed by the stream carrying on is one corrupted-seq
// drop: no restart, and no missing batches beyond the one the wild frame replaced (healed
// as a gap of one). A gap never counts more than max_gap batches. The cost is that a real
// jump is delivered one batch late; a held batch that no seq follows stays held.
//
// One instance per (engine endpoint, dp rank). Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>

namespace kvmock {

// What to do with one live seq, in this order: count a corrupted drop, report a restart,
// deliver the held batch, heal [heal_from, heal_to), then apply `current` to this batch.
struct SequenceStep {
  enum class Current : uint8_t {
    kDeliver,    // hand this batch on
    kDuplicate,  // drop it: already delivered
    kHold,       // keep it (payload too) until the next seq decides; deliver nothing yet
  };

  bool held_corrupted = false;           // the held batch was a corrupted seq: drop it, count it
  bool restart = false;                  // state from the engine's earlier batches is stale
  std::optional<uint64_t> deliver_held;  // seq of the held batch to deliver now
  uint64_t heal_from = 0;                // first seq to recover, when heal_to > heal_from
  uint64_t heal_to = 0;                  // one past the last seq to recover
  Current current = Current::kDeliver;

  bool has_gap() const { return heal_to > heal_from; }
  bool operator==(const SequenceStep&) const = default;
};

class EngineSequenceTracker {
 public:
  // `max_gap` >= 1: the largest number of skipped seqs taken as a gap rather than as
  // corruption or a new sequence (and the largest restart offset taken at once).
  explicit EngineSequenceTracker(uint64_t max_gap);

  SequenceStep next(uint64_t seq);

  bool has_seq() const { return have_seq_; }
  uint64_t last_seq() const { return last_seq_; }  // last delivered (trusted) seq
  std::optional<uint64_t> held_seq() const { return held_; }

 private:
  SequenceStep judge(uint64_t seq, SequenceStep step);

  uint64_t max_gap_;
  bool have_seq_ = false;
  uint64_t last_seq_ = 0;
  std::optional<uint64_t> held_;
};

}  // namespace kvmock
