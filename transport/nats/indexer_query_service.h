// Answers routers' recovery queries about the workers' local indexers on
// `namespace.{ns}.worker_kv_indexer_query.{worker_id}` (JSON request/reply).
//
// answer() is the transport-neutral part (request bytes in, reply bytes out); the NATS
// subscriptions are one way to reach it, and another request plane can call it too. Every
// query gets a reply a router can act on: an undecodable request gets an Error, and so
// does an answer larger than the transport can carry (NATS max_payload), where a dropped
// reply would leave the router waiting for its timeout.
//
// Threading: answer() may run on any thread; the query function must be thread-safe.
// serve() and stop() come from the owner's thread.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "core/common/result.h"
#include "core/events/router_event.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

struct IndexerQueryServiceOptions {
  std::string ns = "dynamo";
  RouterEventFieldSet field_set;
};

class IndexerQueryService {
 public:
  using Query = std::function<WorkerKvQueryResponse(const WorkerKvQueryRequest&)>;

  IndexerQueryService(NatsClient& client, Query query, IndexerQueryServiceOptions options,
                      MetricsRegistry& metrics);
  ~IndexerQueryService();
  IndexerQueryService(const IndexerQueryService&) = delete;
  IndexerQueryService& operator=(const IndexerQueryService&) = delete;

  // Subscribes `worker`'s query subject (idempotent). Called at start for every configured
  // worker, so a worker that has published nothing yet answers too.
  Result<bool> serve(WorkerId worker);
  // Waits (at most `timeout`) until the server has every subscription made so far, so a
  // query sent right after this returns is answered. Without a connection it returns at
  // once: the subscriptions are sent when nats.c connects.
  void wait_until_registered(std::chrono::milliseconds timeout);
  // Unsubscribes everything and waits for a reply in progress. Idempotent.
  void stop();

  // The JSON reply to the JSON `request`, at most `max_reply_bytes` long: an answer that
  // would be longer is replaced by an Error saying so. Counted in
  // kvmock_indexer_queries_total{result="ok"|"error"|"too_large"} (and "unsent" when the
  // NATS reply itself fails).
  std::string answer(std::string_view request,
                     size_t max_reply_bytes = std::numeric_limits<size_t>::max());

 private:
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self);
  void reply(natsMsg* msg);

  NatsClient& client_;
  const Query query_;
  const IndexerQueryServiceOptions options_;
  std::mutex subscriptions_mutex_;
  std::map<WorkerId, natsSubscription*> subscriptions_;
  // Held shared by each reply, exclusively by stop(): once stop() returns no reply runs.
  std::shared_mutex replying_;
  bool stopped_ = false;  // guarded by replying_
  Counter* ok_;
  Counter* errors_;
  Counter* too_large_;
  Counter* unsent_;
};

}  // namespace kvmock
