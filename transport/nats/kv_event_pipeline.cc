#include "transport/nats/kv_event_pipeline.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "transport/log/logger.h"

namespace kvmock {

KvEventPipeline::Channel::Channel(WorkerId worker, DpRank rank,
                                  const KvEventPipelineOptions& options)
    : worker(worker),
      rank(rank),
      events(worker, rank,
             PublishingChannelOptions{options.batching_timeout_ms, options.indexer_buffer_size}) {
  stamp.publisher_id = worker;
}

namespace {

// How often held events are offered to the outbox again.
constexpr uint64_t kHeldRetryMs = 20;

EventPlaneOptions plane_options(const KvEventPipelineOptions& options) {
  return EventPlaneOptions{options.ns, options.component, options.kv_subject, options.jetstream,
                           options.field_set};
}

}  // namespace

KvEventPipeline::KvEventPipeline(Outbox& outbox, KvEventPipelineOptions options,
                                 MetricsRegistry& metrics, const Clock& clock)
    : outbox_(outbox),
      options_(std::move(options)),
      clock_(clock),
      epoch_(clock.steady_now()),
      writer_(outbox_, metrics, clock),
      encoder_(make_event_plane_encoder(plane_options(options_), clock)),
      loads_(writer_,
             LoadPublisherOptions{options_.ns, options_.debounce_ms, options_.heartbeat_ms},
             metrics, clock),
      ticker_("kvmock-timer", [this] { return tick(); }),
      metrics_(metrics) {
  events_queued_ = &metrics.counter("kvmock_pipeline_events_queued_total",
                                    "Router events numbered, indexed and queued for NATS.",
                                    {{"plane", encoder_->plane_name()}});
  events_deduplicated_ =
      &metrics.counter("kvmock_pipeline_events_deduplicated_total",
                       "Events absorbed by batching or reference-counted de-duplication.");
  events_held_total_ = &metrics.counter(
      "kvmock_pipeline_events_held_total",
      "Mock-worker events held back because the outbox was full (queued later, in order).");
  metrics.gauge_callback("kvmock_pipeline_events_held",
                         "Mock-worker events held because the outbox is full (workers refuse "
                         "new requests while this is above 0).",
                         {}, [this] { return static_cast<double>(held_events_.load()); });
  indexer_rejections_ =
      &metrics.counter("kvmock_indexer_rejected_events_total",
                       "Published events the local indexer could not apply (e.g. unknown parent).");
}

KvEventPipeline::~KvEventPipeline() { stop(); }

uint64_t KvEventPipeline::now_ms() const { return clock_.steady_ms_since(epoch_); }

void KvEventPipeline::start() { ticker_.start(); }

void KvEventPipeline::stop() {
  if (stopped_.exchange(true)) return;
  ticker_.stop();
  for (Channel* ch : all_channels()) send(*ch, [](PublishingChannel& c) { return c.flush(); });
  for (Channel* ch : all_channels()) {
    std::lock_guard sending(ch->send_mutex);
    // Shutdown does not wait out event delays: what is delayed goes now, in order.
    if (!ch->delayed.empty()) deliver(*ch, take_delayed(*ch, now_ms(), /*everything=*/true));
    release_held(*ch);
  }
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
  if (!slot) slot = std::make_unique<Channel>(worker, rank, options_);
  return *slot;
}

std::vector<KvEventPipeline::Channel*> KvEventPipeline::all_channels() {
  std::vector<Channel*> channels;
  std::shared_lock lock(channels_mutex_);
  channels.reserve(channels_.size());
  for (auto& [key, ch] : channels_) channels.push_back(ch.get());
  return channels;
}

void KvEventPipeline::add_worker(WorkerId worker, uint32_t dp_size,
                                 WorkerChannelOptions channel_options) {
  for (DpRank rank = 0; rank < std::max<uint32_t>(1, dp_size); ++rank) {
    Channel& ch = channel(worker, rank);
    std::lock_guard sending(ch.send_mutex);
    if (channel_options.clear_first && ch.events.last_event_id() == 0) ch.clear_first = true;
    ch.hold_when_full = channel_options.hold_when_outbox_full;
  }
}

namespace {

RouterEvent cleared_event(WorkerId worker, DpRank rank) {
  RouterEvent cleared;
  cleared.worker_id = worker;
  cleared.event.dp_rank = rank;
  cleared.event.data = ClearData{};
  return cleared;
}

}  // namespace

template <typename Release>
void KvEventPipeline::send(Channel& ch, Release&& release) {
  std::lock_guard sending(ch.send_mutex);
  ReleasedEvents released;
  {
    std::lock_guard state(ch.state_mutex);
    released = release(ch.events);
  }
  if (released.indexer_rejections > 0) indexer_rejections_->inc(released.indexer_rejections);
  if (released.events.empty()) return;
  std::vector<OutboundMessage> messages;
  messages.reserve(released.events.size());
  encoder_->encode(released.events, ch.stamp, messages);
  const std::optional<WorkerEventFaults> faults =
      any_event_faults_.load() ? event_faults(ch.worker) : std::nullopt;
  size_t events_sent = released.events.size();
  if (faults && faults->faults.draws()) {
    messages = apply_event_fates(ch, *faults, released.events, std::move(messages), events_sent);
  }
  const bool delaying = faults && faults->faults.delay_ms > 0 && !stopped_.load();
  if (delaying) faults->delayed->inc(events_sent);
  if (!ch.delayed.empty() || delaying) {
    // Behind the delayed messages: a delay that shrinks or ends must not reorder events.
    const uint64_t due =
        now_ms() + (delaying ? static_cast<uint64_t>(std::llround(faults->faults.delay_ms)) : 0);
    for (OutboundMessage& message : messages) {
      ch.delayed.push_back(DelayedMessage{due, std::move(message)});
    }
    delayed_messages_.fetch_add(messages.size());
    messages = take_delayed(ch, now_ms(), /*everything=*/stopped_.load());
    if (messages.empty()) {
      ticker_.poke();  // the timer learns of the new deadline
      return;
    }
  }
  deliver(ch, std::move(messages));
}

void KvEventPipeline::deliver(Channel& ch, std::vector<OutboundMessage> messages) {
  if (messages.empty()) return;
  if (ch.hold_when_full && !stopped_.load()) {
    queue_or_hold(ch, std::move(messages));
    return;
  }
  release_held(ch);
  events_queued_->inc(writer_.push_all(messages));
}

std::vector<OutboundMessage> KvEventPipeline::take_delayed(Channel& ch, uint64_t now,
                                                           bool everything) {
  std::vector<OutboundMessage> due;
  while (!ch.delayed.empty() && (everything || ch.delayed.front().due_ms <= now)) {
    due.push_back(std::move(ch.delayed.front().message));
    ch.delayed.pop_front();
  }
  delayed_messages_.fetch_sub(due.size());
  return due;
}

std::optional<KvEventPipeline::WorkerEventFaults> KvEventPipeline::event_faults(WorkerId worker) {
  std::lock_guard lock(event_faults_mutex_);
  auto it = event_faults_.find(worker);
  if (it == event_faults_.end() || !it->second.faults.any()) return std::nullopt;
  return it->second;
}

std::vector<OutboundMessage> KvEventPipeline::apply_event_fates(
    const Channel& ch, const WorkerEventFaults& faults, const std::vector<RouterEvent>& events,
    std::vector<OutboundMessage> messages, size_t& events_sent) {
  // The encoder writes one message per event, in order; anything else is not ours to judge.
  if (messages.size() != events.size()) return messages;
  std::vector<OutboundMessage> sent;
  sent.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    switch (draw_event_fate(faults.faults, ch.worker, ch.rank, events[i].event.event_id)) {
      case EventFate::kDrop:
        faults.dropped->inc();
        --events_sent;
        break;
      case EventFate::kDuplicate: {
        faults.duplicated->inc();
        OutboundMessage copy = messages[i];
        // JetStream would discard a second message with the same Nats-Msg-Id; the copy
        // gets its own id so the router receives it (the payload is the same bytes).
        if (!copy.msg_id.empty()) copy.msg_id += "-dup";
        sent.push_back(std::move(messages[i]));
        sent.push_back(std::move(copy));
        break;
      }
      case EventFate::kSend:
        sent.push_back(std::move(messages[i]));
        break;
    }
  }
  return sent;
}

