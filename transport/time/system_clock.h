// The production Clock: std::chrono's steady and system clocks.
#pragma once

#include "core/common/clock.h"

namespace kvmock {

class SystemClock final : public Clock {
 public:
  SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
  SystemTime system_now() const override { return std::chrono::system_clock::now(); }

  // One shared instance for parts that are not given a clock explicitly.
  static const SystemClock& instance();
};

}  // namespace kvmock
