#include "transport/nats/nats_publisher.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>

#include "transport/log/thread_name.h"

namespace kvmock {
namespace {

constexpr const char* kMsgIdHeader = "Nats-Msg-Id";
constexpr auto kIdleWait = std::chrono::milliseconds(50);
constexpr size_t kCoreBatch = 1024;
constexpr int64_t kFlushTimeoutMs = 1000;
constexpr auto kMinFlushInterval = std::chrono::microseconds(1000);
// JetStream: outbox messages taken into the window at a time.
constexpr size_t kJetStreamPull = 256;
// JetStream: how long the thread sleeps waiting for acknowledgements or new messages while
// messages are in flight (it then checks for trouble and retires what was stored).
constexpr auto kVerdictPoll = std::chrono::milliseconds(1);

}  // namespace

NatsPublisher::NatsPublisher(NatsClient& client, Outbox& outbox, NatsPublisherOptions options,
                             const Clock& clock)
    : client_(client),
      outbox_(outbox),
      options_(std::move(options)),
      clock_(clock),
      window_(options_.window),
      auto_id_prefix_("kvmock-" + std::to_string(std::random_device{}()) + "-") {
  if (!options_.jetstream) stream_ready_ = true;
}

NatsPublisher::~NatsPublisher() {
  stop(clock_.steady_now());
  drop_durable();
}

void NatsPublisher::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    name_this_thread("kvmock-publish");
    run();
  });
}

size_t NatsPublisher::stop(std::chrono::steady_clock::time_point deadline) {
  deadline_ns_ =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  return outbox_.size() + in_flight_.load();
}

std::string NatsPublisher::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void NatsPublisher::record_error(std::string message) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  last_error_ = std::move(message);
}

bool NatsPublisher::draining_past_deadline() const {
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steady_now().time_since_epoch())
          .count();
  return stopping_.load() && now_ns >= deadline_ns_.load();
}

void NatsPublisher::run() {
  if (options_.jetstream) {
    run_jetstream();
  } else {
    run_core();
  }
}

void NatsPublisher::run_core() {
  std::vector<OutboundMessage> batch;
  while (!draining_past_deadline()) {
    if (stopping_.load() && outbox_.size() == 0) break;
    if (!client_.connected()) {
      client_.wait_connected(kIdleWait.count());
      continue;
    }
    batch.clear();
    if (outbox_.pop_batch(batch, kCoreBatch, kIdleWait) == 0) continue;
    send_core(batch);
  }
  if (client_.connected()) (void)client_.flush(1000);
}

void NatsPublisher::send_core(std::vector<OutboundMessage>& batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    auto sent = client_.publish(*batch[i].subject, batch[i].data);
    if (!sent) {
      record_error(sent.error().message);
      outbox_.return_front(batch, i);
      return;
    }
    published_.fetch_add(1, std::memory_order_relaxed);
  }
  // nats.c's flusher thread waits a millisecond for more data before it writes. Caught up
  // after a quiet spell, write now instead (a PING round trip, during which the next burst
  // gathers in the outbox). Each flush costs the server and us a round trip, so within
  // kMinFlushInterval of the last one nats.c's own flusher, due within a millisecond
  // anyway, does it; under sustained load the outbox never empties and nats.c writes
  // whenever its buffer fills.
  const auto now = clock_.steady_now();
  if (outbox_.size() == 0 && now - last_flush_ >= kMinFlushInterval) {
    (void)client_.flush(kFlushTimeoutMs);
    last_flush_ = clock_.steady_now();
  }
}

void NatsPublisher::run_jetstream() {
  while (!draining_past_deadline()) {
    const JetStreamWindow::Retired retired = window_.retire();
    published_.fetch_add(retired.durable + retired.core, std::memory_order_relaxed);
    acked_.fetch_add(retired.durable, std::memory_order_relaxed);
    in_flight_ = window_.size();
    if (stopping_.load() && outbox_.size() == 0 && window_.size() == 0) break;
    if (!durable_ && !connect_durable()) {
      // Back off (10 ms doubling, at most 5 s), in short steps so a stop is not held up.
      const auto until = clock_.steady_now() +
                         std::chrono::milliseconds(nats_reconnect_delay_ms(connect_failures_));
      while (clock_.steady_now() < until && !draining_past_deadline()) {
        std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
            kIdleWait,
            std::chrono::duration_cast<std::chrono::nanoseconds>(until - clock_.steady_now())));
      }
      continue;
    }
    if (!durable_->connected() || window_in_trouble()) {
      start_over();
      continue;
    }
    switch (send_window()) {
      case SendResult::kTrouble:
        start_over();
        continue;
      case SendResult::kCoreBlocked:
        client_.wait_connected(kIdleWait.count());
        continue;
      case SendResult::kSent:
        break;
    }
    peak_in_flight_ = std::max(peak_in_flight_.load(), window_.in_flight());
    if (window_.has_room() && window_.next_unsent() == nullptr) {
      // Everything taken has been sent: wait for more (only briefly while acknowledgements
      // are due, to retire what is stored and notice trouble).
      const auto wait = window_.in_flight() > 0 ? kVerdictPoll : kIdleWait;
      if (!pull_into_window(std::chrono::duration_cast<std::chrono::milliseconds>(wait)) &&
          outbox_.closed()) {
        std::this_thread::sleep_for(kVerdictPoll);
      }
    } else {
      // The window is full: wait for an acknowledgement to open it.
      std::unique_lock lock(wake_mutex_);
      verdict_arrived_.wait_for(lock, kVerdictPoll);
    }
  }
  // Out of time, or done: what the server has not stored goes back to the outbox, in order,
  // so stop() reports it.
  std::vector<OutboundMessage> unstored = window_.take_unstored();
  outbox_.return_front(unstored, 0);
  in_flight_ = 0;
  drop_durable();
}

