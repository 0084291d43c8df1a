#include "daemon/engine_threads.h"

#include <sched.h>

#include <algorithm>
#include <string>

#include "transport/log/thread_name.h"

namespace kvmock {

size_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    return static_cast<size_t>(std::max(1, CPU_COUNT(&set)));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

EngineThreads::EngineThreads(size_t count) {
  for (size_t i = 0; i < std::max<size_t>(1, count); ++i)
    loops_.push_back(std::make_unique<Loop>());
}

EngineThreads::~EngineThreads() { stop(); }

boost::asio::io_context& EngineThreads::next() {
  Loop& loop = *loops_[next_];
  next_ = (next_ + 1) % loops_.size();
  return loop.io;
}

void EngineThreads::start() {
  for (size_t i = 0; i < loops_.size(); ++i) {
    Loop& loop = *loops_[i];
    if (loop.thread.joinable()) continue;
    loop.thread = std::thread([&loop] { loop.io.run(); });
    // Named here rather than by the thread itself, so the name is there when start returns.
    name_thread(loop.thread.native_handle(), "kvmock-eng-" + std::to_string(i));
  }
}

void EngineThreads::stop() {
  for (auto& loop : loops_) {
    loop->work.reset();
    loop->io.stop();
  }
  for (auto& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
}

}  // namespace kvmock
