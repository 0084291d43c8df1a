#include "daemon/pass_timer.h"

#include <boost/asio/steady_timer.hpp>

#include "transport/time/system_clock.h"

namespace kvmock {
namespace {

class AsioPassTimer final : public PassTimer {
 public:
  AsioPassTimer(boost::asio::io_context& io, std::function<void()> expired)
      : timer_(io), expired_(std::move(expired)) {}

  // The handler captures only `this`: it fits asio's recycled handler memory, so a pass
  // allocates nothing here.
  void schedule_at(Clock::SteadyTime at) override {
    timer_.expires_at(at);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) expired_();
    });
  }

 private:
  boost::asio::steady_timer timer_;
  std::function<void()> expired_;
};

}  // namespace

std::unique_ptr<PassTimer> AsioPassTimers::make(boost::asio::io_context& io,
                                                std::function<void()> expired) {
  return std::make_unique<AsioPassTimer>(io, std::move(expired));
}

AsioPassTimers& AsioPassTimers::instance() {
  static AsioPassTimers timers;
  return timers;
}

EngineTime system_engine_time() {
  const Clock& clock = SystemClock::instance();
  return EngineTime{clock, AsioPassTimers::instance(), clock.steady_now()};
}

}  // namespace kvmock
