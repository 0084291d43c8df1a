#include "daemon/worker_fleet.h"

#include <thread>

#include "config/timing_profile.h"
#include "config/zmq_topic.h"
#include "core/common/ports.h"
#include "daemon/load_driver.h"
#include "daemon/vllm_zmq_event_output.h"
#include "transport/log/logger.h"
#include "transport/nats/generate_intake.h"
#include "transport/time/system_clock.h"

namespace kvmock {
namespace {

// No more threads than engines: an idle thread would only cost a stack.
size_t engine_thread_count(const WorkersConfig& workers) {
  const size_t engines =
      std::max<size_t>(1, size_t{workers.count} * std::max<uint32_t>(1, workers.engine.dp_size));
  const size_t wanted = workers.threads > 0 ? workers.threads : usable_cpus();
  return std::min(wanted, engines);
}

}  // namespace

std::vector<MockWorkerIdentity> numbered_worker_identities(const Config& config,
                                                           const ModelDirectory* model) {
  const MockWorkerIdentity served = served_model_identity(config, model);
  std::vector<MockWorkerIdentity> identities(config.workers.count, served);
  for (uint32_t i = 0; i < config.workers.count; ++i) {
    identities[i].worker_id = config.workers.worker_id_base + i;
  }
  return identities;
}

WorkerFleet::WorkerFleet(const Config& config, std::vector<MockWorkerIdentity> identities,
                         boost::asio::io_context& io, RouterEventSink& sink, NatsClient& nats,
                         zmq::context_t& zmq, MetricsRegistry& metrics)
    : config_(config),
      identities_(std::move(identities)),
      io_(io),
      sink_(sink),
      nats_(nats),
      zmq_(zmq),
      metrics_(metrics),
      engine_threads_(engine_thread_count(config.workers)) {}

WorkerFleet::~WorkerFleet() { stop(std::chrono::seconds(0)); }

Result<bool> WorkerFleet::start() {
  auto profile = load_timing_profile(config_);
  if (!profile) return profile.error();
  auto timing = make_timing_model(config_.workers.engine.timing, *profile);
  if (!timing) {
    return make_error("config", "workers.engine.timing: " + timing.error().message);
  }
  Histogram& lateness = metrics_.histogram(
      "kvmock_worker_pass_lateness_seconds",
      "How late a simulated pass ended against its modeled end (wall clock).", {},
      {0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.05, 0.1, 1.0});
  const EngineTime time = system_engine_time();
  const WorkersConfig& workers = config_.workers;
  const uint32_t dp_size = std::max<uint32_t>(1, workers.engine.dp_size);
  nats_intake_ = std::make_unique<NatsGenerateIntake>(nats_, config_.nats.namespace_,
                                                      config_.nats.component, metrics_);
  for (uint32_t i = 0; i < identities_.size(); ++i) {
    auto worker =
        std::make_unique<MockWorker>(engine_threads_, config_, identities_[i], *profile, sink_,
                                     metrics_, &lateness, time, workers.max_num_waiting);
    if (workers.zmq_events.enabled) {
      for (DpRank rank = 0; rank < dp_size; ++rank) {
        // The config rules guarantee both ranges fit below 65536 - base_port's only when the
        // PUB binds it: a connecting PUB has no port of its own.
        const uint64_t slot = dp_slot(i, dp_size, rank);
        const uint16_t port = workers.zmq_events.connect.empty()
                                  ? *port_for_index(workers.zmq_events.base_port, slot)
                                  : uint16_t{0};
        const uint16_t replay_port = *port_for_index(workers.zmq_events.replay_base_port, slot);
        const std::string who =
            "worker " + std::to_string(worker->worker_id()) + " dp rank " + std::to_string(rank);
        // The config check rejected bad templates, so this cannot fail for a loaded config.
        ZmqTopicValues values;
        values.host = workers.http_host;
        values.port =
            workers.http_base_port == 0 ? 0 : static_cast<uint16_t>(workers.http_base_port + i);
        values.model = identities_[i].model_name;
        values.worker_id = worker->worker_id();
        values.dp_rank = rank;
        auto topic = expand_zmq_topic(workers.zmq_events.topic, values);
        if (!topic) {
          return make_error("config", who + ": workers.zmq_events.topic " + topic.error().message);
        }
        auto output = VllmZmqEventOutput::start(zmq_, workers.zmq_events, workers.engine.block_size,
                                                rank, port, replay_port, std::move(*topic));
        if (!output) {
          return make_error(output.error().reason, who + " ZMQ events: " + output.error().message);
        }
        if ((*output)->connects()) {
          // One line per engine: when a router misses a pod, this says where it was sent.
          log_info("workers", who + ": KV events PUB connects to " + (*output)->endpoint() +
                                  ", topic \"" + (*output)->topic() + "\"");
        }
        worker->engine(rank).set_observer(output->get());
        zmq_outputs_.push_back(std::move(*output));
      }
    }
    auto served = nats_intake_->serve(*worker);
    if (!served) return served.error();
    if (workers.http_base_port != 0) {
      auto listened = serve_http(*worker, static_cast<uint16_t>(workers.http_base_port + i));
      if (!listened) return listened.error();
    }
    workers_.push_back(std::move(worker));
  }
  engine_threads_.start();
  if (workers.load.enabled) {
    std::vector<WorkerBackend*> targets;
    for (auto& worker : workers_) targets.push_back(worker.get());
    load_driver_ =
        std::make_unique<LoadDriver>(workers.load, std::move(targets), SystemClock::instance());
    auto started = load_driver_->start();
    if (!started) return started.error();
  }
  const std::string ids = workers_.empty() ? "none"
                          : workers_.size() == 1
                              ? std::to_string(workers_.front()->worker_id())
                              : std::to_string(workers_.front()->worker_id()) + ".." +
                                    std::to_string(workers_.back()->worker_id());
  log_info("workers", std::to_string(workers_.size()) + " mock workers (ids " + ids + ", dp_size " +
                          std::to_string(dp_size) + ", block_size " +
                          std::to_string(workers.engine.block_size) + ") on " +
                          std::to_string(engine_threads_.size()) + " engine threads");
  if (!zmq_outputs_.empty() && !zmq_outputs_.front()->connects()) {
    const std::string replay = zmq_outputs_.front()->replay_endpoint().empty()
                                   ? std::string("no replay")
                                   : "replay from " + zmq_outputs_.front()->replay_endpoint();
    log_info("workers", "KV events PUB bound from " + zmq_outputs_.front()->endpoint() + " (" +
                            std::to_string(zmq_outputs_.size()) + " sockets, " + replay +
                            "), first topic \"" + zmq_outputs_.front()->topic() + "\"");
  }
  if (!http_servers_.empty()) {
    log_info("workers", "OpenAI API on " + workers.http_host + ":" +
                            std::to_string(http_servers_.front()->port()) + ".." +
                            std::to_string(http_servers_.back()->port()));
  }
  return true;
}

// The config rules guarantee the port range fits below 65536.
Result<bool> WorkerFleet::serve_http(MockWorker& worker, uint16_t port) {
  auto api = std::make_unique<OpenAiServer>(worker);
  HttpServerOptions options;
  options.max_connections = config_.http.max_connections;
  options.max_body_bytes = config_.http.max_request_body_bytes;
  options.name = "openai";
  options.metrics = &metrics_;
  auto server = std::make_unique<HttpServer>(
      io_, [api = api.get()](std::shared_ptr<HttpExchange> exchange) { api->handle(exchange); },
      options);
  auto bound = server->listen(config_.workers.http_host, port);
  if (!bound) {
    return make_error(bound.error().reason, "worker " + std::to_string(worker.worker_id()) +
                                                " HTTP: " + bound.error().message);
  }
  openai_apis_.push_back(std::move(api));
  http_servers_.push_back(std::move(server));
  return true;
}

bool WorkerFleet::http_accepting(std::string& reason) const {
  for (const auto& server : http_servers_) {
    if (!server->accepting(reason)) return false;
  }
  return true;
}

uint16_t WorkerFleet::http_port(size_t index) const {
  return index < http_servers_.size() ? http_servers_[index]->port() : 0;
}

double WorkerFleet::kv_usage() const {
  double active = 0, total = 0;
  for (const auto& worker : workers_) {
    for (DpRank rank = 0; rank < worker->dp_size(); ++rank) {
      const EngineActorStats stats = worker->engine(rank).stats();
      active += static_cast<double>(stats.engine.active_blocks);
      total += static_cast<double>(stats.engine.total_blocks);
    }
  }
  return total > 0 ? active / total : 0;
}

void WorkerFleet::stop(std::chrono::seconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (load_driver_) load_driver_->stop();
  for (auto& worker : workers_) worker->set_ready(false);
  if (nats_intake_) nats_intake_->stop();
  // Real time: the waits below sleep.
  const Clock& clock = SystemClock::instance();
  const auto deadline = clock.steady_now() + grace;
  auto in_flight = [this] {
    uint64_t total = 0;
    for (auto& worker : workers_) total += worker->in_flight();
    return total;
  };
  while (in_flight() > 0 && clock.steady_now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (const uint64_t left = in_flight(); left > 0) {
    log_warn("workers", "grace period over: cancelling " + std::to_string(left) + " requests");
    for (auto& worker : workers_) worker->cancel_all();
    const auto cancel_deadline = clock.steady_now() + std::chrono::seconds(1);
    while (in_flight() > 0 && clock.steady_now() < cancel_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  for (auto& server : http_servers_) server->stop();
  for (auto& output : zmq_outputs_) output->stop();
  engine_threads_.stop();
}

}  // namespace kvmock
