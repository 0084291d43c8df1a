// The publishing pipeline shared by relays and mock workers: router events in, and out
// to NATS with everything a router needs.
//
// Per (worker_id, dp_rank) channel: optional adjacent-event batching, reference-counted
// de-duplication, gap-free event ids from 1, the local indexer (radix tree + ring of the
// last `indexer_buffer_size` events; every event is applied before it is published), and
// the envelope sequence. Events are encoded for the configured plane and queued in the
// shared Outbox in order; when the outbox is full publish() blocks (backpressure).
//
// The local indexer answers recovery queries on
// `namespace.{ns}.worker_kv_indexer_query.{worker_id}` (JSON request/reply), and
// ActiveLoad is debounced and re-sent as a heartbeat on `namespace.{ns}.kv_metrics`.
//
// Threading: each channel has one source at a time (a relay socket thread or a worker's
// strand); publish() for different channels may run concurrently. Queries arrive on
// nats.c's threads and take only the channel's state lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/events/router_event.h"
#include "core/indexer/local_indexer.h"
#include "core/pipeline/load_debouncer.h"
#include "core/pipeline/router_event_sink.h"
#include "core/pipeline/worker_event_stream.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/nats_client.h"
#include "transport/nats/outbox.h"

namespace kvmock {

struct KvEventPipelineOptions {
  std::string ns = "dynamo";
  std::string component = "backend";
  std::string kv_subject = "kv_events";
  bool jetstream = false;
  RouterEventFieldSet field_set;
  size_t indexer_buffer_size = 1024;
  uint64_t batching_timeout_ms = 0;  // 0: every event is published on its own
  uint64_t debounce_ms = 1;
  uint64_t heartbeat_ms = 10000;
  bool serve_queries = true;
};

// How far one (worker, dp rank) channel has numbered its events.
struct ChannelProgress {
  WorkerId worker_id = 0;
  DpRank dp_rank = 0;
  EventId last_event_id = 0;  // every id 1..last_event_id has been queued
};

class KvEventPipeline : public RouterEventSink {
 public:
  KvEventPipeline(NatsClient& client, Outbox& outbox, KvEventPipelineOptions options,
                  MetricsRegistry& metrics);
  ~KvEventPipeline();
  KvEventPipeline(const KvEventPipeline&) = delete;
  KvEventPipeline& operator=(const KvEventPipeline&) = delete;

  // Starts the timer thread (batching timeouts, load debounce and heartbeats).
  void start();
  // Flushes pending batches and the latest loads into the outbox; stops the timer and the
  // query subscriptions. Idempotent.
  void stop();

  // Publishes events (ids are assigned here; the ones given are ignored) for one
  // (worker, rank). Returns the number of events queued after batching and dedup.
  size_t publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) override;
  // Publishes a Cleared for (worker, rank): the engine restarted.
  void publish_cleared(WorkerId worker, DpRank rank) override;
  // Records a load sample; publication is debounced.
  void update_load(const ActiveLoad& load) override;

  // The same answer the NATS query service gives.
  WorkerKvQueryResponse query(const WorkerKvQueryRequest& request);
  size_t block_count(WorkerId worker, DpRank rank);
  EventId last_event_id(WorkerId worker, DpRank rank);
  // Every channel that has seen an event, ordered by (worker, rank). After stop() and a
  // complete outbox flush this is exactly what reached NATS (the shutdown report).
  std::vector<ChannelProgress> progress();

  uint64_t events_queued() const { return events_queued_->value(); }

 private:
  struct Channel;
  Channel& channel(WorkerId worker, DpRank rank);
  Channel* find_channel(WorkerId worker, DpRank rank);
  // Encodes and queues numbered events; called with the channel's send lock held.
  void enqueue(Channel& channel, std::vector<RouterEvent>& numbered);
  void enqueue_load(const ActiveLoad& load);
  void push_blocking(OutboundMessage message);
  void push_all_blocking(std::vector<OutboundMessage>& messages);
  void note_backpressure();
  void subscribe_queries(WorkerId worker);
  static void on_query(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);
  void handle_query(natsMsg* msg);
  void timer_loop();
  void poke_timer();
  uint64_t now_ms() const;

  NatsClient& client_;
  Outbox& outbox_;
  const KvEventPipelineOptions options_;
  const std::shared_ptr<const std::string> events_subject_;
  const std::shared_ptr<const std::string> metrics_subject_;
  const std::chrono::steady_clock::time_point epoch_;

  std::shared_mutex channels_mutex_;
  std::map<std::pair<WorkerId, DpRank>, std::unique_ptr<Channel>> channels_;
  std::map<WorkerId, natsSubscription*> query_subscriptions_;

  std::mutex load_mutex_;
  LoadDebouncer debouncer_;
  // When the timer thread next looks at the debouncer (UINT64_MAX: not before a change).
  // update_load wakes it only for a change due earlier: with a thousand engines the
  // loads change thousands of times a second, and a wake-up per change (each an O(ranks)
  // poll) cost a fifth of a core.
  uint64_t load_wake_ms_ = 0;
  // debouncer_.counters().updates when the timer thread last looked (timer thread only).
  uint64_t load_updates_seen_ = 0;
  uint64_t load_publisher_id_;
  uint64_t load_sequence_ = 0;

  std::mutex timer_mutex_;
  std::condition_variable timer_wake_;
  bool timer_poked_ = false;  // guarded by timer_mutex_; a wake-up that must not be lost
  std::thread timer_;
  std::atomic<bool> stopping_{false};

  Counter* events_queued_;
  Counter* events_deduplicated_;
  Counter* indexer_rejections_;
  Counter* loads_queued_;
  Counter* queries_ok_;
  Counter* queries_bad_;
  Counter* backpressure_waits_;
};

// A random publisher id that fits in a JSON-safe integer (< 2^53), as Dynamo masks it.
uint64_t random_publisher_id();

}  // namespace kvmock
