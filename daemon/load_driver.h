// The built-in load driver (`workers.load`): a seeded synthetic workload played against
// the mock workers at wall-clock speed — Poisson arrivals at requests_per_s per worker,
// prompts sharing prefixes within groups, requests spread round-robin. It drives the demo
// and the scaling benchmark; a router under test brings its own load instead.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/common/clock.h"
#include "core/workload/synthetic_workload.h"
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
  // `clock` times the arrivals and the time to first token; the thread's waits are real,
  // so a test that uses a manual clock drives the driver with issue_due() instead.
  LoadDriver(const LoadDriverConfig& config, std::vector<WorkerBackend*> workers,
             const Clock& clock);
  ~LoadDriver();

  // Checks the config and starts the driver thread. Arrivals count from this call.
  Result<bool> start();
  void stop();
  // Checks the config; arrivals count from this call. start() calls it.
  Result<bool> begin();
  // Submits every request whose arrival the clock has reached (after begin()); returns
  // when the next one is due. The driver thread calls it; a test may call it instead.
  Clock::SteadyTime issue_due();
  // Takes the figures gathered since the previous call.
  LoadWindow take_window();
  uint64_t in_flight() const { return in_flight_.load(); }

 private:
  void run();
  void submit(WorkloadRequest request);
  void record_first_token(double ttft_ms);
  void record_done(bool ok);

  const LoadDriverConfig config_;
  std::vector<WorkerBackend*> workers_;
  const Clock& clock_;
  // Used by the driver thread only (or the test calling issue_due()).
  std::optional<SyntheticWorkload> workload_;
  std::optional<WorkloadRequest> next_;
  Clock::SteadyTime start_{};
  size_t next_worker_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  LoadWindow window_;
  std::atomic<uint64_t> in_flight_{0};
};

}  // namespace kvmock
