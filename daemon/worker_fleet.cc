#include "daemon/worker_fleet.h"

#include <future>
#include <shared_mutex>
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

// Passes a life's events and loads to the pipeline until the crash closes it; after
// close() returns no call of the life reaches the pipeline, so the restarted life's
// Cleared cannot be overtaken by an event of the dead one.
class WorkerFleet::EventGate final : public RouterEventSink {
 public:
  explicit EventGate(RouterEventSink& inner) : inner_(inner) {}

  size_t publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) override {
    std::shared_lock lock(mutex_);
    return open_ ? inner_.publish(worker, rank, std::move(events)) : 0;
  }
  void publish_cleared(WorkerId worker, DpRank rank) override {
    std::shared_lock lock(mutex_);
    if (open_) inner_.publish_cleared(worker, rank);
  }
  void update_load(const ActiveLoad& load) override {
    std::shared_lock lock(mutex_);
    if (open_) inner_.update_load(load);
  }
  size_t block_count(WorkerId worker, DpRank rank) override {
    return inner_.block_count(worker, rank);
  }
  bool outbox_full() const override { return inner_.outbox_full(); }
  // The worker's event faults reach the pipeline through here; a dead life's settings
  // must not replace those its successor (same id) set.
  void set_event_faults(WorkerId worker, const EventFaults& faults) override {
    std::shared_lock lock(mutex_);
    if (open_) inner_.set_event_faults(worker, faults);
  }
  // Waits for calls in progress (a publish may wait up to nats.outbox_full_wait_ms).
  void close() {
    std::unique_lock lock(mutex_);
    open_ = false;
  }

 private:
  RouterEventSink& inner_;
  std::shared_mutex mutex_;
  bool open_ = true;  // guarded by mutex_
};

// The load driver's worker i: whichever life slot i has now. A dead life refuses
// requests (not ready), so the driver's requests to a crashed worker fail as a router's
// would, and resume after the restart.
class WorkerFleet::SlotBackend final : public WorkerBackend {
 public:
  SlotBackend(WorkerFleet& fleet, size_t index) : fleet_(fleet), index_(index) {}

  Result<uint64_t> submit(GenerationRequest request, GenerationCallbacks callbacks) override {
    return current().submit(std::move(request), std::move(callbacks));
  }
  void cancel(uint64_t request_id) override { current().cancel(request_id); }
  void stop(uint64_t request_id) override { current().stop(request_id); }
  bool ready() const override { return current().ready(); }
  std::string not_ready_reason() const override { return current().not_ready_reason(); }
  uint64_t worker_id() const override { return current().worker_id(); }
  const std::string& model_name() const override { return current().model_name(); }
  std::span<const std::string> served_model_names() const override {
    return current().served_model_names();
  }
  const TextCodec& text_codec() const override { return current().text_codec(); }
  uint64_t max_model_len() const override { return current().max_model_len(); }
  std::string render_metrics() const override { return current().render_metrics(); }
  LoraAdapters* lora_adapters() override { return current().lora_adapters(); }
  WorkerFaults* faults() override { return current().faults(); }

 private:
  // Lives are never destroyed before the fleet, so the reference outlives the lock.
  MockWorker& current() const { return fleet_.worker(index_); }

  WorkerFleet& fleet_;
  const size_t index_;
};

