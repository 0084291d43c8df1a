// The seam through which the daemon's parts read time. Core logic takes `now` as an
// argument and never reads a clock; the transport and daemon parts that do read one take a
// `const Clock&` instead of calling std::chrono clocks directly, so a unit test can drive
// them with a manual clock (tests/support/manual_clock.h) and never sleep. The production
// implementation is SystemClock (transport/time/system_clock.h).
#pragma once

#include <chrono>
#include <cstdint>

namespace kvmock {

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using SystemTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;

  // Monotonic time: for deadlines, timeouts and durations.
  virtual SteadyTime steady_now() const = 0;
  // Wall-clock time: only for timestamps that other processes read (event timestamps,
  // envelope `published_at`, log lines).
  virtual SystemTime system_now() const = 0;

  // Milliseconds since the Unix epoch, as the wire formats carry them.
  uint64_t unix_ms() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(system_now().time_since_epoch())
            .count());
  }
  // Milliseconds on the steady clock since `origin` (0 when `origin` is in the future).
  uint64_t steady_ms_since(SteadyTime origin) const {
    const auto elapsed = steady_now() - origin;
    if (elapsed.count() <= 0) return 0;
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  }
};

}  // namespace kvmock