void KvEventPipeline::set_event_faults(WorkerId worker, const EventFaults& faults) {
  std::lock_guard lock(event_faults_mutex_);
  WorkerEventFaults& entry = event_faults_[worker];
  if (entry.dropped == nullptr) {
    const std::string id = std::to_string(worker);
    auto counter = [&](const char* type) {
      return &metrics_.counter("kvmock_faults_injected_total", kFaultsInjectedHelp,
                               {{"worker_id", id}, {"type", type}});
    };
    entry.dropped = counter("event_drop");
    entry.duplicated = counter("event_duplicate");
    entry.delayed = counter("event_delay");
  }
  entry.faults = faults;
  if (faults.any()) any_event_faults_.store(true);
}

void KvEventPipeline::queue_or_hold(Channel& ch, std::vector<OutboundMessage> messages) {
  if (ch.held.empty()) {
    // Wait for room only while no channel holds events: once the outbox is known to be
    // full, every other worker's engine thread would otherwise stall here in turn.
    const auto wait =
        held_events_.load() == 0 ? options_.outbox_full_wait : std::chrono::milliseconds(0);
    const size_t queued = writer_.push_some(messages, wait);
    events_queued_->inc(queued);
    if (queued == messages.size()) return;
    messages.erase(messages.begin(), messages.begin() + static_cast<ptrdiff_t>(queued));
    Logger::instance().log_limited(
        LogSeverity::kWarn, "outbox-holding", "pipeline",
        "outbox full: holding mock-worker events in order; workers refuse new requests (503) "
        "until NATS takes events again (kvmock_pipeline_events_held)",
        std::chrono::seconds(5));
  }
  const size_t count = messages.size();
  ch.held.insert(ch.held.end(), std::make_move_iterator(messages.begin()),
                 std::make_move_iterator(messages.end()));
  held_events_.fetch_add(count);
  events_held_total_->inc(count);
  ticker_.poke();
  drain_held(ch, std::chrono::milliseconds(0));
}

