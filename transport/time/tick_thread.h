// A thread that runs a part's timed work: it calls `tick`, which does what is due and says
// how long until it next has work, and sleeps that long or until poke(). The timed logic
// itself stays in the part's tick function, which a test calls directly with a manual
// clock; only the sleeping is real time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace kvmock {

class TickThread {
 public:
  // Returns the time until the next work; nullopt when none is known (the thread then
  // looks again after `idle_wait`, or when poked).
  using Tick = std::function<std::optional<std::chrono::milliseconds>()>;

  TickThread(std::string name, Tick tick,
             std::chrono::milliseconds idle_wait = std::chrono::seconds(1));
  ~TickThread();
  TickThread(const TickThread&) = delete;
  TickThread& operator=(const TickThread&) = delete;

  void start();
  // Makes the thread tick again now; a poke during a tick is not lost.
  void poke();
  // Joins the thread after its current tick. Idempotent.
  void stop();

 private:
  void run();

  const std::string name_;
  const Tick tick_;
  const std::chrono::milliseconds idle_wait_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool poked_ = false;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace kvmock
