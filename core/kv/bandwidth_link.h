// One direction of a data link (e.g. G1->G2 offload or G2->G1 onboard) shared by its
// transfers in processor-sharing fashion (docs/ARCHITECTURE.md#g2-offload-tier): with N
// transfers active, each progresses at rate/N. Completion instants are exact (no
// ticking): between two events the shares are constant, so the model jumps from one
// completion to the next.
//
// Time is the caller's virtual or wall clock in ms and never runs backwards inside the
// link: a `now_ms` earlier than the last one seen is treated as the last one.
// Non-positive (or NaN) bandwidth means infinitely fast: a transfer completes at the
// first advance that is not earlier than its start.
//
// Not thread-safe; pure (no clock, no I/O).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace kvmock {

using TransferId = uint64_t;

class BandwidthLink {
 public:
  struct Completion {
    TransferId id = 0;
    double finish_ms = 0;  // exact processor-sharing finish instant
  };

  // `gbps` is in GB/s (1e9 bytes per second = 1e6 bytes per ms).
  explicit BandwidthLink(double gbps);

  // Starts a transfer of `bytes` at `now_ms` (clamped up to the link's time) and
  // returns its id (1, 2, ... per link). Progress of the transfers already active is
  // accounted up to `now_ms` at the old share first; any that finish meanwhile are
  // reported by the next advance_to().
  TransferId start(double now_ms, uint64_t bytes);

  // Moves the link's time to `now_ms` (clamped, see above) and returns the transfers
  // that finished by then, in finish order (ties in start order).
  std::vector<Completion> advance_to(double now_ms);

  // The earliest instant at which an active transfer finishes if nothing else starts;
  // nullopt when nothing is active. Already-finished, unreported transfers count as
  // finishing at their finish instant.
  std::optional<double> next_deadline_ms() const;

  size_t in_flight() const { return active_.size() + done_.size(); }
  double now_ms() const { return last_ms_; }
  bool infinite() const { return bytes_per_ms_ <= 0; }

 private:
  struct Active {
    TransferId id;
    double remaining;  // bytes
  };

  // Advances active transfers to `now_ms`, moving finished ones to done_.
  void progress_to(double now_ms);

  double bytes_per_ms_;  // <= 0: infinite
  double last_ms_ = 0;
  TransferId next_id_ = 1;
  std::vector<Active> active_;    // start order
  std::vector<Completion> done_;  // finished, not yet reported
};

}  // namespace kvmock
