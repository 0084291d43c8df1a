// The built-in load driver (`workers.load`): a seeded synthetic workload played against
// the mock workers at wall-clock speed — Poisson arrivals at requests_per_s per worker,
// prompts sharing prefixes within groups, requests spread round-robin. It drives the demo
// and the scaling benchmark; a router under test brings its own load instead.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "config/config.h"
#include "transport/http/worker_backend.h"

namespace kvmock {

// What happened in one reporting window, for the status line.
struct LoadWindow {
  uint64_t submitted = 0;
  uint64_t completed = 0;
  uint64_t rejected = 0;
  std::vector<double> ttft_ms;  // sorted
};

class LoadDriver {
 public:
  LoadDriver(const LoadDriverConfig& config, std::vector<WorkerBackend*> workers);
  ~LoadDriver();

  Result<bool> start();
  void stop();
  // Takes the figures gathered since the previous call.
  LoadWindow take_window();
  uint64_t in_flight() const { return in_flight_.load(); }

 private:
  void run();
  void record_first_token(double ttft_ms);
  void record_done(bool ok);

  const LoadDriverConfig config_;
  std::vector<WorkerBackend*> workers_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  LoadWindow window_;
  std::atomic<uint64_t> in_flight_{0};
};

}  // namespace kvmock
