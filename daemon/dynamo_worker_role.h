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

  // For /ready: every worker's records are registered and the lease is alive.
  bool registered(std::string& reason) const;
  // "host:port" the TCP request plane advertises; empty with the NATS plane.
  const std::string& advertised_address() const { return advertised_address_; }

 private:
  Result<bool> start_request_plane(WorkerFleet& fleet, KvEventPipeline& pipeline);
  std::string model_card() const;
  void keep_alive_loop();

  const Config& config_;
  std::unique_ptr<dynamo::DiscoveryBackend> backend_;
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
  bool withdrawn_ = false;
};

}  // namespace kvmock
