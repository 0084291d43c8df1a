// A Clock that moves only when a test says so. Steady and system time advance together.
// Thread-safe: a test thread may advance it while the part under test reads it.
#pragma once

#include <atomic>
#include <chrono>

#include "core/common/clock.h"

namespace kvmock::test {

class ManualClock final : public kvmock::Clock {
 public:
  // Starts at an arbitrary but realistic point: steady time 1,000 s, system time 2025-10-09.
  ManualClock()
      : steady_ns_(std::chrono::nanoseconds(std::chrono::seconds(1000)).count()),
        system_ns_(std::chrono::nanoseconds(std::chrono::seconds(1760000000)).count()) {}

  SteadyTime steady_now() const override {
    return SteadyTime(std::chrono::duration_cast<SteadyTime::duration>(
        std::chrono::nanoseconds(steady_ns_.load())));
  }
  SystemTime system_now() const override {
    return SystemTime(std::chrono::duration_cast<SystemTime::duration>(
        std::chrono::nanoseconds(system_ns_.load())));
  }

  void advance(std::chrono::nanoseconds by) {
    steady_ns_ += by.count();
    system_ns_ += by.count();
  }

 private:
  std::atomic<int64_t> steady_ns_;
  std::atomic<int64_t> system_ns_;
};

}  // namespace kvmock::test