WorkerFleet::Life::Life() = default;
WorkerFleet::Life::~Life() = default;

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
  profile_text_ = *profile;
  lateness_ = &metrics_.histogram(
      "kvmock_worker_pass_lateness_seconds",
      "How late a simulated pass ended against its modeled end (wall clock).", {},
      {0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.05, 0.1, 1.0});
  engine_time_.emplace(system_engine_time());
  const WorkersConfig& workers = config_.workers;
  const uint32_t dp_size = std::max<uint32_t>(1, workers.engine.dp_size);
  nats_intake_ = std::make_unique<NatsGenerateIntake>(nats_, config_.nats.namespace_,
                                                      config_.nats.component, metrics_);
  std::lock_guard control(control_mutex_);
  slots_.resize(identities_.size());
  for (uint32_t i = 0; i < identities_.size(); ++i) {
    Slot& slot = slots_[i];
    slot.identity = identities_[i];
    slot.http_port = workers.http_base_port == 0
                         ? uint16_t{0}
                         : static_cast<uint16_t>(workers.http_base_port + i);
    if (workers.zmq_events.enabled) {
      for (DpRank rank = 0; rank < dp_size; ++rank) {
        // The config rules guarantee both ranges fit below 65536 - base_port's only when the
        // PUB binds it: a connecting PUB has no port of its own.
        const uint64_t zmq_slot = dp_slot(i, dp_size, rank);
        const uint16_t port = workers.zmq_events.connect.empty()
                                  ? *port_for_index(workers.zmq_events.base_port, zmq_slot)
                                  : uint16_t{0};
        const uint16_t replay_port = *port_for_index(workers.zmq_events.replay_base_port, zmq_slot);
        const std::string who = "worker " + std::to_string(slot.identity.worker_id) + " dp rank " +
                                std::to_string(rank);
        // The config check rejected bad templates, so this cannot fail for a loaded config.
        ZmqTopicValues values;
        values.host = workers.http_host;
        values.port = slot.http_port;
        values.model = identities_[i].model_name;
        values.worker_id = slot.identity.worker_id;
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
        slot.zmq_outputs.push_back(output->get());
        zmq_outputs_.push_back(std::move(*output));
      }
    }
    auto life = begin_life(slot, slot.identity);
    if (!life) return life.error();
    slot.life = std::move(*life);
    slot.running = true;
    count_lives(slot);
  }
  engine_threads_.start();
  if (workers.load.enabled) {
    std::vector<WorkerBackend*> targets;
    for (size_t i = 0; i < slots_.size(); ++i) {
      slot_backends_.push_back(std::make_unique<SlotBackend>(*this, i));
      targets.push_back(slot_backends_.back().get());
    }
    load_driver_ =
        std::make_unique<LoadDriver>(workers.load, std::move(targets), SystemClock::instance());
    auto started = load_driver_->start();
    if (!started) return started.error();
  }
  const std::string ids = slots_.empty() ? "none"
                          : slots_.size() == 1
                              ? std::to_string(slots_.front().identity.worker_id)
                              : std::to_string(slots_.front().identity.worker_id) + ".." +
                                    std::to_string(slots_.back().identity.worker_id);
  log_info("workers", std::to_string(slots_.size()) + " mock workers (ids " + ids + ", dp_size " +
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
  if (!slots_.empty() && slots_.front().http_port != 0) {
    log_info("workers", "OpenAI API on " + workers.http_host + ":" +
                            std::to_string(slots_.front().life->http->port()) + ".." +
                            std::to_string(slots_.back().life->http->port()));
  }
  return true;
}

Result<std::unique_ptr<WorkerFleet::Life>> WorkerFleet::begin_life(
    Slot& slot, const MockWorkerIdentity& identity) {
  auto life = std::make_unique<Life>();
  life->gate = std::make_unique<EventGate>(sink_);
  life->worker = std::make_unique<MockWorker>(engine_threads_, config_, identity, profile_text_,
                                              *life->gate, metrics_, lateness_, *engine_time_,
                                              config_.workers.max_num_waiting);
  for (DpRank rank = 0; rank < slot.zmq_outputs.size(); ++rank) {
    life->worker->engine(rank).set_observer(slot.zmq_outputs[rank]);
  }
  if (!slot.zmq_outputs.empty()) {
    // Routers reading the engines' ZMQ streams see the same event faults as the NATS plane.
    life->worker->follow_event_faults(
        [outputs = slot.zmq_outputs, id = identity.worker_id](const EventFaults& faults) {
          for (VllmZmqEventOutput* output : outputs) output->set_event_faults(faults, id);
        });
  }
  auto served = nats_intake_->serve(*life->worker);
  if (!served) {
    // Kept, not destroyed: its engines and metric callbacks may already be in use.
    dead_.push_back(std::move(life));
    return served.error();
  }
  if (slot.http_port != 0) {
    auto listened = serve_http(*life, slot.http_port);
    if (!listened) {
      nats_intake_->unserve(*life->worker);
      dead_.push_back(std::move(life));
      return listened.error();
    }
  }
  return life;
}

// The config rules guarantee the port range fits below 65536.
Result<bool> WorkerFleet::serve_http(Life& life, uint16_t port) {
  MockWorker& worker = *life.worker;
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
  life.api = std::move(api);
  life.http = std::move(server);
  return true;
}

void WorkerFleet::count_lives(Slot& slot) {
  const MetricLabels labels{{"worker_id", std::to_string(slot.identity.worker_id)}};
  slot.crashes =
      &metrics_.counter("kvmock_worker_crashes_total",
                        "Crashes of the worker on purpose (admin port or scenario).", labels);
  slot.restarts = &metrics_.counter(
      "kvmock_worker_restarts_total",
      "Restarts of the worker after a crash (labelled with the id of the new life).", labels);
}

