// All mock workers of the process (`workers:` in the config) and their intakes: the
// OpenAI HTTP port of each worker, the NATS `generate` subject of each worker, and the
// optional vLLM-format ZMQ event output.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <vector>
#include <zmq.hpp>

#include "config/config.h"
#include "core/pipeline/router_event_sink.h"
#include "daemon/engine_threads.h"
#include "daemon/mock_worker.h"
#include "transport/http/http_server.h"
#include "transport/http/openai_server.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

class NatsGenerateIntake;
class VllmZmqEventOutput;
class LoadDriver;

// Worker i of the config as a plain fleet numbers it: id workers.worker_id_base + i, serving
// served_model_identity(config, model).
std::vector<MockWorkerIdentity> numbered_worker_identities(const Config& config,
                                                           const ModelDirectory* model = nullptr);

class WorkerFleet {
 public:
  // One worker per identity (workers.count of them).
  WorkerFleet(const Config& config, std::vector<MockWorkerIdentity> identities,
              boost::asio::io_context& io, RouterEventSink& sink, NatsClient& nats,
              zmq::context_t& zmq, MetricsRegistry& metrics);
  ~WorkerFleet();

  // Builds the workers, starts their engine threads and opens their intakes. Error on an
  // unreadable timing profile or a port that cannot be bound.
  Result<bool> start();
  // Intake off (new requests get 503, NATS intake unsubscribed); waits up to `grace` for
  // in-flight requests, then cancels the rest, closes the ports and stops the engine
  // threads.
  void stop(std::chrono::seconds grace);

  size_t size() const { return workers_.size(); }
  MockWorker& worker(size_t index) { return *workers_.at(index); }
  uint16_t http_port(size_t index) const;
  // False while a worker's HTTP port cannot accept connections; `reason` names it.
  bool http_accepting(std::string& reason) const;
  // The built-in load driver, when workers.load.enabled.
  LoadDriver* load_driver() { return load_driver_.get(); }
  // Mean KV-cache usage over every engine, in [0, 1].
  double kv_usage() const;

 private:
  // Opens worker's OpenAI API on `port` (of workers.http_host).
  Result<bool> serve_http(MockWorker& worker, uint16_t port);

  const Config& config_;
  std::vector<MockWorkerIdentity> identities_;
  boost::asio::io_context& io_;
  RouterEventSink& sink_;
  NatsClient& nats_;
  zmq::context_t& zmq_;
  MetricsRegistry& metrics_;
  // Declared before the workers: an engine's timer must go before its io_context.
  EngineThreads engine_threads_;
  std::vector<std::unique_ptr<MockWorker>> workers_;
  // Declared before the servers that call into them, so destroyed after.
  std::vector<std::unique_ptr<OpenAiServer>> openai_apis_;
  std::vector<std::unique_ptr<HttpServer>> http_servers_;
  std::unique_ptr<NatsGenerateIntake> nats_intake_;
  std::vector<std::unique_ptr<VllmZmqEventOutput>> zmq_outputs_;
  std::unique_ptr<LoadDriver> load_driver_;
  bool stopped_ = false;
};

}  // namespace kvmock
