#include "transport/nats/nats_publisher.h"

#include <algorithm>
#include <cstdio>

namespace kvmock {
namespace {

constexpr const char* kMsgIdHeader = "Nats-Msg-Id";
constexpr auto kIdleWait = std::chrono::milliseconds(50);
constexpr size_t kCoreBatch = 1024;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

NatsPublisher::NatsPublisher(NatsClient& client, Outbox& outbox, NatsPublisherOptions options)
    : client_(client), outbox_(outbox), options_(std::move(options)) {
  if (!options_.jetstream) stream_ready_ = true;
}

NatsPublisher::~NatsPublisher() {
  stop(std::chrono::steady_clock::now());
  if (js_) jsCtx_Destroy(js_);
}

void NatsPublisher::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
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
  return stopping_.load() && now_ns() >= deadline_ns_.load();
}

void NatsPublisher::run() {
  std::vector<OutboundMessage> batch;
  while (!draining_past_deadline()) {
    if (stopping_.load() && outbox_.size() == 0) break;
    if (!client_.connected()) {
      client_.wait_connected(kIdleWait.count());
      continue;
    }
    if (!stream_ready_.load() && !ensure_stream()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    batch.clear();
    const size_t max = options_.jetstream ? options_.window : kCoreBatch;
    if (outbox_.pop_batch(batch, max, kIdleWait) == 0) continue;
    if (options_.jetstream) {
      send_jetstream(batch);
    } else {
      send_core(batch);
    }
  }
  if (!options_.jetstream && client_.connected()) (void)client_.flush(1000);
}

bool NatsPublisher::ensure_stream() {
  natsStatus s = NATS_OK;
  if (!js_) {
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = 5000;
    js_options.PublishAsync.MaxPending = static_cast<int64_t>(options_.window) * 2;
    js_options.PublishAsync.ErrHandler = &NatsPublisher::on_async_error;
    js_options.PublishAsync.ErrHandlerClosure = this;
    s = natsConnection_JetStream(&js_, client_.connection(), &js_options);
    if (s != NATS_OK) {
      record_error(nats_error("JetStream context", s).message);
      return false;
    }
  }
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
  s = js_AddStream(&info, js_, &config, nullptr, &code);
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

void NatsPublisher::send_core(std::vector<OutboundMessage>& batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    auto sent = client_.publish(batch[i].subject, batch[i].data);
    if (!sent) {
      record_error(sent.error().message);
      outbox_.return_front(batch, i);
      return;
    }
    published_.fetch_add(1, std::memory_order_relaxed);
  }
}

void NatsPublisher::on_async_error(jsCtx*, jsPubAckErr* pae, void* self) {
  auto* publisher = static_cast<NatsPublisher*>(self);
  const char* id = nullptr;
  if (pae->Msg && natsMsgHeader_Get(pae->Msg, kMsgIdHeader, &id) == NATS_OK && id) {
    std::lock_guard lock(publisher->mutex_);
    publisher->failed_ids_.insert(id);
    publisher->last_error_ = std::string("JetStream publish: ") +
                             (pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
  }
}

void NatsPublisher::send_jetstream(std::vector<OutboundMessage>& batch) {
  in_flight_ = batch.size();
  std::vector<size_t> pending(batch.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  int round = 0;
  while (!pending.empty()) {
    if (draining_past_deadline()) {
      // Out of time: put the unsent messages back so stop() reports them.
      std::vector<OutboundMessage> rest;
      for (size_t i : pending) rest.push_back(std::move(batch[i]));
      outbox_.return_front(rest, 0);
      in_flight_ = 0;
      return;
    }
    if (round > 0) {
      retries_.fetch_add(pending.size(), std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::milliseconds(nats_reconnect_delay_ms(round)));
    }
    ++round;
    if (!client_.connected()) {
      client_.wait_connected(kIdleWait.count());
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      failed_ids_.clear();
    }
    std::vector<size_t> failed;
    for (size_t i : pending) {
      OutboundMessage& m = batch[i];
      natsMsg* msg = nullptr;
      natsStatus s = natsMsg_Create(&msg, m.subject.c_str(), nullptr,
                                    reinterpret_cast<const char*>(m.data.data()),
                                    static_cast<int>(m.data.size()));
      if (s == NATS_OK && !m.msg_id.empty())
        s = natsMsgHeader_Set(msg, kMsgIdHeader, m.msg_id.c_str());
      if (s == NATS_OK) s = js_PublishMsgAsync(js_, &msg, nullptr);
      if (msg) natsMsg_Destroy(msg);  // only left set when the publish call failed
      if (s != NATS_OK) {
        record_error(nats_error("JetStream publish", s).message);
        failed.push_back(i);
      }
    }
    jsPubOptions wait_options;
    jsPubOptions_Init(&wait_options);
    wait_options.MaxWait = options_.ack_timeout_ms;
    if (js_PublishAsyncComplete(js_, &wait_options) != NATS_OK) {
      natsMsgList unacked{};
      if (js_PublishAsyncGetPendingList(&unacked, js_) == NATS_OK) {
        std::lock_guard lock(mutex_);
        for (int k = 0; k < unacked.Count; ++k) {
          const char* id = nullptr;
          if (natsMsgHeader_Get(unacked.Msgs[k], kMsgIdHeader, &id) == NATS_OK && id) {
            failed_ids_.insert(id);
          }
        }
        natsMsgList_Destroy(&unacked);
      }
    }
    {
      std::lock_guard lock(mutex_);
      for (size_t i : pending) {
        if (failed_ids_.count(batch[i].msg_id)) failed.push_back(i);
      }
    }
    std::sort(failed.begin(), failed.end());
    failed.erase(std::unique(failed.begin(), failed.end()), failed.end());
    const size_t delivered = pending.size() - failed.size();
    published_.fetch_add(delivered, std::memory_order_relaxed);
    acked_.fetch_add(delivered, std::memory_order_relaxed);
    in_flight_ = failed.size();
    pending = std::move(failed);
  }
  in_flight_ = 0;
}

}  // namespace kvmock
