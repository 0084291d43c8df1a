// Helpers for end-to-end tests that run `kvmockd run` against a real nats-server:
// readiness polling and a recorder of the router events that reach NATS. (Temp files and
// free ports: subprocess.h and nats_server.h.)
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kvmock {
class NatsClient;
}

namespace kvmock::testing {

// A client of the nats-server at `url`, connected (bounded wait), or nullptr.
std::unique_ptr<NatsClient> connect_test_client(const std::string& url);

// Polls GET 127.0.0.1:`port``path` until it answers `status` or `timeout` passes.
bool wait_for_status(uint16_t port, const std::string& path, int status,
                     std::chrono::milliseconds timeout);

// Subscribes `handler` to `subject` with no pending limit and flushes; `completed` turns
// true once the handler can no longer run. nullptr on failure.
natsSubscription* subscribe_async(natsConnection* connection, const std::string& subject,
                                  natsMsgHandler handler, void* closure,
                                  std::atomic<bool>& completed);
// Unsubscribes and waits (bounded) for `completed` before destroying, so the handler never
// outlives its closure. Accepts nullptr.
void unsubscribe_and_wait(natsSubscription* subscription, const std::atomic<bool>& completed);

// Records every router event published in the core-NATS envelope on one subject, per
// (worker_id, dp_rank), in arrival order. Subscribes on construction.
class RouterEventRecorder {
 public:
  using Channel = std::pair<uint64_t, uint32_t>;  // worker_id, dp_rank

  RouterEventRecorder(const std::string& nats_url, const std::string& subject);
  ~RouterEventRecorder();
  RouterEventRecorder(const RouterEventRecorder&) = delete;
  RouterEventRecorder& operator=(const RouterEventRecorder&) = delete;

  bool subscribed() const { return subscription_ != nullptr; }
  std::map<Channel, std::vector<uint64_t>> ids() const;
  uint64_t total() const { return total_.load(); }
  uint64_t undecodable() const { return undecodable_.load(); }
  // Returns once no message has arrived for `quiet`, or after `limit`.
  void wait_quiet(std::chrono::milliseconds quiet, std::chrono::milliseconds limit) const;

 private:
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self);

  std::unique_ptr<NatsClient> client_;
  natsSubscription* subscription_ = nullptr;
  mutable std::mutex mutex_;
  std::map<Channel, std::vector<uint64_t>> ids_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> undecodable_{0};
  std::atomic<int64_t> last_arrival_ns_{0};
  std::atomic<bool> completed_{false};  // the subscription's handler has returned for good
};

}  // namespace kvmock::testing
