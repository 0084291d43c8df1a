#include "transport/time/tick_thread.h"

#include "transport/log/thread_name.h"

namespace kvmock {

TickThread::TickThread(std::string name, Tick tick, std::chrono::milliseconds idle_wait)
    : name_(std::move(name)), tick_(std::move(tick)), idle_wait_(idle_wait) {}

TickThread::~TickThread() { stop(); }

void TickThread::start() {
  if (thread_.joinable() || stopping_.load()) return;
  thread_ = std::thread([this] {
    name_this_thread(name_);
    run();
  });
}

void TickThread::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  wake_.notify_one();
}

void TickThread::stop() {
  stopping_ = true;
  poke();
  if (thread_.joinable()) thread_.join();
}

void TickThread::run() {
  while (!stopping_.load()) {
    const std::chrono::milliseconds wait = tick_().value_or(idle_wait_);
    std::unique_lock lock(mutex_);
    if (wait.count() > 0) {
      wake_.wait_for(lock, wait, [this] { return poked_ || stopping_.load(); });
    }
    poked_ = false;
  }
}

}  // namespace kvmock
