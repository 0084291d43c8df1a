#include "core/faults/event_faults.h"

#include "core/common/splitmix.h"

namespace kvmock {
namespace {

// Separates the event draws from the request draws of the same seed and worker.
constexpr uint64_t kEventDrawSalt = 0x6b766d6f636b4556ull;  // "kvmockEV"

// 53 random bits as a fraction in [0, 1), in percent.
double percent(uint64_t draw) { return unit_fraction(draw) * 100; }

}  // namespace

EventFaults event_faults_of(const FaultSettings& settings, uint64_t seed) {
  return EventFaults{settings.event_drop_rate, settings.event_duplicate_rate,
                     settings.event_delay_ms, seed};
}

EventFate draw_event_fate(const EventFaults& faults, uint64_t worker, uint32_t dp_rank,
                          uint64_t event_id) {
  if (!faults.draws()) return EventFate::kSend;
  const uint64_t channel =
      splitmix64(splitmix64(splitmix64(faults.seed ^ kEventDrawSalt) + worker) + dp_rank);
  const uint64_t drop_draw = splitmix64(channel + event_id);
  if (percent(drop_draw) < faults.drop_rate) return EventFate::kDrop;
  // A second, independent draw: the duplicate share is of the events that are sent.
  if (percent(splitmix64(drop_draw)) < faults.duplicate_rate) return EventFate::kDuplicate;
  return EventFate::kSend;
}

}  // namespace kvmock