void NatsPublisher::start_over() {
  // Whatever the server did not store goes again, in order, on a fresh connection.
  drop_durable();
  window_.rewind();
}

bool NatsPublisher::pull_into_window(std::chrono::milliseconds wait) {
  pulled_.clear();
  if (outbox_.pop_batch(pulled_, kJetStreamPull, wait) == 0) return false;
  for (OutboundMessage& m : pulled_) {
    // Acknowledgements are matched by id, so every durable message needs one.
    if (m.durable && m.msg_id.empty()) m.msg_id = auto_id_prefix_ + std::to_string(next_auto_id_++);
    window_.append(std::move(m));
  }
  return true;
}

NatsPublisher::SendResult NatsPublisher::send_window() {
  while (window_.has_room()) {
    const OutboundMessage* m = window_.next_unsent();
    if (m == nullptr) {
      if (!pull_into_window(std::chrono::milliseconds(0))) break;
      continue;
    }
    if (!m->durable) {
      auto sent = client_.publish(*m->subject, m->data);
      if (!sent) {
        record_error(sent.error().message);
        return SendResult::kCoreBlocked;
      }
      window_.mark_delivered();
      continue;
    }
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, m->subject->c_str(), nullptr,
                                  reinterpret_cast<const char*>(m->data.data()),
                                  static_cast<int>(m->data.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, kMsgIdHeader, m->msg_id.c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(js_, &msg, nullptr);
    if (msg) natsMsg_Destroy(msg);  // only left set when the publish call failed
    if (s != NATS_OK) {
      record_error(nats_error("JetStream publish", s).message);
      return SendResult::kTrouble;
    }
    if (window_.mark_sent(clock_.steady_now())) retries_.fetch_add(1, std::memory_order_relaxed);
  }
  return SendResult::kSent;
}

bool NatsPublisher::window_in_trouble() {
  if (window_.refused()) return true;  // on_ack recorded the server's reason
  const auto oldest = window_.oldest_waiting_since();
  if (oldest &&
      clock_.steady_now() - *oldest >= std::chrono::milliseconds(options_.ack_timeout_ms)) {
    record_error("JetStream publish: no acknowledgement within " +
                 std::to_string(options_.ack_timeout_ms) + " ms");
    return true;
  }
  return false;
}

bool NatsPublisher::connect_durable() {
  NatsClientOptions options = client_.options();
  options.reconnect = false;
  options.name += "-jetstream";
  auto client = NatsClient::connect(options);
  if (!client) {
    ++connect_failures_;
    record_error(client.error().message);
    return false;
  }
  durable_ = std::move(*client);
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = 5000;
  js_options.PublishAsync.MaxPending = static_cast<int64_t>(options_.window) * 2;
  js_options.PublishAsync.AckHandler = &NatsPublisher::on_ack;
  js_options.PublishAsync.AckHandlerClosure = this;
  const natsStatus s = natsConnection_JetStream(&js_, durable_->connection(), &js_options);
  if (s != NATS_OK) {
    ++connect_failures_;
    record_error(nats_error("JetStream context", s).message);
    drop_durable();
    return false;
  }
  live_js_ = js_;
  if (!ensure_stream()) {
    ++connect_failures_;
    drop_durable();
    return false;
  }
  connect_failures_ = 0;
  return true;
}

void NatsPublisher::drop_durable() {
  live_js_ = nullptr;  // acknowledgements still arriving on it no longer count
  if (js_) {
    jsCtx_Destroy(js_);
    js_ = nullptr;
  }
  durable_.reset();
}

bool NatsPublisher::ensure_stream() {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = options_.stream.stream.c_str();
  std::vector<const char*> subjects;
  for (const std::string& subject : options_.stream.subjects) subjects.push_back(subject.c_str());
  config.Subjects = subjects.data();
  config.SubjectsLen = static_cast<int>(subjects.size());
  config.MaxAge = options_.stream.max_age_s * 1'000'000'000LL;
  config.Replicas = options_.stream.replicas;
  config.Storage = js_FileStorage;

  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&info, js_, &config, nullptr, &code);
  if (s != NATS_OK && code == JSStreamNameExistErr) {
    s = js_UpdateStream(&info, js_, &config, nullptr, &code);
  }
  if (info) jsStreamInfo_Destroy(info);
  if (s != NATS_OK) {
    record_error("JetStream stream " + options_.stream.stream + ": " + natsStatus_GetText(s) +
                 " (error code " + std::to_string(code) + ")");
    return false;
  }
  stream_ready_ = true;
  return true;
}

void NatsPublisher::on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* self) {
  // nats.c hands the published message back to us: we own it from here on.
  std::unique_ptr<natsMsg, decltype(&natsMsg_Destroy)> owned(msg, &natsMsg_Destroy);
  auto* publisher = static_cast<NatsPublisher*>(self);
  if (js != publisher->live_js_.load()) return;  // an abandoned connection's
  const char* id = nullptr;
  if (!msg || natsMsgHeader_Get(msg, kMsgIdHeader, &id) != NATS_OK || !id) return;
  const bool stored = ack != nullptr && error == nullptr;
  publisher->window_.record(id, stored);
  if (!stored) {
    publisher->record_error(std::string("JetStream publish: ") +
                            (error && error->ErrText
                                 ? error->ErrText
                                 : natsStatus_GetText(error ? error->Err : NATS_ERR)));
  }
  publisher->verdict_arrived_.notify_one();
}

}  // namespace kvmock
