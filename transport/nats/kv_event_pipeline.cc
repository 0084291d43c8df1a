#include "transport/nats/kv_event_pipeline.h"

#include <algorithm>
#include <random>

#include "core/events/active_load_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/kv_query_codec.h"
#include "core/events/router_event_codec.h"
#include "core/events/subjects.h"
#include "transport/log/logger.h"
#include "transport/log/thread_name.h"

namespace kvmock {
namespace {

constexpr auto kBackpressureSlice = std::chrono::milliseconds(100);
constexpr const char* kMetricsTopic = "kv_metrics";

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

uint64_t random_publisher_id() {
  std::random_device device;
  const uint64_t value = (static_cast<uint64_t>(device()) << 32) ^ device();
  return value & ((uint64_t{1} << 53) - 1);
}

struct KvEventPipeline::Channel {
  Channel(WorkerId worker, DpRank rank, const KvEventPipelineOptions& options)
      : stream(worker, rank, WorkerEventStreamOptions{options.batching_timeout_ms}),
        indexer(worker, rank, options.indexer_buffer_size),
        publisher_id(random_publisher_id()) {}

  std::mutex send_mutex;   // one publisher at a time, so outbox order == id order
  std::mutex state_mutex;  // stream + indexer, shared with queries
  WorkerEventStream stream;
  LocalIndexer indexer;
  const uint64_t publisher_id;
  uint64_t envelope_sequence = 0;
};

KvEventPipeline::KvEventPipeline(NatsClient& client, Outbox& outbox, KvEventPipelineOptions options,
                                 MetricsRegistry& metrics)
    : client_(client),
      outbox_(outbox),
      options_(std::move(options)),
      events_subject_(std::make_shared<const std::string>(
          options_.jetstream
              ? jetstream_subject(jetstream_stream_name(options_.ns, options_.component),
                                  options_.kv_subject)
              : kv_events_subject(options_.ns, options_.component, options_.kv_subject))),
      metrics_subject_(std::make_shared<const std::string>(kv_metrics_subject(options_.ns))),
      epoch_(std::chrono::steady_clock::now()),
      debouncer_(options_.debounce_ms, options_.heartbeat_ms),
      load_publisher_id_(random_publisher_id()) {
  const std::string plane = options_.jetstream ? "jetstream" : "nats";
  events_queued_ =
      &metrics.counter("kvmock_pipeline_events_queued_total",
                       "Router events numbered, indexed and queued for NATS.", {{"plane", plane}});
  events_deduplicated_ =
      &metrics.counter("kvmock_pipeline_events_deduplicated_total",
                       "Events absorbed by batching or reference-counted de-duplication.");
  indexer_rejections_ =
      &metrics.counter("kvmock_indexer_rejected_events_total",
                       "Published events the local indexer could not apply (e.g. unknown parent).");
  loads_queued_ = &metrics.counter("kvmock_load_metrics_queued_total",
                                   "ActiveLoad messages queued (changes and heartbeats).");
  queries_ok_ = &metrics.counter("kvmock_indexer_queries_total", "Local indexer queries answered.",
                                 {{"result", "ok"}});
  queries_bad_ = &metrics.counter("kvmock_indexer_queries_total", "Local indexer queries answered.",
                                  {{"result", "error"}});
  backpressure_waits_ = &metrics.counter(
      "kvmock_pipeline_backpressure_waits_total",
      "Times a source waited because the outbox was full (sources slowed, nothing dropped).");
}

KvEventPipeline::~KvEventPipeline() { stop(); }

uint64_t KvEventPipeline::now_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - epoch_)
                                   .count());
}

void KvEventPipeline::start() {
  if (timer_.joinable()) return;
  timer_ = std::thread([this] {
    name_this_thread("kvmock-timer");
    timer_loop();
  });
}

void KvEventPipeline::stop() {
  if (stopping_.exchange(true)) return;
  poke_timer();
  if (timer_.joinable()) timer_.join();
  std::unique_lock lock(channels_mutex_);
  for (auto& [key, channel] : channels_) {
    std::lock_guard send(channel->send_mutex);
    std::vector<RouterEvent> pending;
    {
      std::lock_guard state(channel->state_mutex);
      pending = channel->stream.flush();
      for (const RouterEvent& e : pending) (void)channel->indexer.apply(e);
    }
    enqueue(*channel, pending);
  }
  for (auto& [worker, subscription] : query_subscriptions_) {
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
  }
  query_subscriptions_.clear();
}

KvEventPipeline::Channel* KvEventPipeline::find_channel(WorkerId worker, DpRank rank) {
  std::shared_lock lock(channels_mutex_);
  auto it = channels_.find({worker, rank});
  return it == channels_.end() ? nullptr : it->second.get();
}

KvEventPipeline::Channel& KvEventPipeline::channel(WorkerId worker, DpRank rank) {
  if (Channel* existing = find_channel(worker, rank)) return *existing;
  std::unique_lock lock(channels_mutex_);
  auto& slot = channels_[{worker, rank}];
  if (!slot) {
    slot = std::make_unique<Channel>(worker, rank, options_);
    if (options_.serve_queries && !query_subscriptions_.count(worker)) subscribe_queries(worker);
  }
  return *slot;
}

