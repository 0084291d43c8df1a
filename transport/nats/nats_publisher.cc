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

}  // namespace

NatsPublisher::NatsPublisher(NatsClient& client, Outbox& outbox, NatsPublisherOptions options,
                             const Clock& clock)
    : client_(client),
      outbox_(outbox),
      options_(std::move(options)),
      clock_(clock),
      auto_id_prefix_("kvmock-" + std::to_string(std::random_device{}()) + "-") {
  if (!options_.jetstream) stream_ready_ = true;
}

NatsPublisher::~NatsPublisher() {
  stop(clock_.steady_now());
  if (js_) jsCtx_Destroy(js_);
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
    js_options.PublishAsync.AckHandler = &NatsPublisher::on_ack;
    js_options.PublishAsync.AckHandlerClosure = this;
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

void NatsPublisher::on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* self) {
  // nats.c hands the published message back to us: we own it from here on.
  std::unique_ptr<natsMsg, decltype(&natsMsg_Destroy)> owned(msg, &natsMsg_Destroy);
  auto* publisher = static_cast<NatsPublisher*>(self);
  const char* id = nullptr;
  if (!msg || natsMsgHeader_Get(msg, kMsgIdHeader, &id) != NATS_OK || !id) return;
  {
    std::lock_guard lock(publisher->mutex_);
    if (ack && !error) {
      publisher->acked_ids_.insert(id);
    } else {
      publisher->refused_ids_.insert(id);
      if (error) {
        publisher->last_error_ = std::string("JetStream publish: ") +
                                 (error->ErrText ? error->ErrText : natsStatus_GetText(error->Err));
      }
    }
  }
  publisher->verdicts_.notify_all();
}

void NatsPublisher::send_jetstream(std::vector<OutboundMessage>& batch) {
  in_flight_ = batch.size();
  // Acknowledgements are matched by id, so every durable message needs one.
  for (OutboundMessage& m : batch) {
    if (m.durable && m.msg_id.empty()) m.msg_id = auto_id_prefix_ + std::to_string(next_auto_id_++);
  }
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
    std::vector<size_t> failed;
    {
      std::lock_guard lock(mutex_);
      for (size_t i : pending) refused_ids_.erase(batch[i].msg_id);
    }
    const std::vector<size_t> sent = publish_round(batch, pending, failed);
    // Without this, nats.c's flusher holds the window for a millisecond first.
    if (!sent.empty()) (void)client_.flush(kFlushTimeoutMs);
    collect_verdicts(batch, sent, failed);
    std::sort(failed.begin(), failed.end());
    failed.erase(std::unique(failed.begin(), failed.end()), failed.end());
    const size_t failed_durable = static_cast<size_t>(
        std::count_if(failed.begin(), failed.end(), [&](size_t i) { return batch[i].durable; }));
    const size_t delivered = sent.size() - std::min(sent.size(), failed_durable);
    published_.fetch_add(delivered, std::memory_order_relaxed);
    acked_.fetch_add(delivered, std::memory_order_relaxed);
    in_flight_ = failed.size();
    pending = std::move(failed);
  }
  in_flight_ = 0;
  std::lock_guard lock(mutex_);
  acked_ids_.clear();  // late duplicates' acks for this window are no longer needed
  refused_ids_.clear();
}

std::vector<size_t> NatsPublisher::publish_round(std::vector<OutboundMessage>& batch,
                                                 const std::vector<size_t>& pending,
                                                 std::vector<size_t>& failed) {
  std::vector<size_t> sent;  // durable messages awaiting an ack this round
  for (size_t i : pending) {
    OutboundMessage& m = batch[i];
    if (!m.durable) {
      if (client_.publish(*m.subject, m.data).ok()) {
        published_.fetch_add(1, std::memory_order_relaxed);
      } else {
        failed.push_back(i);
      }
      continue;
    }
    sent.push_back(i);
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, m.subject->c_str(), nullptr,
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
  return sent;
}

void NatsPublisher::collect_verdicts(const std::vector<OutboundMessage>& batch,
                                     const std::vector<size_t>& sent, std::vector<size_t>& failed) {
  jsPubOptions wait_options;
  jsPubOptions_Init(&wait_options);
  wait_options.MaxWait = options_.ack_timeout_ms;
  const bool complete = js_PublishAsyncComplete(js_, &wait_options) == NATS_OK;
  if (!complete) {
    // Give up on the acks still outstanding; send_jetstream re-sends those messages.
    natsMsgList unacked{};
    if (js_PublishAsyncGetPendingList(&unacked, js_) == NATS_OK) natsMsgList_Destroy(&unacked);
  }
  {
    std::unique_lock lock(mutex_);
    if (complete) {
      // The ack callbacks may still be running after the pending count reached zero:
      // wait (briefly) for a verdict on every message of this round.
      auto decided = [&] {
        for (size_t i : sent) {
          if (!acked_ids_.count(batch[i].msg_id) && !refused_ids_.count(batch[i].msg_id)) {
            return false;
          }
        }
        return true;
      };
      verdicts_.wait_for(lock, std::chrono::milliseconds(options_.ack_timeout_ms), decided);
    }
    for (size_t i : sent) {
      auto it = acked_ids_.find(batch[i].msg_id);
      if (it == acked_ids_.end()) {
        failed.push_back(i);
      } else {
        acked_ids_.erase(it);
      }
    }
  }
}

}  // namespace kvmock
