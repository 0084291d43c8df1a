// The faults of the KV events a router receives from a mock worker (docs/faults.md#event-faults):
// some are dropped (their ids are used, so a router sees a gap), some are sent twice
// (byte-identical), and all can be held back a while. The worker's own indexer still
// applies every event, so a router that notices a gap and queries it recovers exactly what
// was missing. Pure data and pure functions: the publishing pipeline applies the fates.
#pragma once

#include <cstdint>

#include "core/faults/fault_settings.h"

namespace kvmock {

// One worker's event faults, as the pipeline needs them.
struct EventFaults {
  double drop_rate = 0;       // percent of events not sent, [0, 100]
  double duplicate_rate = 0;  // percent of (sent) events sent twice, [0, 100]
  double delay_ms = 0;        // how long each event is held before it is sent, >= 0
  uint64_t seed = 0;          // faults.seed: fixes which events drop and repeat

  // Whether any event is dropped or repeated (the delay alone draws nothing).
  bool draws() const { return drop_rate > 0 || duplicate_rate > 0; }
  bool any() const { return draws() || delay_ms > 0; }
  bool operator==(const EventFaults&) const = default;
};

// The help of kvmock_faults_injected_total, which counts request faults (registered by the
// mock worker) and event faults (by the publishing pipeline) alike: whichever registers
// first writes it.
inline constexpr const char* kFaultsInjectedHelp =
    "Faults shown on purpose, by type: request faults (failure_injection_rate or the "
    "X-Kvmock-Fault header) and KV event faults (event_drop, event_duplicate, event_delay).";

// The event faults of a worker's settings under `seed`.
EventFaults event_faults_of(const FaultSettings& settings, uint64_t seed);

// What happens to one event on its way to routers.
enum class EventFate : uint8_t {
  kSend,       // sent once
  kDrop,       // not sent
  kDuplicate,  // sent twice, the same bytes
};

// The fate of event `event_id` of (worker, dp rank) under `faults`: a pure function of
// (seed, worker, dp rank, event id), so a seed replays the same gaps and repeats. The dp
// rank is drawn in because every rank numbers its events from 1; otherwise the ranks of a
// worker would lose the same ids. Drawn apart from the request faults (pick_fault), so the
// two do not move together.
EventFate draw_event_fate(const EventFaults& faults, uint64_t worker, uint32_t dp_rank,
                          uint64_t event_id);

}  // namespace kvmock