MockWorker& WorkerFleet::worker(size_t index) {
  std::lock_guard lock(control_mutex_);
  return *slots_.at(index).life->worker;
}

std::optional<size_t> WorkerFleet::find_slot(uint64_t worker_id) const {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].identity.worker_id == worker_id) return i;
  }
  return std::nullopt;
}

Result<bool> WorkerFleet::crash_worker(uint64_t worker_id) {
  std::lock_guard lock(control_mutex_);
  if (stopped_) return make_error("stopped", "the workers are shutting down");
  const std::optional<size_t> index = find_slot(worker_id);
  if (!index) return make_error("not_found", "no worker with id " + std::to_string(worker_id));
  if (!slots_[*index].running) {
    return make_error("conflict", "worker " + std::to_string(worker_id) + " is crashed already");
  }
  return crash_locked(*index);
}

Result<bool> WorkerFleet::crash_locked(size_t index) {
  Slot& slot = slots_[index];
  Life& life = *slot.life;
  MockWorker& worker = *life.worker;
  const uint64_t id = slot.identity.worker_id;
  // Out of discovery first, as a dead process's lease goes: frontends stop routing here.
  if (hooks_.crashing) hooks_.crashing(index, id);
  worker.set_ready(false);
  nats_intake_->unserve(worker);
  // Connection refused from here on; open connections are cut, not answered.
  if (life.http && !life.http->stop_and_wait(std::chrono::seconds(2))) {
    log_warn("workers", "worker " + std::to_string(id) + ": HTTP port still closing");
  }
  // Nothing of this life reaches a router any more: no KV event, no load.
  life.gate->close();
  sink_.forget_load(id);  // not even the heartbeat repeats its last load
  const uint64_t cut = worker.in_flight();
  worker.cancel_all();
  slot.running = false;
  slot.crashes->inc();
  log_warn("workers", "worker " + std::to_string(id) + " crashed on purpose (" +
                          std::to_string(cut) + " requests cut)");
  return true;
}

Result<uint64_t> WorkerFleet::restart_worker(uint64_t worker_id) {
  std::lock_guard lock(control_mutex_);
  if (stopped_) return make_error("stopped", "the workers are shutting down");
  const std::optional<size_t> index = find_slot(worker_id);
  if (!index) return make_error("not_found", "no worker with id " + std::to_string(worker_id));
  Slot& slot = slots_[*index];
  if (slot.running) {
    if (auto crashed = crash_locked(*index); !crashed) return crashed.error();
  }
  // The engines of the dead life let go of the ZMQ outputs before the new ones take them.
  MockWorker& dead = *slot.life->worker;
  for (DpRank rank = 0; rank < slot.zmq_outputs.size(); ++rank) {
    auto detached = std::make_shared<std::promise<void>>();
    std::future<void> done = detached->get_future();
    dead.engine(rank).detach_observer([detached] { detached->set_value(); });
    if (done.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      return make_error("busy", "worker " + std::to_string(worker_id) +
                                    ": its engine did not stop in time; try again");
    }
  }
  MockWorkerIdentity identity = slot.identity;
  if (hooks_.next_identity) {
    auto next = hooks_.next_identity(*index, slot.identity);
    if (!next) return next.error();
    identity = std::move(*next);
  }
  const bool new_id = identity.worker_id != slot.identity.worker_id;
  if (new_id && hooks_.open_channels) hooks_.open_channels(identity.worker_id);
  auto life = begin_life(slot, identity);
  if (!life) {
    // The new instance never served: out of discovery with it (the slot stays crashed
    // under its old id, and the next restart allocates another).
    if (new_id && hooks_.crashing) hooks_.crashing(*index, identity.worker_id);
    log_error("workers", "worker " + std::to_string(worker_id) +
                             " could not restart: " + life.error().message);
    return life.error();
  }
  // The new life's engines start empty: a Cleared on each channel tells routers to forget
  // the old blocks, numbered after the channel's last id (docs/wire-formats.md#event-ids).
  for (DpRank rank = 0; rank < (*life)->worker->dp_size(); ++rank) {
    sink_.publish_cleared(identity.worker_id, rank);
  }
  dead_.push_back(std::move(slot.life));
  slot.life = std::move(*life);
  slot.identity = identity;
  slot.running = true;
  if (new_id) {
    count_lives(slot);
    // The old instance id never comes back: its gauges would read the dead life forever.
    metrics_.remove_callbacks("worker_id", std::to_string(worker_id));
  }
  if (hooks_.restarted) {
    if (auto restarted = hooks_.restarted(*index, *slot.life->worker); !restarted) {
      log_error("workers", "worker " + std::to_string(identity.worker_id) +
                               " restarted but not registered: " + restarted.error().message);
    }
  }
  slot.restarts->inc();
  log_info("workers", "worker " + std::to_string(worker_id) + " restarted" +
                          (new_id ? " as " + std::to_string(identity.worker_id) : std::string()) +
                          " with an empty KV cache");
  return identity.worker_id;
}

