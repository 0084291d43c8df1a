#include "tests/support/daemon_harness.h"

#include <thread>

#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "transport/nats/nats_client.h"

namespace kvmock::testing {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::unique_ptr<NatsClient> connect_test_client(const std::string& url) {
  NatsClientOptions options;
  options.urls = {url};
  auto client = NatsClient::connect(options);
  if (!client || !(*client)->wait_connected(5000)) return nullptr;
  return std::move(*client);
}

bool wait_for_status(uint16_t port, const std::string& path, int status,
                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (http_request(port, "GET", path, "", std::chrono::milliseconds(500)).status == status) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

natsSubscription* subscribe_async(natsConnection* connection, const std::string& subject,
                                  natsMsgHandler handler, void* closure,
                                  std::atomic<bool>& completed) {
  natsSubscription* subscription = nullptr;
  if (natsConnection_Subscribe(&subscription, connection, subject.c_str(), handler, closure) !=
      NATS_OK) {
    return nullptr;
  }
  natsSubscription_SetPendingLimits(subscription, -1, -1);
  natsSubscription_SetOnCompleteCB(
      subscription, [](void* flag) { static_cast<std::atomic<bool>*>(flag)->store(true); },
      &completed);
  natsConnection_Flush(connection);
  return subscription;
}

void unsubscribe_and_wait(natsSubscription* subscription, const std::atomic<bool>& completed) {
  if (subscription == nullptr) return;
  natsSubscription_Unsubscribe(subscription);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!completed.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  natsSubscription_Destroy(subscription);
}

RouterEventRecorder::RouterEventRecorder(const std::string& nats_url, const std::string& subject) {
  client_ = connect_test_client(nats_url);
  if (!client_) return;
  subscription_ = subscribe_async(client_->connection(), subject, &RouterEventRecorder::on_message,
                                  this, completed_);
}

RouterEventRecorder::~RouterEventRecorder() {
  unsubscribe_and_wait(subscription_, completed_);
  if (client_) client_->close();
}

void RouterEventRecorder::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  auto* recorder = static_cast<RouterEventRecorder*>(self);
  auto published = decode_published_event(msg);
  natsMsg_Destroy(msg);
  recorder->last_arrival_ns_ = now_ns();
  recorder->total_.fetch_add(1);
  if (!published) {
    recorder->undecodable_.fetch_add(1);
    return;
  }
  const RouterEvent& event = published->event;
  std::lock_guard lock(recorder->mutex_);
  recorder->ids_[{event.worker_id, event.event.dp_rank}].push_back(event.event.event_id);
}

std::map<RouterEventRecorder::Channel, std::vector<uint64_t>> RouterEventRecorder::ids() const {
  std::lock_guard lock(mutex_);
  return ids_;
}

void RouterEventRecorder::wait_quiet(std::chrono::milliseconds quiet,
                                     std::chrono::milliseconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const int64_t quiet_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(quiet).count();
  while (std::chrono::steady_clock::now() < deadline &&
         now_ns() - last_arrival_ns_.load() < quiet_ns) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace kvmock::testing