size_t KvEventPipeline::drain_held(Channel& ch, std::chrono::milliseconds max_wait) {
  if (ch.held.empty()) return 0;
  const size_t queued = writer_.push_some(ch.held, max_wait);
  ch.held.erase(ch.held.begin(), ch.held.begin() + static_cast<ptrdiff_t>(queued));
  held_events_.fetch_sub(queued);
  events_queued_->inc(queued);
  return ch.held.size();
}

void KvEventPipeline::release_held(Channel& ch) {
  if (ch.held.empty()) return;
  const size_t count = ch.held.size();
  events_queued_->inc(writer_.push_all(ch.held));  // what does not fit is counted abandoned
  ch.held.clear();
  held_events_.fetch_sub(count);
}

size_t KvEventPipeline::publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) {
  Channel& ch = channel(worker, rank);
  const size_t received = events.size();
  size_t released = 0;
  const uint64_t now = now_ms();
  send(ch, [&](PublishingChannel& c) {
    if (ch.clear_first && !events.empty()) {
      ch.clear_first = false;
      if (!is_clear(events.front().event.data))
        events.insert(events.begin(), cleared_event(worker, rank));
    }
    ReleasedEvents out = c.push(std::move(events), now);
    released = out.events.size();
    return out;
  });
  if (received > released) events_deduplicated_->inc(received - released);
  if (options_.batching_timeout_ms > 0) ticker_.poke();
  return released;
}

void KvEventPipeline::publish_cleared(WorkerId worker, DpRank rank) {
  std::vector<RouterEvent> events;
  events.push_back(cleared_event(worker, rank));
  publish(worker, rank, std::move(events));
}

void KvEventPipeline::update_load(const ActiveLoad& load) {
  if (loads_.update(load, now_ms())) ticker_.poke();
}

std::optional<std::chrono::milliseconds> KvEventPipeline::tick() {
  const uint64_t now = now_ms();
  std::optional<uint64_t> next = loads_.tick(now);
  if (held_events_.load() > 0) {
    size_t left = 0;
    for (Channel* ch : all_channels()) {
      std::lock_guard sending(ch->send_mutex);
      left += drain_held(*ch, std::chrono::milliseconds(0));
    }
    // Held events wait for the publisher to make room: look again soon.
    if (left > 0) next = std::min(next.value_or(UINT64_MAX), now + kHeldRetryMs);
  }
  if (delayed_messages_.load() > 0) {
    for (Channel* ch : all_channels()) {
      std::lock_guard sending(ch->send_mutex);
      if (ch->delayed.empty()) continue;
      deliver(*ch, take_delayed(*ch, now, /*everything=*/false));
      if (!ch->delayed.empty()) {
        next = std::min(next.value_or(UINT64_MAX), ch->delayed.front().due_ms);
      }
    }
  }
  if (options_.batching_timeout_ms > 0) {
    for (Channel* ch : all_channels()) {
      send(*ch, [&](PublishingChannel& c) {
        ReleasedEvents due = c.poll(now);
        if (const auto deadline = c.next_deadline_ms(); deadline && (!next || *deadline < *next))
          next = deadline;
        return due;
      });
    }
  }
  if (!next) return std::nullopt;
  return std::chrono::milliseconds(*next > now ? *next - now : 0);
}

WorkerKvQueryResponse KvEventPipeline::query(const WorkerKvQueryRequest& request) {
  Channel* ch = find_channel(request.worker_id, request.dp_rank);
  if (!ch) {
    return QueryError{"no events for worker " + std::to_string(request.worker_id) + " dp_rank " +
                      std::to_string(request.dp_rank)};
  }
  std::lock_guard state(ch->state_mutex);
  return ch->events.query(request);
}

size_t KvEventPipeline::block_count(WorkerId worker, DpRank rank) {
  Channel* ch = find_channel(worker, rank);
  if (!ch) return 0;
  std::lock_guard state(ch->state_mutex);
  return ch->events.block_count();
}

EventId KvEventPipeline::last_event_id(WorkerId worker, DpRank rank) {
  Channel* ch = find_channel(worker, rank);
  if (!ch) return 0;
  std::lock_guard state(ch->state_mutex);
  return ch->events.last_event_id();
}

std::vector<ChannelProgress> KvEventPipeline::progress() {
  std::vector<ChannelProgress> out;
  std::shared_lock lock(channels_mutex_);
  out.reserve(channels_.size());
  for (auto& [key, ch] : channels_) {
    std::lock_guard state(ch->state_mutex);
    const EventId last = ch->events.last_event_id();
    if (last > 0) out.push_back(ChannelProgress{key.first, key.second, last});
  }
  return out;
}

}  // namespace kvmock
