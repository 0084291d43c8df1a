// The mock workers as Dynamo instances (docs/dynamo-discovery.md): each worker gets an
// instance id from the discovery backend (an etcd lease, or a random id with the file
// backend), serves `generate` and `worker_kv_indexer_query_dp{r}` on Dynamo's request
// plane (TCP or NATS), and is registered with its model card, so a Dynamo frontend
// discovers the workers and routes requests to them.
//
// Lifecycle, driven by the Daemon:
//   prepare()  before the fleet exists, with the model directory the daemon read: connects
//              the backend, allocates one instance id a worker;
//   start()    once the workers run and their event channels are open: request plane up
//              first, then the records (a frontend that sees a record can connect at once),
//              then the keep-alive thread;
//   withdraw() on shutdown, first of all: records removed (leases revoked), request plane
//              closed, so frontends stop routing before the workers stop.
//
// A crashed worker (docs/faults.md#crash-and-restart) leaves discovery at once (lease
// revoked, records deleted) and its request-plane endpoints go; its restart is a new
// instance, as a restarted Dynamo worker is: a new lease, so a new instance id, and its
// records published again under it.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "config/model_directory.h"
#include "core/common/result.h"
#include "daemon/mock_worker.h"
#include "transport/dynamo/discovery_backend.h"
#include "transport/dynamo/nats_request_plane.h"
#include "transport/dynamo/request_dispatcher.h"
#include "transport/dynamo/tcp_request_server.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/kv_event_pipeline.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

class WorkerFleet;

class DynamoWorkerRole {
 public:
  // `backend` stores the records; the other references must outlive the role.
  DynamoWorkerRole(const Config& config, std::unique_ptr<dynamo::DiscoveryBackend> backend,
                   boost::asio::io_context& io, NatsClient& nats, MetricsRegistry& metrics);
  ~DynamoWorkerRole();
  DynamoWorkerRole(const DynamoWorkerRole&) = delete;
  DynamoWorkerRole& operator=(const DynamoWorkerRole&) = delete;

  // The backend dynamo.discovery names, with its settings from the config.
  static Result<std::unique_ptr<dynamo::DiscoveryBackend>> make_backend(const Config& config,
                                                                        MetricsRegistry& metrics);

  // One identity per configured worker: its instance id, the served model name, the
  // model's vocabulary as the bound of generated ids.
  // `model` is the directory of workers.model.path, read by the daemon.
  Result<std::vector<MockWorkerIdentity>> prepare(const ModelDirectory& model);
  Result<bool> start(WorkerFleet& fleet, KvEventPipeline& pipeline);
  void withdraw();

  // Crash and restart of the worker in fleet slot `index` (WorkerFleetHooks), from the
  // fleet's control thread. crashed(): out of discovery and off the request plane.
  void crashed(size_t index);
  // A new instance id for the slot's next life: `previous` with the new worker id.
  Result<MockWorkerIdentity> next_identity(size_t index, const MockWorkerIdentity& previous);
  // The new life serves on the request plane and its records are published.
  Result<bool> restarted(size_t index, MockWorker& worker, KvEventPipeline& pipeline);

  // For /ready: every worker's records are registered and the lease is alive.
  bool registered(std::string& reason) const;
  // "host:port" the TCP request plane advertises; empty with the NATS plane.
  const std::string& advertised_address() const { return advertised_address_; }

 private:
  Result<bool> start_request_plane(WorkerFleet& fleet, KvEventPipeline& pipeline);
  // Serves `worker` as instance instance_ids_[index] on the dispatcher.
  void serve_endpoints(size_t index, MockWorker& worker, KvEventPipeline& pipeline);
  Result<bool> register_instance(size_t index, size_t dp_size, const std::string& card);
  std::string model_card() const;
  void keep_alive_loop();

  const Config& config_;
  std::unique_ptr<dynamo::DiscoveryBackend> backend_;
  // The backend is single-threaded: the keep-alive thread and a crash or restart take turns.
  std::mutex backend_mutex_;
  boost::asio::io_context& io_;
  NatsClient& nats_;
  MetricsRegistry& metrics_;
  ModelDirectory model_;
  std::vector<uint64_t> instance_ids_;
  std::unique_ptr<DynamoRequestDispatcher> dispatcher_;
  std::unique_ptr<DynamoTcpRequestServer> tcp_server_;
  std::unique_ptr<DynamoNatsRequestPlane> nats_plane_;
  std::string advertised_address_;
  std::atomic<bool> registered_{false};
  // The keep-alive thread; the backend is used from it only once it runs.
  std::thread keep_alive_;
  std::mutex keep_alive_mutex_;
  std::condition_variable keep_alive_wake_;
  bool keep_alive_stop_ = false;
  std::atomic<bool> withdrawn_{false};  // read by crash and restart on another thread
};

}  // namespace kvmock