std::vector<WorkerStatus> WorkerFleet::workers() const {
  std::lock_guard lock(control_mutex_);
  std::vector<WorkerStatus> statuses;
  for (const Slot& slot : slots_) {
    statuses.push_back(WorkerStatus{slot.identity.worker_id, slot.running, slot.http_port});
  }
  return statuses;
}

WorkerFaults* WorkerFleet::faults(uint64_t worker_id) {
  std::lock_guard lock(control_mutex_);
  const std::optional<size_t> index = find_slot(worker_id);
  if (!index || !slots_[*index].running) return nullptr;
  return slots_[*index].life->worker->faults();
}

Result<WorkerStatus> WorkerFleet::crash(uint64_t worker_id) {
  auto crashed = crash_worker(worker_id);
  if (!crashed) return crashed.error();
  std::lock_guard lock(control_mutex_);
  const std::optional<size_t> index = find_slot(worker_id);
  return WorkerStatus{worker_id, false, index ? slots_[*index].http_port : uint16_t{0}};
}

Result<WorkerStatus> WorkerFleet::restart(uint64_t worker_id) {
  auto restarted = restart_worker(worker_id);
  if (!restarted) return restarted.error();
  std::lock_guard lock(control_mutex_);
  const std::optional<size_t> index = find_slot(*restarted);
  return WorkerStatus{*restarted, true, index ? slots_[*index].http_port : uint16_t{0}};
}

bool WorkerFleet::http_accepting(std::string& reason) const {
  // A crash or restart holds the lock for up to seconds (closing a port, discovery); /ready
  // must not wait for it, and a worker crashed on purpose is no accept failure.
  std::unique_lock lock(control_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return true;
  for (const Slot& slot : slots_) {
    if (slot.running && slot.life->http && !slot.life->http->accepting(reason)) return false;
  }
  return true;
}

uint16_t WorkerFleet::http_port(size_t index) const {
  std::lock_guard lock(control_mutex_);
  return index < slots_.size() ? slots_[index].http_port : 0;
}

double WorkerFleet::kv_usage() const {
  std::lock_guard lock(control_mutex_);
  double active = 0, total = 0;
  for (const Slot& slot : slots_) {
    if (!slot.running) continue;
    const MockWorker& worker = *slot.life->worker;
    for (DpRank rank = 0; rank < worker.dp_size(); ++rank) {
      const EngineActorStats stats = worker.engine(rank).stats();
      active += static_cast<double>(stats.engine.active_blocks);
      total += static_cast<double>(stats.engine.total_blocks);
    }
  }
  return total > 0 ? active / total : 0;
}

void WorkerFleet::stop(std::chrono::seconds grace) {
  // The lives running now; none changes once stopped_ is set, so the waits below run
  // without the lock (readiness takes it, and must answer during the grace period).
  std::vector<Life*> running;
  {
    std::lock_guard lock(control_mutex_);
    if (stopped_) return;
    stopped_ = true;  // no crash or restart from here on
    for (Slot& slot : slots_) {
      if (slot.running) running.push_back(slot.life.get());
    }
  }
  // Outside the lock: the driver's thread takes it to find the current lives.
  if (load_driver_) load_driver_->stop();
  for (Life* life : running) life->worker->set_ready(false);
  if (nats_intake_) nats_intake_->stop();
  // Real time: the waits below sleep.
  const Clock& clock = SystemClock::instance();
  const auto deadline = clock.steady_now() + grace;
  auto in_flight = [&running] {
    uint64_t total = 0;
    for (Life* life : running) total += life->worker->in_flight();
    return total;
  };
  while (in_flight() > 0 && clock.steady_now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (const uint64_t left = in_flight(); left > 0) {
    log_warn("workers", "grace period over: cancelling " + std::to_string(left) + " requests");
    for (Life* life : running) life->worker->cancel_all();
    const auto cancel_deadline = clock.steady_now() + std::chrono::seconds(1);
    while (in_flight() > 0 && clock.steady_now() < cancel_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  for (Life* life : running) {
    if (life->http) life->http->stop();
  }
  for (auto& output : zmq_outputs_) output->stop();
  engine_threads_.stop();
}

}  // namespace kvmock
