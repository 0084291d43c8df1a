// The threads that run the simulated engines. Each thread runs an io_context of its own,
// and an engine stays on one of them for its life: its passes, timers and callbacks then
// run on one thread with no strand, no lock and no wake-up of another thread, which is
// what lets a thousand engines keep their passes on time on a few cores. Engines are
// dealt to the threads in turn.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace kvmock {

class EngineThreads {
 public:
  // `count` threads (at least one); the caller picks the count (workers.threads).
  explicit EngineThreads(size_t count);
  ~EngineThreads();
  EngineThreads(const EngineThreads&) = delete;
  EngineThreads& operator=(const EngineThreads&) = delete;

  // The io_context of the next engine: run by exactly one thread once start() is called.
  boost::asio::io_context& next();
  void start();
  // Stops the threads and joins them; queued handlers stay queued, and are destroyed
  // (never run) with the io_contexts.
  void stop();
  size_t size() const { return loops_.size(); }

 private:
  struct Loop {
    boost::asio::io_context io{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
        io.get_executor()};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Loop>> loops_;
  size_t next_ = 0;
};

// CPUs in this process's affinity mask (what `taskset` or a cpuset container allows).
size_t usable_cpus();

}  // namespace kvmock
