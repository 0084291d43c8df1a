// A WorkerBackend test double that generates on its own threads, as a real worker does:
// tokens 1000, 1001, ... one every `pace`, then on_finish("length") with a fixed number
// of cached prompt tokens. Cancellation is recorded and can be awaited.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "transport/http/worker_backend.h"

namespace kvmock::testing {

class FakeGeneratingWorker : public WorkerBackend {
 public:
  explicit FakeGeneratingWorker(uint64_t id,
                                std::chrono::milliseconds pace = std::chrono::milliseconds(1),
                                uint32_t cached_tokens = 4)
      : id_(id), pace_(pace), cached_tokens_(cached_tokens) {}
  ~FakeGeneratingWorker() override {
    {
      std::lock_guard lock(mutex_);
      shutting_down_ = true;
    }
    changed_.notify_all();
    for (auto& thread : threads_) thread.join();
  }

  Result<uint64_t> submit(GenerationRequest request, GenerationCallbacks callbacks) override {
    std::lock_guard lock(mutex_);
    if (refuse_) return make_error("queue_full", "fake worker refuses");
    const uint64_t request_id = next_id_++;
    requests_.push_back(request);
    threads_.emplace_back(
        [this, request_id, request = std::move(request), callbacks = std::move(callbacks)] {
          run(request_id, request, callbacks);
        });
    return request_id;
  }
  void stop(uint64_t request_id) override { cancel(request_id); }
  void cancel(uint64_t request_id) override {
    {
      std::lock_guard lock(mutex_);
      cancelled_.insert(request_id);
    }
    changed_.notify_all();
  }
  bool ready() const override { return true; }
  uint64_t worker_id() const override { return id_; }
  const std::string& model_name() const override { return model_; }
  std::string render_metrics() const override { return {}; }

  bool wait_cancelled(uint64_t request_id, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return cancelled_.count(request_id) > 0; });
  }
  size_t cancelled_count() {
    std::lock_guard lock(mutex_);
    return cancelled_.size();
  }
  std::vector<GenerationRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  void refuse(bool on) {
    std::lock_guard lock(mutex_);
    refuse_ = on;
  }
  // The finish_reason of requests that run to their end (default "length"): lets a test
  // see how a worker's "stop" or "abort" reaches the wire.
  void finish_with(std::string reason) {
    std::lock_guard lock(mutex_);
    finish_reason_ = std::move(reason);
  }

 private:
  void run(uint64_t request_id, const GenerationRequest& request,
           const GenerationCallbacks& callbacks) {
    GenerationFinish finish;
    finish.prompt_tokens = static_cast<uint32_t>(request.prompt.size());
    finish.cached_tokens = std::min(cached_tokens_, finish.prompt_tokens);
    {
      std::lock_guard lock(mutex_);
      finish.finish_reason = finish_reason_;
    }
    for (uint32_t i = 0; i < request.max_tokens; ++i) {
      std::unique_lock lock(mutex_);
      // The pace of generation (not synchronisation): a cancel or shutdown cuts it short.
      changed_.wait_for(lock, pace_,
                        [&] { return shutting_down_ || cancelled_.count(request_id) > 0; });
      if (shutting_down_ || cancelled_.count(request_id) > 0) {
        finish.finish_reason = "abort";
        break;
      }
      lock.unlock();
      callbacks.on_tokens({static_cast<TokenId>(1000 + i)});
      ++finish.completion_tokens;
    }
    callbacks.on_finish(finish);
  }

  const uint64_t id_;
  const std::chrono::milliseconds pace_;
  const uint32_t cached_tokens_;
  const std::string model_ = "fake";
  std::mutex mutex_;
  std::condition_variable changed_;
  bool shutting_down_ = false;
  bool refuse_ = false;
  std::string finish_reason_ = "length";
  uint64_t next_id_ = 1;
  std::set<uint64_t> cancelled_;
  std::vector<GenerationRequest> requests_;
  std::vector<std::thread> threads_;
};

}  // namespace kvmock::testing