size_t KvEventPipeline::publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) {
  Channel& ch = channel(worker, rank);
  std::lock_guard send(ch.send_mutex);
  std::vector<RouterEvent> numbered;
  numbered.reserve(events.size());
  const uint64_t now = now_ms();
  {
    std::lock_guard state(ch.state_mutex);
    for (RouterEvent& event : events) ch.stream.push(std::move(event), now, numbered);
    for (const RouterEvent& e : numbered) {
      if (!ch.indexer.apply(e).ok()) indexer_rejections_->inc();
    }
  }
  if (events.size() > numbered.size()) events_deduplicated_->inc(events.size() - numbered.size());
  enqueue(ch, numbered);
  if (options_.batching_timeout_ms > 0) poke_timer();
  return numbered.size();
}

void KvEventPipeline::publish_cleared(WorkerId worker, DpRank rank) {
  RouterEvent cleared;
  cleared.worker_id = worker;
  cleared.event.dp_rank = rank;
  cleared.event.data = ClearData{};
  std::vector<RouterEvent> events;
  events.push_back(std::move(cleared));
  publish(worker, rank, std::move(events));
}

void KvEventPipeline::enqueue(Channel& ch, std::vector<RouterEvent>& numbered) {
  if (numbered.empty()) return;
  std::vector<OutboundMessage> messages;
  messages.reserve(numbered.size());
  EventEnvelope envelope;  // one for the whole batch: its payload buffer is reused
  envelope.publisher_id = ch.publisher_id;
  envelope.published_at = unix_ms();
  envelope.topic = options_.kv_subject;
  std::string json;
  for (const RouterEvent& event : numbered) {
    OutboundMessage& message = messages.emplace_back();
    message.subject = events_subject_;
    if (options_.jetstream) {
      json.clear();
      encode_router_event_json(event, options_.field_set, json);
      message.data.assign(json.begin(), json.end());
      message.durable = true;
      message.msg_id = std::to_string(ch.publisher_id) + "-" + std::to_string(event.event.event_id);
    } else {
      envelope.sequence = ch.envelope_sequence++;
      envelope.payload.clear();
      encode_router_event_msgpack(event, options_.field_set, envelope.payload);
      message.data = encode_event_envelope_msgpack(envelope);
    }
  }
  push_all_blocking(messages);
  events_queued_->inc(messages.size());
}

void KvEventPipeline::push_all_blocking(std::vector<OutboundMessage>& messages) {
  // Backpressure, not loss: wait for room however long NATS stays away.
  size_t sent = 0;
  while (sent < messages.size()) {
    sent += outbox_.push_all(messages, sent, kBackpressureSlice);
    if (sent < messages.size()) note_backpressure();
  }
}

void KvEventPipeline::note_backpressure() {
  backpressure_waits_->inc();
  Logger::instance().log_limited(LogSeverity::kWarn, "outbox-full", "pipeline",
                                 "outbox full (" + std::to_string(outbox_.capacity()) +
                                     " events): slowing sources until NATS catches up",
                                 std::chrono::seconds(5));
}

void KvEventPipeline::push_blocking(OutboundMessage message) {
  std::vector<OutboundMessage> one;
  one.push_back(std::move(message));
  push_all_blocking(one);
}

void KvEventPipeline::update_load(const ActiveLoad& load) {
  bool wake = false;
  {
    std::lock_guard lock(load_mutex_);
    const uint64_t now = now_ms();
    debouncer_.update(load, now);
    // A change is due within debounce_ms; a timer already set to look by then sees it.
    const uint64_t due = now + options_.debounce_ms;
    if (due < load_wake_ms_) {
      load_wake_ms_ = due;
      wake = true;
    }
  }
  if (wake) poke_timer();
}

void KvEventPipeline::poke_timer() {
  {
    std::lock_guard lock(timer_mutex_);
    timer_poked_ = true;
  }
  timer_wake_.notify_one();
}

void KvEventPipeline::enqueue_load(const ActiveLoad& load) {
  EventEnvelope envelope;
  envelope.publisher_id = load_publisher_id_;
  envelope.sequence = load_sequence_++;
  envelope.published_at = unix_ms();
  envelope.topic = kMetricsTopic;
  encode_active_load_msgpack(load, envelope.payload);
  OutboundMessage message;
  message.subject = metrics_subject_;
  encode_event_envelope_msgpack(envelope, message.data);
  push_blocking(std::move(message));
  loads_queued_->inc();
}

