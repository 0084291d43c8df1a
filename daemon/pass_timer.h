// The timer that ends a simulated engine's pass, and the clock the engine reads. The
// engine decides from its Clock when the pass ends; the PassTimer calls it back at that
// point, on the engine's io_context. Production timers are asio steady_timers
// (AsioPassTimers); a unit test uses a manual clock and timers that fire when the test
// advances it (tests/support/manual_pass_timers.h), so pass timing is tested without
// sleeping. One virtual call per pass, none per token.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>

#include "core/common/clock.h"

namespace kvmock {

class PassTimer {
 public:
  virtual ~PassTimer() = default;
  // Arms the timer: the `expired` callback it was made with runs once, on the io_context,
  // when the clock reaches `at`. Arming again replaces the pending expiry.
  virtual void schedule_at(Clock::SteadyTime at) = 0;
};

// Makes the timers of the engines; one per engine, made at the engine's construction.
class PassTimerFactory {
 public:
  virtual ~PassTimerFactory() = default;
  // `expired` runs on `io`; the timer must be destroyed before `io`.
  virtual std::unique_ptr<PassTimer> make(boost::asio::io_context& io,
                                          std::function<void()> expired) = 0;
};

// asio steady_timers over the system clock.
class AsioPassTimers final : public PassTimerFactory {
 public:
  std::unique_ptr<PassTimer> make(boost::asio::io_context& io,
                                  std::function<void()> expired) override;
  static AsioPassTimers& instance();
};

// Where a simulated engine reads time: the clock, the timers that end its passes, and the
// epoch its modeled times count from (shared by every engine of the process, so pass ends
// of different engines fall on one grid).
struct EngineTime {
  const Clock& clock;
  PassTimerFactory& timers;
  Clock::SteadyTime epoch;
};

// The production EngineTime with its epoch at the current time.
EngineTime system_engine_time();

}  // namespace kvmock
