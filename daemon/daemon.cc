#include "daemon/daemon.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "config/admin_token.h"
#include "config/config_loader.h"
#include "config/endpoint.h"
#include "config/fault_scenario.h"
#include "config/model_directory.h"
#include "core/events/subjects.h"
#include "daemon/dynamo_worker_role.h"
#include "daemon/fleet_scenario.h"
#include "daemon/load_driver.h"
#include "daemon/relayed_engine.h"
#include "daemon/worker_fleet.h"
#include "transport/log/logger.h"
#include "transport/log/thread_name.h"
#include "transport/time/system_clock.h"

namespace kvmock {
namespace {

constexpr int kIoThreads = 2;

NatsClientOptions nats_options(const NatsConfig& nats) {
  NatsClientOptions options;
  options.urls = split_nats_urls(nats.url);
  options.user = nats.user;
  options.password = nats.password;
  options.token = nats.token;
  options.nkey_seed_file = nats.nkey_seed_file;
  options.credentials_file = nats.credentials_file;
  options.tls_ca_file = nats.tls.ca_file;
  options.tls_cert_file = nats.tls.cert_file;
  options.tls_key_file = nats.tls.key_file;
  return options;
}

KvEventPipelineOptions pipeline_options(const Config& config) {
  KvEventPipelineOptions options;
  options.ns = config.nats.namespace_;
  options.component = config.nats.component;
  options.kv_subject = config.nats.kv_subject;
  options.jetstream = config.nats.event_plane == EventPlane::kJetStream;
  options.field_set.residency_domain = config.nats.field_set.residency_domain;
  options.field_set.start_position = config.nats.field_set.start_position;
  options.indexer_buffer_size = config.indexer.buffer_size;
  options.batching_timeout_ms = config.pipeline.batching_timeout_ms;
  options.debounce_ms = config.load_metrics.debounce_ms;
  options.heartbeat_ms = uint64_t{config.load_metrics.heartbeat_s} * 1000;
  options.outbox_full_wait = std::chrono::milliseconds(config.nats.outbox_full_wait_ms);
  return options;
}

NatsPublisherOptions publisher_options(const Config& config) {
  NatsPublisherOptions options;
  options.jetstream = config.nats.event_plane == EventPlane::kJetStream;
  options.stream.stream = jetstream_stream_name(config.nats.namespace_, config.nats.component);
  options.stream.subjects = {options.stream.stream + ".*"};
  options.stream.max_age_s = static_cast<int64_t>(config.nats.stream_max_age_s);
  options.stream.replicas = static_cast<int>(config.nats.stream_replicas);
  return options;
}

}  // namespace

Daemon::Daemon(Config config)
    : config_(std::move(config)), outbox_(config_.nats.outbox_capacity), zmq_(1) {}

Daemon::~Daemon() {
  if (work_) shutdown();
}

Result<bool> Daemon::start() {
  started_at_ = SystemClock::instance().steady_now();
  auto scenario = load_fault_scenario(config_);
  if (!scenario) return scenario.error();
  scenario_ = std::move(*scenario);
  auto nats = NatsClient::connect(nats_options(config_.nats));
  if (!nats) return nats.error();
  nats_ = std::move(*nats);
  nats_->on_state_change([this](NatsState state) {
    if (state == NatsState::kConnected) {
      log_info("nats", "connected");
    } else if (state == NatsState::kReconnecting && !closing_.load()) {
      log_warn("nats", "disconnected; events wait in the outbox while reconnecting");
    } else if (state == NatsState::kClosed && !closing_.load()) {
      log_error(
          "nats",
          "connection closed for good (" + nats_->close_reason() +
              "); nats.c stops retrying after repeated authentication failures: check the nats.* "
              "credentials. The daemon stays unready.");
    }
  });
  publisher_ = std::make_unique<NatsPublisher>(*nats_, outbox_, publisher_options(config_));
  pipeline_ = std::make_unique<KvEventPipeline>(outbox_, pipeline_options(config_), metrics_);
  queries_ = std::make_unique<IndexerQueryService>(
      *nats_, [this](const WorkerKvQueryRequest& request) { return pipeline_->query(request); },
      IndexerQueryServiceOptions{config_.nats.namespace_, pipeline_options(config_).field_set},
      metrics_);
  register_metrics();
  publisher_->start();
  pipeline_->start();

  work_.emplace(io_.get_executor());
  for (int i = 0; i < kIoThreads; ++i) {
    io_threads_.emplace_back([this, i] {
      name_this_thread("kvmock-io-" + std::to_string(i));
      io_.run();
    });
  }

  admin_.add_readiness_check({"startup", [this](std::string& reason) {
                                if (started_.load()) return true;
                                reason = "starting relays and workers";
                                return false;
                              }});
  if (auto admin = start_admin(); !admin) return admin.error();
  add_readiness_checks();
  if (auto producers = start_relays_and_workers(); !producers) return producers.error();
  started_ = true;
  return true;
}

Result<bool> Daemon::start_admin() {
  if (config_.admin.listen.empty()) return true;
  auto address = parse_host_port(config_.admin.listen);
  if (!address) return address.error();
  admin_work_.emplace(admin_io_.get_executor());
  admin_thread_ = std::thread([this] {
    name_this_thread("kvmock-admin");
    admin_io_.run();
  });
  auto token = resolve_admin_token(config_.admin);
  if (!token) return token.error();
  admin_.set_auth_token(*token);
  HttpServerOptions options;
  options.max_connections = config_.admin.max_connections;
  options.name = "admin";
  options.metrics = &metrics_;
  admin_server_ = std::make_unique<HttpServer>(
      admin_io_, [this](std::shared_ptr<HttpExchange> exchange) { admin_.handle(exchange); },
      options);
  auto port = admin_server_->listen(address->host, address->port);
  if (!port) return port.error();
  log_info("admin", "serving /metrics /health /ready on " + address->host + ":" +
                        std::to_string(*port) +
                        (token->empty() ? "" : " (bearer token required but for the probes)"));
  if (token->empty() && address->host != "127.0.0.1" && address->host != "::1") {
    log_warn("admin", "admin.listen " + config_.admin.listen +
                          " may be reachable from other hosts and no admin.auth_token is set");
  }
  return true;
}

void Daemon::add_readiness_checks() {
  admin_.add_readiness_check({"http", [this](std::string& reason) {
                                if (admin_server_ && !admin_server_->accepting(reason))
                                  return false;
                                return !started_.load() || !workers_ ||
                                       workers_->http_accepting(reason);
                              }});
  admin_.add_readiness_check({"nats", [this](std::string& reason) {
                                if (nats_->connected()) return true;
                                reason = nats_state_name(nats_->state());
                                const std::string why = nats_->close_reason();
                                if (!why.empty()) reason += ": " + why;
                                return false;
                              }});
  admin_.add_readiness_check({"jetstream", [this](std::string& reason) {
                                if (publisher_->stream_ready()) return true;
                                reason = "stream not created yet: " + publisher_->last_error();
                                return false;
                              }});
  admin_.add_readiness_check({"events", [this](std::string& reason) {
                                if (!pipeline_->outbox_full()) return true;
                                reason = "event outbox full: " +
                                         std::to_string(pipeline_->events_held()) +
                                         " mock-worker events held, new requests refused";
                                return false;
                              }});
  admin_.add_readiness_check({"discovery", [this](std::string& reason) {
                                // dynamo_ is set before started_ and read only after it.
                                return !started_.load() || !dynamo_ || dynamo_->registered(reason);
                              }});
}

Result<bool> Daemon::start_relays_and_workers() {
  for (const RelayConfig& relay_config : config_.relays) {
    open_worker(relay_config.worker_id, relay_config.dp_size, /*mock=*/false);
    auto relay = std::make_unique<RelayedEngine>(relay_config, zmq_, *pipeline_, outbox_, metrics_);
    auto started = relay->start();
    if (!started) return started.error();
    relays_.push_back(std::move(relay));
  }
  if (config_.workers.count > 0) {
    // The model directory is read once: its tokenizer and template serve every worker.
    std::optional<ModelDirectory> model;
    if (!config_.workers.model.path.empty()) {
      auto read = read_model_directory(config_.workers.model.path);
      if (!read) return make_error("config", "workers.model.path: " + read.error().message);
      model = std::move(*read);
    }
    std::vector<MockWorkerIdentity> identities =
        numbered_worker_identities(config_, model ? &*model : nullptr);
    if (config_.dynamo.discovery != DynamoDiscoveryKind::kNone) {
      auto backend = DynamoWorkerRole::make_backend(config_, metrics_);
      if (!backend) return backend.error();
      dynamo_ =
          std::make_unique<DynamoWorkerRole>(config_, std::move(*backend), io_, *nats_, metrics_);
      // The config rules refuse dynamo.discovery without workers.model.path.
      auto prepared = dynamo_->prepare(*model);
      if (!prepared) return prepared.error();
      identities = std::move(*prepared);
    }
    // Channels open before any engine runs, so each channel's first event is its Cleared
    // (the load driver starts with the fleet and would otherwise publish ahead of it).
    const uint32_t dp_size = std::max<uint32_t>(1, config_.workers.engine.dp_size);
    for (const MockWorkerIdentity& identity : identities) {
      open_worker(identity.worker_id, dp_size, /*mock=*/true);
    }
    workers_ = std::make_unique<WorkerFleet>(config_, std::move(identities), io_, *pipeline_,
                                             *nats_, zmq_, metrics_);
    if (dynamo_) {
      // A crashed Dynamo worker leaves discovery; its restart is a new instance (a new id,
      // with its own event channels), as a restarted Dynamo worker is.
      WorkerFleetHooks hooks;
      hooks.crashing = [this](size_t index, uint64_t) { dynamo_->crashed(index); };
      hooks.next_identity = [this](size_t index, const MockWorkerIdentity& previous) {
        return dynamo_->next_identity(index, previous);
      };
      hooks.open_channels = [this, dp_size](uint64_t worker_id) {
        open_worker(worker_id, dp_size, /*mock=*/true);
      };
      hooks.restarted = [this](size_t index, MockWorker& worker) {
        return dynamo_->restarted(index, worker, *pipeline_);
      };
      workers_->set_hooks(std::move(hooks));
    }
    auto started = workers_->start();
    if (!started) return started.error();
    if (dynamo_) {
      if (auto registered = dynamo_->start(*workers_, *pipeline_); !registered) {
        return registered.error();
      }
    }
    admin_.set_worker_control(workers_.get());
    if (!scenario_.steps.empty()) {
      scenario_player_ = std::make_unique<FleetScenario>(std::move(scenario_), config_, *workers_,
                                                         started_at_, metrics_);
      scenario_player_->start();
    }
    if (workers_->load_driver())
      status_thread_ = std::thread([this] {
        name_this_thread("kvmock-status");
        status_loop();
      });
  }
  // The query subjects must be known to the server before the daemon reports it started:
  // a router that asks at once gets an answer, not "no responders".
  queries_->wait_until_registered(std::chrono::seconds(2));
  return true;
}

void Daemon::status_loop() {
  const Clock& clock = SystemClock::instance();
  const auto start = clock.steady_now();
  uint64_t last_events = 0;
  std::unique_lock lock(status_mutex_);
  while (!status_wake_.wait_for(lock, std::chrono::seconds(1), [this] { return status_stop_; })) {
    const LoadWindow window = workers_->load_driver()->take_window();
    auto percentile = [&window](double p) {
      if (window.ttft_ms.empty()) return 0.0;
      const size_t i =
          std::min(window.ttft_ms.size() - 1,
                   static_cast<size_t>(p * static_cast<double>(window.ttft_ms.size())));
      return window.ttft_ms[i];
    };
    const uint64_t events = pipeline_->events_queued();
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::seconds>(clock.steady_now() - start).count();
    char line[320];
    std::snprintf(
        line, sizeof line,
        "[%4llds] requests %5.1f/s done, %llu in flight | TTFT p50 %6.1f ms p99 %6.1f ms | "
        "KV %5.1f%% | events %llu (+%llu/s) | NATS %s, outbox %zu",
        static_cast<long long>(elapsed), static_cast<double>(window.completed),
        static_cast<unsigned long long>(workers_->load_driver()->in_flight()), percentile(0.5),
        percentile(0.99), 100.0 * workers_->kv_usage(), static_cast<unsigned long long>(events),
        static_cast<unsigned long long>(events - last_events), nats_state_name(nats_->state()),
        outbox_.size());
    last_events = events;
    std::fprintf(stdout, "%s\n", line);
    std::fflush(stdout);
  }
}

int Daemon::shutdown() {
  if (!work_) return 0;
  const Clock& clock = SystemClock::instance();
  const auto deadline =
      clock.steady_now() + std::chrono::seconds(config_.shutdown.flush_deadline_s);
  // Every wait for outbox room ends with the grace period, so a full outbox with NATS
  // down cannot hold the engine threads (and this shutdown) past its deadlines.
  pipeline_->stop_waiting_at(clock.steady_now() + std::chrono::seconds(config_.shutdown.grace_s));
  admin_.set_shutting_down();
  // No crash or restart from the admin port while the workers go.
  admin_.set_worker_control(nullptr);
  {
    std::lock_guard lock(status_mutex_);
    status_stop_ = true;
  }
  status_wake_.notify_all();
  if (status_thread_.joinable()) status_thread_.join();
  // No step may act on workers that are stopping.
  if (scenario_player_) scenario_player_->stop();
  log_info("daemon", "shutting down: intake stopped, flushing events");
  // Out of discovery first, so Dynamo frontends stop routing to workers that are leaving.
  if (dynamo_) dynamo_->withdraw();
  for (auto& relay : relays_) relay->stop();
  if (workers_) workers_->stop(std::chrono::seconds(config_.shutdown.grace_s));
  pipeline_->stop();
  queries_->stop();
  const size_t unsent =
      publisher_->stop(std::max(deadline, clock.steady_now() + std::chrono::milliseconds(100))) +
      pipeline_->events_abandoned();
  if (admin_server_) admin_server_->stop();
  admin_work_.reset();
  admin_io_.stop();
  if (admin_thread_.joinable()) admin_thread_.join();
  work_.reset();
  io_.stop();
  for (std::thread& t : io_threads_) t.join();
  io_threads_.clear();
  dynamo_.reset();  // its request plane calls into the workers
  scenario_player_.reset();
  if (workers_) workers_.reset();
  relays_.clear();
  closing_ = true;
  nats_->close();
  // The shutdown report: the last event id of every channel. With nothing unsent, ids
  // 1..last of each channel are on NATS (tests/e2e/shutdown_under_load_test.cc reads it).
  uint64_t events = 0;
  const std::vector<ChannelProgress> channels = pipeline_->progress();
  for (const ChannelProgress& c : channels) {
    events += c.last_event_id;
    log_debug("daemon", "worker " + std::to_string(c.worker_id) + " dp_rank " +
                            std::to_string(c.dp_rank) + ": last event id " +
                            std::to_string(c.last_event_id));
  }
  if (unsent > 0) {
    log_error("daemon", std::to_string(unsent) +
                            " events could not be published to NATS before the " +
                            std::to_string(config_.shutdown.flush_deadline_s) + " s deadline");
    return 1;
  }
  // Core NATS is at-most-once: "published" is all the daemon can know (a subscriber that
  // was away missed those events and recovers through the indexer query). JetStream
  // acknowledged every event, so there they are stored.
  const bool jetstream = config_.nats.event_plane == EventPlane::kJetStream;
  log_info("daemon", std::string("stopped; every event was ") +
                         (jetstream ? "stored by JetStream (" : "published to NATS (") +
                         std::to_string(events) + " events on " + std::to_string(channels.size()) +
                         " channels)");
  return 0;
}

void Daemon::open_worker(WorkerId worker, uint32_t dp_size, bool mock) {
  // A new process numbers every channel from 1 again: its first event is a Cleared, which
  // tells a router to forget what an earlier process under this worker id had stored
  // (docs/wire-formats.md#event-ids). A mock worker can refuse work, so a full outbox
  // holds its events rather than stalling its engines; a relay cannot refuse its
  // engine's events and waits (docs/ARCHITECTURE.md#publishing-pipeline).
  pipeline_->add_worker(worker, dp_size,
                        WorkerChannelOptions{.clear_first = true, .hold_when_outbox_full = mock});
  // Not fatal: the worker still publishes; only its recovery queries go unanswered.
  if (auto served = queries_->serve(worker); !served) log_error("indexer", served.error().message);
}

void Daemon::register_metrics() {
  metrics_.gauge_callback("kvmock_nats_connected", "1 while connected to NATS.", {},
                          [this] { return nats_->connected() ? 1.0 : 0.0; });
  metrics_.counter_callback("kvmock_nats_reconnects_total", "Reconnections to NATS.", {},
                            [this] { return static_cast<double>(nats_->reconnects()); });
  metrics_.gauge_callback("kvmock_outbox_depth", "Events waiting for NATS.", {}, [this] {
    return static_cast<double>(outbox_.size() + publisher_->in_flight());
  });
  metrics_.gauge_callback("kvmock_outbox_capacity", "Outbox capacity (nats.outbox_capacity).", {},
                          [this] { return static_cast<double>(outbox_.capacity()); });
  metrics_.gauge_callback("kvmock_outbox_oldest_age_seconds", "Age of the oldest waiting event.",
                          {}, [this] { return outbox_.oldest_age_seconds(); });
  metrics_.counter_callback("kvmock_nats_published_total", "Messages handed to NATS.", {},
                            [this] { return static_cast<double>(publisher_->published()); });
  metrics_.counter_callback("kvmock_jetstream_acked_total", "JetStream publishes acknowledged.", {},
                            [this] { return static_cast<double>(publisher_->acked()); });
  metrics_.counter_callback("kvmock_jetstream_retries_total", "JetStream publishes re-sent.", {},
                            [this] { return static_cast<double>(publisher_->retries()); });
  metrics_.counter_callback("kvmock_nats_publish_errors_total", "Failed publish attempts.", {},
                            [this] { return static_cast<double>(publisher_->errors()); });
}

}  // namespace kvmock
