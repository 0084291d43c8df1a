#include "core/faults/event_faults.h"

namespace kvmock {
namespace {

// splitmix64's finalizer: a well-mixed 64-bit value from any input.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Separates the event draws from the request draws of the same seed and worker.
constexpr uint64_t kEventDrawSalt = 0x6b766d6f636b4556ull;  // "kvmockEV"

// 53 random bits as a fraction in [0, 1), in percent.
double percent(uint64_t draw) { return static_cast<double>(draw >> 11) * 0x1.0p-53 * 100; }

}  // namespace

EventFaults event_faults_of(const FaultSettings& settings, uint64_t seed) {
  return EventFaults{settings.event_drop_rate, settings.event_duplicate_rate,
                     settings.event_delay_ms, seed};
}

EventFate draw_event_fate(const EventFaults& faults, uint64_t worker, uint32_t dp_rank,
                          uint64_t event_id) {
  if (!faults.draws()) return EventFate::kSend;
  const uint64_t channel = mix(mix(mix(faults.seed ^ kEventDrawSalt) + worker) + dp_rank);
  const uint64_t drop_draw = mix(channel + event_id);
  if (percent(drop_draw) < faults.drop_rate) return EventFate::kDrop;
  // A second, independent draw: the duplicate share is of the events that are sent.
  if (percent(mix(drop_draw)) < faults.duplicate_rate) return EventFate::kDuplicate;
  return EventFate::kSend;
}

}  // namespace kvmock
