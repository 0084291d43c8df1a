#include "daemon/dynamo_worker_role.h"

#include <chrono>

#include "config/endpoint.h"
#include "core/dynamo/discovery_records.h"
#include "core/dynamo/model_card.h"
#include "daemon/worker_fleet.h"
#include "transport/dynamo/etcd_discovery.h"
#include "transport/dynamo/file_discovery.h"
#include "transport/dynamo/worker_endpoints.h"
#include "transport/etcd/etcd_client.h"
#include "transport/log/logger.h"
#include "transport/log/thread_name.h"
#include "transport/net/local_address.h"
#include "transport/time/system_clock.h"

namespace kvmock {
namespace {

// Dynamo's runtime refreshes a lease at half its 10 s TTL; ticking ten times a second
// keeps every deadline of the backends well inside their margins.
constexpr std::chrono::milliseconds kKeepAliveTick{100};

// The file backend's root when dynamo.file_root is empty: $TMPDIR/dynamo_store_kv, as
// Dynamo's own processes choose it.
std::string file_root(const Config& config) {
  if (!config.dynamo.file_root.empty()) return config.dynamo.file_root;
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/dynamo_store_kv";
}

dynamo::DynamoRelease release_of(DynamoReleaseKind kind) {
  return kind == DynamoReleaseKind::k1_1 ? dynamo::DynamoRelease::k1_1
                                         : dynamo::DynamoRelease::k1_0;
}

}  // namespace

DynamoWorkerRole::DynamoWorkerRole(const Config& config,
                                   std::unique_ptr<dynamo::DiscoveryBackend> backend,
                                   boost::asio::io_context& io, NatsClient& nats,
                                   MetricsRegistry& metrics)
    : config_(config), backend_(std::move(backend)), io_(io), nats_(nats), metrics_(metrics) {}

DynamoWorkerRole::~DynamoWorkerRole() { withdraw(); }

Result<std::unique_ptr<dynamo::DiscoveryBackend>> DynamoWorkerRole::make_backend(
    const Config& config, MetricsRegistry& metrics) {
  if (config.dynamo.discovery == DynamoDiscoveryKind::kFile) {
    dynamo::FileDiscoveryOptions options;
    options.root = file_root(config);
    options.ttl = std::chrono::seconds(config.dynamo.lease_ttl_s);
    return std::unique_ptr<dynamo::DiscoveryBackend>(
        std::make_unique<dynamo::FileDiscovery>(metrics, options));
  }
  etcd::EtcdClientOptions options;
  options.endpoints = split_comma_list(config.dynamo.etcd_endpoints);
  auto client = etcd::EtcdClient::create(options);
  if (!client) {
    return make_error("config", "dynamo.etcd_endpoints: " + client.error().message);
  }
  return std::unique_ptr<dynamo::DiscoveryBackend>(std::make_unique<dynamo::EtcdDiscovery>(
      std::move(*client), metrics,
      dynamo::EtcdDiscoveryOptions{.lease_ttl = std::chrono::seconds(config.dynamo.lease_ttl_s)}));
}

Result<std::vector<MockWorkerIdentity>> DynamoWorkerRole::prepare(const ModelDirectory& model) {
  model_ = model;
  const MockWorkerIdentity served = served_model_identity(config_, &model_);
  const Clock& clock = SystemClock::instance();
  std::vector<MockWorkerIdentity> identities;
  for (uint32_t i = 0; i < config_.workers.count; ++i) {
    auto id = backend_->allocate_instance_id(clock.steady_now());
    if (!id) {
      return make_error("discovery", "worker " + std::to_string(i) +
                                         ": no Dynamo instance id: " + id.error().message);
    }
    instance_ids_.push_back(*id);
    // Granting a thousand leases takes seconds: the first must be kept alive meanwhile.
    backend_->tick(clock.steady_now());
    identities.push_back(served);
    identities.back().worker_id = *id;
  }
  return identities;
}

Result<bool> DynamoWorkerRole::start(WorkerFleet& fleet, KvEventPipeline& pipeline) {
  if (auto plane = start_request_plane(fleet, pipeline); !plane) return plane.error();
  const std::string card = model_card();
  const Clock& clock = SystemClock::instance();
  for (size_t i = 0; i < instance_ids_.size(); ++i) {
    // Registering a thousand workers outlasts a lease's TTL, and the keep-alive thread only
    // starts afterwards: keep the leases alive between registrations.
    backend_->tick(clock.steady_now());
    if (auto registered = register_instance(i, fleet.worker(i).dp_size(), card); !registered) {
      return registered.error();
    }
  }
  registered_ = true;
  log_info("dynamo", std::to_string(instance_ids_.size()) + " instances of model " +
                         config_.workers.model.name + " registered (" +
                         (config_.dynamo.discovery == DynamoDiscoveryKind::kEtcd
                              ? "etcd " + config_.dynamo.etcd_endpoints
                              : "files in " + file_root(config_)) +
                         "), request plane " +
                         (tcp_server_ ? "tcp " + advertised_address_ : std::string("nats")));
  keep_alive_ = std::thread([this] {
    name_this_thread("kvmock-discovery");
    keep_alive_loop();
  });
  return true;
}

Result<bool> DynamoWorkerRole::register_instance(size_t index, size_t dp_size,
                                                 const std::string& card) {
  dynamo::WorkerDiscoverySpec spec;
  spec.dynamo_namespace = config_.nats.namespace_;
  spec.component = config_.nats.component;
  spec.instance_id = instance_ids_[index];
  spec.request_plane = config_.dynamo.request_plane == DynamoRequestPlaneKind::kNats
                           ? dynamo::RequestPlane::kNats
                           : dynamo::RequestPlane::kTcp;
  spec.tcp_address = advertised_address_;
  spec.data_parallel_size = static_cast<uint32_t>(dp_size);
  spec.card_json = card;
  spec.kv_events_topic = config_.nats.kv_subject;
  spec.release = release_of(config_.dynamo.release);
  auto registered =
      backend_->register_records(instance_ids_[index], dynamo::worker_discovery_records(spec));
  if (!registered) {
    return make_error("discovery", "worker " + std::to_string(instance_ids_[index]) +
                                       ": records not registered: " + registered.error().message);
  }
  return true;
}

void DynamoWorkerRole::serve_endpoints(size_t index, MockWorker& worker,
                                       KvEventPipeline& pipeline) {
  auto form =
      query_form_for_release(config_.dynamo.release == DynamoReleaseKind::k1_1 ? "1.1" : "1.0");
  IndexerQueryEndpointOptions query_options;
  query_options.form = *form;
  query_options.field_set.residency_domain = config_.nats.field_set.residency_domain;
  query_options.field_set.start_position = config_.nats.field_set.start_position;
  GenerateEndpointOptions generate;
  generate.data_parallel_size = static_cast<uint32_t>(worker.dp_size());
  std::vector<IndexerQuery> queries(
      worker.dp_size(),
      [&pipeline](const WorkerKvQueryRequest& request) { return pipeline.query(request); });
  serve_dynamo_worker(*dispatcher_, instance_ids_[index], worker, generate, queries, query_options);
}

void DynamoWorkerRole::crashed(size_t index) {
  const uint64_t id = instance_ids_.at(index);
  {
    std::lock_guard lock(backend_mutex_);
    if (!withdrawn_) backend_->remove(id);
  }
  // Requests to the old instance are refused as to an unknown one; frontends that saw the
  // records go no longer send any.
  dispatcher_->unregister_instance(id);
  if (nats_plane_) nats_plane_->stop_instance(id);
  log_info("dynamo", "instance " + std::to_string(id) + " removed from discovery (crash)");
}

Result<MockWorkerIdentity> DynamoWorkerRole::next_identity(size_t index,
                                                           const MockWorkerIdentity& previous) {
  std::lock_guard lock(backend_mutex_);
  if (withdrawn_) return make_error("stopped", "Dynamo discovery is shutting down");
  auto id = backend_->allocate_instance_id(SystemClock::instance().steady_now());
  if (!id) {
    return make_error("discovery",
                      "worker " + std::to_string(previous.worker_id) +
                          ": no new Dynamo instance id for the restart: " + id.error().message);
  }
  instance_ids_.at(index) = *id;
  MockWorkerIdentity next = previous;
  next.worker_id = *id;
  return next;
}

Result<bool> DynamoWorkerRole::restarted(size_t index, MockWorker& worker,
                                         KvEventPipeline& pipeline) {
  if (withdrawn_) return make_error("stopped", "Dynamo discovery is shutting down");
  // Endpoints first: a frontend that sees the records can connect at once.
  serve_endpoints(index, worker, pipeline);
  if (nats_plane_) {
    if (auto served = nats_plane_->serve_instance(instance_ids_.at(index)); !served) {
      return served.error();
    }
  }
  std::lock_guard lock(backend_mutex_);
  if (withdrawn_) return make_error("stopped", "Dynamo discovery is shutting down");
  if (auto registered = register_instance(index, worker.dp_size(), model_card()); !registered) {
    return registered.error();
  }
  log_info("dynamo", "instance " + std::to_string(instance_ids_[index]) +
                         " registered (restart of a crashed worker)");
  return true;
}

Result<bool> DynamoWorkerRole::start_request_plane(WorkerFleet& fleet, KvEventPipeline& pipeline) {
  CallHomeSettings call_home;
  call_home.max_message_bytes = config_.dynamo.tcp_max_message_bytes;
  dispatcher_ = std::make_unique<DynamoRequestDispatcher>(io_, call_home, metrics_);
  for (size_t i = 0; i < instance_ids_.size(); ++i) serve_endpoints(i, fleet.worker(i), pipeline);
  if (config_.dynamo.request_plane == DynamoRequestPlaneKind::kNats) {
    nats_plane_ = std::make_unique<DynamoNatsRequestPlane>(
        nats_, *dispatcher_, config_.nats.namespace_, config_.nats.component);
    for (const uint64_t id : instance_ids_) {
      if (auto served = nats_plane_->serve_instance(id); !served) return served.error();
    }
    return true;
  }
  auto listen = parse_host_port(config_.dynamo.tcp_listen);
  if (!listen) return make_error("config", "dynamo.tcp_listen: " + listen.error().message);
  DynamoTcpServerSettings settings;
  settings.host = listen->host;
  settings.port = listen->port;
  settings.max_message_bytes = config_.dynamo.tcp_max_message_bytes;
  tcp_server_ = std::make_unique<DynamoTcpRequestServer>(io_, *dispatcher_, settings);
  auto port = tcp_server_->start();
  if (!port) {
    return make_error(port.error().reason, "dynamo.tcp_listen " + config_.dynamo.tcp_listen + ": " +
                                               port.error().message);
  }
  const std::string host =
      config_.dynamo.tcp_host.empty() ? first_non_loopback_address() : config_.dynamo.tcp_host;
  advertised_address_ = host + ":" + std::to_string(*port);
  return true;
}

std::string DynamoWorkerRole::model_card() const {
  const EngineArgs& engine = config_.workers.engine;
  dynamo::ModelRuntimeConfig runtime;
  runtime.total_kv_blocks = engine.num_gpu_blocks;
  runtime.max_num_seqs = engine.max_num_seqs;
  runtime.max_num_batched_tokens = engine.max_num_batched_tokens;
  runtime.data_parallel_size = std::max<uint32_t>(1, engine.dp_size);
  runtime.enable_local_indexer = true;
  dynamo::ModelCardSpec spec =
      model_card_spec(model_, config_.workers.model.name, engine.block_size, runtime);
  // The engine's limit when it has one: the frontend refuses longer prompts before routing.
  if (engine.max_model_len > 0 && engine.max_model_len < spec.context_length) {
    spec.context_length = static_cast<uint32_t>(engine.max_model_len);
  }
  return dynamo::model_card_json(spec);
}

void DynamoWorkerRole::keep_alive_loop() {
  const Clock& clock = SystemClock::instance();
  std::unique_lock lock(keep_alive_mutex_);
  while (!keep_alive_stop_) {
    lock.unlock();
    {
      std::lock_guard backend(backend_mutex_);
      backend_->tick(clock.steady_now());
    }
    lock.lock();
    keep_alive_wake_.wait_for(lock, kKeepAliveTick, [this] { return keep_alive_stop_; });
  }
}

bool DynamoWorkerRole::registered(std::string& reason) const {
  if (registered_.load()) return true;
  reason = "the workers are not registered in Dynamo discovery yet";
  return false;
}

void DynamoWorkerRole::withdraw() {
  if (withdrawn_.exchange(true)) return;
  {
    std::lock_guard lock(keep_alive_mutex_);
    keep_alive_stop_ = true;
  }
  keep_alive_wake_.notify_all();
  if (keep_alive_.joinable()) keep_alive_.join();
  registered_ = false;
  // Records first: a frontend stops routing here before the intake closes.
  {
    std::lock_guard lock(backend_mutex_);
    if (backend_) backend_->shutdown();
  }
  if (nats_plane_) nats_plane_->stop();
  if (tcp_server_) tcp_server_->stop();
  log_info("dynamo", "instances withdrawn from discovery");
}

}  // namespace kvmock
