// The composition root: the one place that knows how the parts are wired. It builds the
// NATS connection, outbox, publisher and pipeline, the relays, the admin server (and,
// when configured, the mock workers), runs until a signal, and shuts down in order:
// readiness off, intake stopped, in-flight work finished or cancelled, outbox flushed
// within the deadline.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "config/config.h"
#include "core/common/clock.h"
#include "core/faults/scenario.h"
#include "transport/http/admin_endpoints.h"
#include "transport/http/http_server.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/indexer_query_service.h"
#include "transport/nats/kv_event_pipeline.h"
#include "transport/nats/nats_client.h"
#include "transport/nats/nats_publisher.h"
#include "transport/nats/outbox.h"

namespace kvmock {

class DynamoWorkerRole;
class FleetScenario;
class RelayedEngine;
class WorkerFleet;

class Daemon {
 public:
  explicit Daemon(Config config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts every component. Error (the daemon exits 2) on a bad endpoint or a port that
  // cannot be bound.
  Result<bool> start();
  // Orderly shutdown; returns the process exit status (0 when everything was flushed).
  int shutdown();

  MetricsRegistry& metrics() { return metrics_; }
  KvEventPipeline& pipeline() { return *pipeline_; }
  uint16_t admin_port() const { return admin_server_ ? admin_server_->port() : 0; }

 private:
  void register_metrics();
  // Opens the channels of a configured worker and serves its indexer queries, so a worker
  // that has published nothing yet answers them too.
  // `mock`: a mock worker (its channels hold events while the outbox is full), else a relay.
  void open_worker(WorkerId worker, uint32_t dp_size, bool mock);
  // The parts of start(), in order.
  Result<bool> start_admin();
  void add_readiness_checks();
  Result<bool> start_relays_and_workers();
  // Prints one line per second while the built-in load driver runs (the demo).
  void status_loop();

  Config config_;
  MetricsRegistry metrics_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  // The admin port has its own thread: rendering /metrics for 1,000 workers takes half a
  // second, which on a worker I/O thread would take that thread from the workers' passes
  // (on two cores the render competes for CPU either way).
  boost::asio::io_context admin_io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      admin_work_;
  std::thread admin_thread_;
  std::unique_ptr<NatsClient> nats_;
  Outbox outbox_;
  std::unique_ptr<NatsPublisher> publisher_;
  std::unique_ptr<KvEventPipeline> pipeline_;
  std::unique_ptr<IndexerQueryService> queries_;
  zmq::context_t zmq_;
  std::vector<std::unique_ptr<RelayedEngine>> relays_;
  std::unique_ptr<WorkerFleet> workers_;
  // Set when dynamo.discovery is on: the workers as Dynamo instances.
  std::unique_ptr<DynamoWorkerRole> dynamo_;
  // faults.scenario, read first thing in start() (a bad file starts nothing) and played from
  // when the workers serve, its times counted from started_at_. After workers_: it acts on
  // them, so it goes first.
  FaultScenario scenario_;
  Clock::SteadyTime started_at_{};
  std::unique_ptr<FleetScenario> scenario_player_;
  AdminEndpoints admin_{metrics_};
  std::unique_ptr<HttpServer> admin_server_;
  std::thread status_thread_;
  std::mutex status_mutex_;
  std::condition_variable status_wake_;
  bool status_stop_ = false;
  std::atomic<bool> closing_{false};  // NATS is being closed on purpose
  // start() finished: every relay follows its engine and every worker port listens. The
  // admin server answers before that, so /ready must wait for it.
  std::atomic<bool> started_{false};
};

// `kvmockd run --config FILE [--set KEY=VALUE ...] [--log-format text|json] [--log-level L]`
int run_daemon_command(int argc, char** argv);

}  // namespace kvmock
