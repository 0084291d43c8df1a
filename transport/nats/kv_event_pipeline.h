// The publishing pipeline shared by relays and mock workers: router events in, messages
// for NATS out, through one stage per job:
//
//   publish() ─┐
//   tick()  ───┼─> PublishingChannel ──> EventPlaneEncoder ──> OutboxWriter ──> Outbox
//   stop()  ───┘   (batch, dedup, number,  (core NATS envelope   (blocks while full:
//                   apply to the indexer)   or JetStream JSON)    backpressure)
//   update_load() ──> LoadPublisher (debounce, heartbeat) ──> OutboxWriter
//
// A full outbox (NATS away longer than the outbox lasts) treats the two kinds of source
// differently. A relay's channel blocks its socket thread (backpressure reaches the
// engine's ZMQ buffers, which are bounded in bytes). A mock worker's channel
// (add_worker with hold_when_outbox_full) waits at most outbox_full_wait, then holds its
// encoded events in order and returns, so the worker's engines keep running the requests
// they have; while any events are held, outbox_full() is true and the workers refuse new
// requests (503) and report themselves unhealthy. tick() moves held events into the outbox
// as room appears. docs/ARCHITECTURE.md#publishing-pipeline.
//
// Per (worker_id, dp_rank) channel the ids are gap-free from 1 and every event is applied
// to the channel's local indexer before it is queued; query() reads those indexers (the
// IndexerQueryService serves it to routers). Timed work (batching timeouts, debounced
// loads, heartbeats) is done by tick(), which a thread runs between start() and stop(),
// and a test calls directly with a manual clock.
//
// Event faults (docs/faults.md#event-faults, set per worker by set_event_faults): after an
// event is applied to the indexer and encoded, its message may be dropped, queued twice
// (the same bytes) or held for the delay; delayed messages leave from tick(), in order.
//
// Threading: each channel has one source at a time (a relay socket thread or a worker's
// strand); publish() for different channels may run concurrently. Queries take only the
// channel's state lock.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/common/clock.h"
#include "core/events/router_event.h"
#include "core/pipeline/publishing_channel.h"
#include "core/pipeline/router_event_sink.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/event_plane_encoder.h"
#include "transport/nats/load_publisher.h"
#include "transport/nats/outbox.h"
#include "transport/nats/outbox_writer.h"
#include "transport/time/system_clock.h"
#include "transport/time/tick_thread.h"

namespace kvmock {

struct KvEventPipelineOptions {
  std::string ns = "dynamo";
  std::string component = "backend";
  std::string kv_subject = "kv-events";
  bool jetstream = false;
  RouterEventFieldSet field_set;
  size_t indexer_buffer_size = 1024;
  uint64_t batching_timeout_ms = 0;  // 0: every event is published on its own
  uint64_t debounce_ms = 1;
  uint64_t heartbeat_ms = 10000;
  // How long a mock worker's channel waits for outbox room before holding its events
  // (nats.outbox_full_wait_ms).
  std::chrono::milliseconds outbox_full_wait{1000};
};

// How add_worker() opens a channel.
struct WorkerChannelOptions {
  // The channel's first event is a Cleared (id 1), announcing this process to routers.
  bool clear_first = false;
  // A full outbox makes the channel hold its events instead of blocking its source.
  bool hold_when_outbox_full = false;
};

// How far one (worker, dp rank) channel has numbered its events.
struct ChannelProgress {
  WorkerId worker_id = 0;
  DpRank dp_rank = 0;
  EventId last_event_id = 0;  // every id 1..last_event_id has been queued
};

class KvEventPipeline final : public RouterEventSink {
 public:
  KvEventPipeline(Outbox& outbox, KvEventPipelineOptions options, MetricsRegistry& metrics,
                  const Clock& clock = SystemClock::instance());
  ~KvEventPipeline() override;
  KvEventPipeline(const KvEventPipeline&) = delete;
  KvEventPipeline& operator=(const KvEventPipeline&) = delete;

  // Starts the thread that runs tick().
  void start();
  // Flushes pending batches into the outbox and stops the tick thread. Idempotent.
  void stop();
  // Shutdown has started: from `deadline` on, sources no longer wait for outbox room;
  // what cannot be queued then is abandoned and counted (events_abandoned()).
  void stop_waiting_at(Clock::SteadyTime deadline) { writer_.stop_waiting_at(deadline); }
  uint64_t events_abandoned() const { return writer_.abandoned(); }

  // RouterEventSink.
  size_t publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) override;
  void publish_cleared(WorkerId worker, DpRank rank) override;
  void update_load(const ActiveLoad& load) override;
  void forget_load(WorkerId worker) override { loads_.forget(worker); }
  size_t block_count(WorkerId worker, DpRank rank) override;
  // The event faults of every channel of `worker` (current and later ones), from its next
  // event on. Also registers the worker's kvmock_faults_injected_total series of the event
  // fault types (event_drop, event_duplicate, event_delay), so they read 0 from the start.
  void set_event_faults(WorkerId worker, const EventFaults& faults) override;

