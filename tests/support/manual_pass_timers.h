// Pass timers that fire when a test says so: fire_due() posts the expiry of every armed
// timer whose time the manual clock has reached, and the test then polls the io_context.
// With a ManualClock this runs simulated engines without sleeping. One thread only.
#pragma once

#include <algorithm>
#include <boost/asio/post.hpp>
#include <optional>
#include <vector>

#include "daemon/pass_timer.h"
#include "tests/support/manual_clock.h"

namespace kvmock::test {

class ManualPassTimers final : public PassTimerFactory {
 public:
  explicit ManualPassTimers(const ManualClock& clock) : clock_(clock) {}

  std::unique_ptr<PassTimer> make(boost::asio::io_context& io,
                                  std::function<void()> expired) override {
    return std::make_unique<Timer>(*this, io, std::move(expired));
  }

  // Posts the expiry of every armed timer whose time has come; returns how many.
  size_t fire_due() {
    size_t fired = 0;
    const auto now = clock_.steady_now();
    for (Timer* timer : timers_) {
      if (!timer->at || *timer->at > now) continue;
      timer->at.reset();
      boost::asio::post(timer->io, timer->expired);
      ++fired;
    }
    return fired;
  }

  // The earliest armed expiry, if any timer is armed.
  std::optional<Clock::SteadyTime> next_expiry() const {
    std::optional<Clock::SteadyTime> earliest;
    for (const Timer* timer : timers_) {
      if (timer->at && (!earliest || *timer->at < *earliest)) earliest = timer->at;
    }
    return earliest;
  }

 private:
  struct Timer final : PassTimer {
    Timer(ManualPassTimers& owner, boost::asio::io_context& io, std::function<void()> expired)
        : owner(owner), io(io), expired(std::move(expired)) {
      owner.timers_.push_back(this);
    }
    ~Timer() override { std::erase(owner.timers_, this); }
    void schedule_at(Clock::SteadyTime when) override { at = when; }

    ManualPassTimers& owner;
    boost::asio::io_context& io;
    std::function<void()> expired;
    std::optional<Clock::SteadyTime> at;
  };

  const ManualClock& clock_;
  std::vector<Timer*> timers_;
};

}  // namespace kvmock::test