void KvEventPipeline::timer_loop() {
  while (!stopping_.load()) {
    const uint64_t now = now_ms();
    std::optional<uint64_t> next;
    auto consider = [&next](std::optional<uint64_t> deadline) {
      if (deadline && (!next || *deadline < *next)) next = deadline;
    };
    {
      std::lock_guard lock(load_mutex_);
      for (const ActiveLoad& load : debouncer_.poll(now)) enqueue_load(load);
      uint64_t wake = debouncer_.next_deadline_ms().value_or(UINT64_MAX);
      // While loads keep changing, look again one debounce period on without being woken.
      // A load that flaps between two values (a relay's block count at capacity: store,
      // evict, store) cancels and re-arms its change on every flap, and each re-arm after
      // a cancel would otherwise wake this thread: thousands of wake-ups a second.
      const uint64_t updates = debouncer_.counters().updates;
      if (updates != load_updates_seen_) {
        wake = std::min(wake, now + std::max<uint64_t>(1, options_.debounce_ms));
        load_updates_seen_ = updates;
      }
      load_wake_ms_ = wake;
      if (wake != UINT64_MAX) consider(wake);
    }
    if (options_.batching_timeout_ms > 0) {
      std::vector<Channel*> channels;
      {
        std::shared_lock lock(channels_mutex_);
        for (auto& [key, ch] : channels_) channels.push_back(ch.get());
      }
      for (Channel* ch : channels) {
        std::lock_guard send(ch->send_mutex);
        std::vector<RouterEvent> ready;
        {
          std::lock_guard state(ch->state_mutex);
          ready = ch->stream.poll(now);
          for (const RouterEvent& e : ready) {
            if (!ch->indexer.apply(e).ok()) indexer_rejections_->inc();
          }
          consider(ch->stream.next_deadline_ms());
        }
        enqueue(*ch, ready);
      }
    }
    std::unique_lock lock(timer_mutex_);
    const uint64_t wait_ms = next ? (*next > now ? *next - now : 0) : 1000;
    if (wait_ms > 0) {
      timer_wake_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                           [this] { return timer_poked_ || stopping_.load(); });
    }
    timer_poked_ = false;
  }
}

WorkerKvQueryResponse KvEventPipeline::query(const WorkerKvQueryRequest& request) {
  Channel* ch = find_channel(request.worker_id, request.dp_rank);
  if (!ch) {
    return QueryError{"no events for worker " + std::to_string(request.worker_id) + " dp_rank " +
                      std::to_string(request.dp_rank)};
  }
  std::lock_guard state(ch->state_mutex);
  return ch->indexer.query(request);
}

size_t KvEventPipeline::block_count(WorkerId worker, DpRank rank) {
  Channel* ch = find_channel(worker, rank);
  if (!ch) return 0;
  std::lock_guard state(ch->state_mutex);
  return ch->indexer.block_count();
}

EventId KvEventPipeline::last_event_id(WorkerId worker, DpRank rank) {
  Channel* ch = find_channel(worker, rank);
  if (!ch) return 0;
  std::lock_guard state(ch->state_mutex);
  return ch->stream.last_event_id();
}

std::vector<ChannelProgress> KvEventPipeline::progress() {
  std::vector<ChannelProgress> out;
  std::shared_lock lock(channels_mutex_);
  out.reserve(channels_.size());
  for (auto& [key, ch] : channels_) {
    std::lock_guard state(ch->state_mutex);
    out.push_back(ChannelProgress{key.first, key.second, ch->stream.last_event_id()});
  }
  return out;
}

void KvEventPipeline::subscribe_queries(WorkerId worker) {
  const std::string subject = kv_indexer_query_subject(options_.ns, worker);
  natsSubscription* subscription = nullptr;
  const natsStatus s = natsConnection_Subscribe(&subscription, client_.connection(),
                                                subject.c_str(), &KvEventPipeline::on_query, this);
  if (s != NATS_OK) {
    log_error("pipeline",
              "cannot serve indexer queries on " + subject + ": " + natsStatus_GetText(s));
    return;
  }
  query_subscriptions_[worker] = subscription;
}

void KvEventPipeline::on_query(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  static_cast<KvEventPipeline*>(self)->handle_query(msg);
  natsMsg_Destroy(msg);
}

void KvEventPipeline::handle_query(natsMsg* msg) {
  const char* reply = natsMsg_GetReply(msg);
  if (!reply || !*reply) {
    queries_bad_->inc();
    return;
  }
  const std::string_view body(natsMsg_GetData(msg),
                              static_cast<size_t>(natsMsg_GetDataLength(msg)));
  auto request = decode_worker_kv_query_request_json(body);
  WorkerKvQueryResponse response;
  if (!request) {
    queries_bad_->inc();
    Logger::instance().log_limited(LogSeverity::kWarn, "bad-query", "pipeline",
                                   "bad indexer query: " + request.error().message);
    response = QueryError{"bad request: " + request.error().message};
  } else {
    response = query(*request);
    if (std::holds_alternative<QueryError>(response)) {
      queries_bad_->inc();
    } else {
      queries_ok_->inc();
    }
  }
  std::string json;
  encode_worker_kv_query_response_json(response, options_.field_set, json);
  (void)client_.publish_reply(
      reply, std::span(reinterpret_cast<const uint8_t*>(json.data()), json.size()));
}

}  // namespace kvmock
