// All mock workers of the process (`workers:` in the config) and their intakes: the
// OpenAI HTTP port of each worker, the NATS `generate` subject of each worker, and the
// optional vLLM-format ZMQ event output.
//
// Crash and restart (docs/faults.md#crash-and-restart): a worker's life - its MockWorker,
// its HTTP server, the gate its events pass - ends with a crash and a new one begins with
// a restart, in the same slot (same HTTP port). A dead life is kept, stopped, until the
// fleet goes: intakes, metric callbacks and engine handlers may still hold it for a
// moment, and keeping it makes every such late call safe without tracking them all.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "config/config.h"
#include "core/pipeline/router_event_sink.h"
#include "daemon/engine_threads.h"
#include "daemon/mock_worker.h"
#include "transport/http/http_server.h"
#include "transport/http/openai_server.h"
#include "transport/http/worker_control.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

class NatsGenerateIntake;
class VllmZmqEventOutput;
class LoadDriver;

// Worker i of the config as a plain fleet numbers it: id workers.worker_id_base + i, serving
// served_model_identity(config, model).
std::vector<MockWorkerIdentity> numbered_worker_identities(const Config& config,
                                                           const ModelDirectory* model = nullptr);

// What the daemon does around a crash and a restart (Dynamo discovery, event channels).
// Each may be empty. Called under the fleet's control lock, on the caller's thread.
struct WorkerFleetHooks {
  // Before the worker's intakes close: frontends stop routing to it first.
  std::function<void(size_t index, uint64_t worker_id)> crashing;
  // The identity of the next life (Dynamo: a new instance id); empty: the same identity.
  std::function<Result<MockWorkerIdentity>(size_t index, const MockWorkerIdentity& previous)>
      next_identity;
  // A new worker id's event channels and indexer queries (only when the id changed).
  std::function<void(uint64_t worker_id)> open_channels;
  // Once the restarted worker serves (Dynamo: its records are published again).
  std::function<Result<bool>(size_t index, MockWorker& worker)> restarted;
};

class WorkerFleet final : public WorkerControl {
 public:
  // One worker per identity (workers.count of them).
  WorkerFleet(const Config& config, std::vector<MockWorkerIdentity> identities,
              boost::asio::io_context& io, RouterEventSink& sink, NatsClient& nats,
              zmq::context_t& zmq, MetricsRegistry& metrics);
  ~WorkerFleet() override;

  // Builds the workers, starts their engine threads and opens their intakes. Error on an
  // unreadable timing profile or a port that cannot be bound.
  Result<bool> start();
  // Intake off (new requests get 503, NATS intake unsubscribed); waits up to `grace` for
  // in-flight requests, then cancels the rest, closes the ports and stops the engine
  // threads.
  void stop(std::chrono::seconds grace);

  // Set before start().
  void set_hooks(WorkerFleetHooks hooks) { hooks_ = std::move(hooks); }

  // Crash of the worker with this id, as a router sees it: its HTTP port closes (connection
  // refused, open connections cut), its NATS generate subject goes, its requests are
  // cancelled, and it publishes no KV event or load any more. Errors: "not_found",
  // "conflict" (crashed already), "stopped" (the fleet is shutting down).
  Result<bool> crash_worker(uint64_t worker_id);
  // A new life for the worker with this id (crashed first if it runs): empty KV cache, a
  // Cleared on each of its channels (ids continue), its HTTP port listening again; with
  // Dynamo discovery a new id. Returns the new id. Errors: as crash_worker, or why the new
  // life could not start (the worker then stays crashed).
  Result<uint64_t> restart_worker(uint64_t worker_id);

  // WorkerControl (the admin port).
  std::vector<WorkerStatus> workers() const override;
  WorkerFaults* faults(uint64_t worker_id) override;
  Result<WorkerStatus> crash(uint64_t worker_id) override;
  Result<WorkerStatus> restart(uint64_t worker_id) override;

  size_t size() const { return slots_.size(); }
  // The worker in slot `index` (its current life, or the last one while crashed).
  MockWorker& worker(size_t index);
  uint16_t http_port(size_t index) const;
  // False while a worker's HTTP port cannot accept connections; `reason` names it.
  bool http_accepting(std::string& reason) const;
  // The built-in load driver, when workers.load.enabled.
  LoadDriver* load_driver() { return load_driver_.get(); }
  // Mean KV-cache usage over every engine, in [0, 1].
  double kv_usage() const;

 private:
  class EventGate;
  class SlotBackend;
  // One life of a worker: what a crash ends.
  struct Life {
    Life();
    ~Life();
    std::unique_ptr<EventGate> gate;  // before the worker, which publishes through it
    std::unique_ptr<MockWorker> worker;
    std::unique_ptr<OpenAiServer> api;  // before the server that calls into it
    std::unique_ptr<HttpServer> http;
  };
  struct Slot {
    MockWorkerIdentity identity;  // of the current (or last) life
    uint16_t http_port = 0;       // kept across lives; 0: no HTTP port
    bool running = false;
    std::unique_ptr<Life> life;                    // the current or last life
    std::vector<VllmZmqEventOutput*> zmq_outputs;  // per dp rank, taken over by each life
    Counter* crashes = nullptr;
    Counter* restarts = nullptr;
  };

  // A life for `slot` with `identity`: the worker, its NATS subject, its HTTP port.
  Result<std::unique_ptr<Life>> begin_life(Slot& slot, const MockWorkerIdentity& identity);
  // Opens worker's OpenAI API on `port` (of workers.http_host).
  Result<bool> serve_http(Life& life, uint16_t port);
  // Index of the slot whose current id is `worker_id`, with control_mutex_ held.
  std::optional<size_t> find_slot(uint64_t worker_id) const;
  Result<bool> crash_locked(size_t index);
  void count_lives(Slot& slot);

  const Config& config_;
  std::vector<MockWorkerIdentity> identities_;
  boost::asio::io_context& io_;
  RouterEventSink& sink_;
  NatsClient& nats_;
  zmq::context_t& zmq_;
  MetricsRegistry& metrics_;
  WorkerFleetHooks hooks_;
  // What a restart needs to build a worker as start() did.
  std::string profile_text_;
  Histogram* lateness_ = nullptr;
  std::optional<EngineTime> engine_time_;
  // Declared before the workers: an engine's timer must go before its io_context.
  EngineThreads engine_threads_;
  // Declared before the lives, whose workers they observe, so destroyed after them.
  std::vector<std::unique_ptr<VllmZmqEventOutput>> zmq_outputs_;
  // Serializes crash, restart and stop; guards slots_' lives and dead_.
  mutable std::mutex control_mutex_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Life>> dead_;  // ended lives, kept (see the top)
  std::unique_ptr<NatsGenerateIntake> nats_intake_;
  // The load driver's view of the slots: whichever life is current.
  std::vector<std::unique_ptr<SlotBackend>> slot_backends_;
  std::unique_ptr<LoadDriver> load_driver_;
  bool stopped_ = false;
};

}  // namespace kvmock