  // Opens the channels of a configured worker (ranks 0..dp_size-1) before its first event,
  // so that a query about it gets the empty answer of its indexer, not an error. With
  // `clear_first`, each channel's first event is a Cleared (id 1) that announces this
  // process to routers; it goes out with the channel's first published event, so a
  // channel that never publishes leaves nothing unsent.
  void add_worker(WorkerId worker, uint32_t dp_size, WorkerChannelOptions channel_options = {});
  // RouterEventSink: true while some channel holds events the full outbox has no room for.
  bool outbox_full() const override { return held_events_.load() > 0; }
  uint64_t events_held() const { return held_events_.load(); }
  // Does the timed work due now (batches past their timeout, debounced loads, heartbeats);
  // returns the time until the next (nullopt: none known).
  std::optional<std::chrono::milliseconds> tick();

  // A router's recovery query against the channel's local indexer.
  WorkerKvQueryResponse query(const WorkerKvQueryRequest& request);
  EventId last_event_id(WorkerId worker, DpRank rank);
  // Every channel that has published an event, ordered by (worker, rank). After stop() and
  // a complete outbox flush this is exactly what reached NATS (the shutdown report).
  std::vector<ChannelProgress> progress();

  uint64_t events_queued() const { return events_queued_->value(); }

 private:
  // A message held back by event_delay_ms until `due_ms` (the pipeline's clock).
  struct DelayedMessage {
    uint64_t due_ms = 0;
    OutboundMessage message;
  };
  struct Channel {
    Channel(WorkerId worker, DpRank rank, const KvEventPipelineOptions& options);
    const WorkerId worker;
    const DpRank rank;
    std::mutex send_mutex;   // one sender at a time, so outbox order == id order
    std::mutex state_mutex;  // `events`, shared with queries
    PublishingChannel events;
    EventPublisherStamp stamp;          // guarded by send_mutex
    bool clear_first = false;           // guarded by send_mutex: a Cleared is owed before event 1
    bool hold_when_full = false;        // guarded by send_mutex
    std::vector<OutboundMessage> held;  // guarded by send_mutex: encoded, not yet queued
    // Guarded by send_mutex: messages held by event_delay_ms, oldest first (they go
    // before anything newer, so the order survives a change of the delay).
    std::deque<DelayedMessage> delayed;
  };
  // One worker's event faults and its counters of them.
  struct WorkerEventFaults {
    EventFaults faults;
    Counter* dropped = nullptr;
    Counter* duplicated = nullptr;
    Counter* delayed = nullptr;
  };

  Channel& channel(WorkerId worker, DpRank rank);
  Channel* find_channel(WorkerId worker, DpRank rank);
  std::vector<Channel*> all_channels();
  // The one path from a channel to the outbox: `release` takes events from the channel
  // (under its state lock); they are counted, encoded and queued (under its send lock).
  template <typename Release>
  void send(Channel& channel, Release&& release);
  // Queues `messages` behind what `channel` holds, holding what does not fit (the caller
  // holds the channel's send lock).
  void queue_or_hold(Channel& channel, std::vector<OutboundMessage> messages);
  // Moves held messages into the outbox while there is room; returns how many are left.
  size_t drain_held(Channel& channel, std::chrono::milliseconds max_wait);
  // Queues everything held, waiting as shutdown allows (the rest is abandoned, counted).
  void release_held(Channel& channel);
  // Queues `messages` for the outbox behind what the channel holds (the caller holds the
  // channel's send lock): held when the outbox is full for a mock worker, else waited for.
  void deliver(Channel& channel, std::vector<OutboundMessage> messages);
  // The worker's event faults, or nullopt when it has none.
  std::optional<WorkerEventFaults> event_faults(WorkerId worker);
  // Drops and repeats the messages of `events` (one each, in order) as `faults` draw;
  // `events_sent` is lowered by the events dropped.
  std::vector<OutboundMessage> apply_event_fates(const Channel& channel,
                                                 const WorkerEventFaults& faults,
                                                 const std::vector<RouterEvent>& events,
                                                 std::vector<OutboundMessage> messages,
                                                 size_t& events_sent);
  // Takes the delayed messages due by `now` (all of them with `everything`), in order
  // (the caller holds the channel's send lock).
  std::vector<OutboundMessage> take_delayed(Channel& channel, uint64_t now, bool everything);
  uint64_t now_ms() const;

  Outbox& outbox_;
  const KvEventPipelineOptions options_;
  const Clock& clock_;
  const Clock::SteadyTime epoch_;
  OutboxWriter writer_;
  const std::unique_ptr<EventPlaneEncoder> encoder_;
  LoadPublisher loads_;

  std::shared_mutex channels_mutex_;
  std::map<std::pair<WorkerId, DpRank>, std::unique_ptr<Channel>> channels_;

  TickThread ticker_;
  std::atomic<bool> stopped_{false};

  std::atomic<uint64_t> held_events_{0};
  // Messages waiting out event_delay_ms in some channel (tick() skips the channels at 0).
  std::atomic<uint64_t> delayed_messages_{0};
  std::mutex event_faults_mutex_;
  std::map<WorkerId, WorkerEventFaults> event_faults_;  // guarded by event_faults_mutex_
  std::atomic<bool> any_event_faults_{false};           // some worker has had event faults set
  MetricsRegistry& metrics_;
  Counter* events_queued_;
  Counter* events_held_total_;
  Counter* events_deduplicated_;
  Counter* indexer_rejections_;
};

}  // namespace kvmock
