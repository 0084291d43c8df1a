// Dynamo-shaped request intake over NATS: each worker serves
// `namespace.{ns}.component.{comp}.generate.{worker_id}`. A request is a
// PreprocessedRequest JSON (`token_ids`, `stop_conditions.max_tokens`/`min_tokens`/
// `ignore_eos`/`stop_token_ids`/`stop_token_ids_hidden`, `eos_token_ids`,
// `sampling_options.seed`, `routing.dp_rank`, `routing.lora_name`/`cache_salt`; everything
// else ignored) sent with a reply subject; the answer is a stream of LLMEngineOutput JSON
// messages on that subject: one per pass with the new `token_ids`, then a last one with
// `finish_reason` ("length", "stop", "cancelled", or {"error": "..."}) and
// `completion_usage`.
//
// Cancellation: this request path has no control message (Dynamo's own request plane
// cancels with "stop"/"kill" frames on its TCP response stream, which this simplified
// path does not have), so the requester going away is what cancels. Every answer
// message is published with a reply-to subject of the intake's own (`{inbox}.{key}`);
// when the requester's reply subject has no subscriber any more, nats-server answers
// that with a "no responders" status, and the intake cancels the request, freeing its
// blocks. A requester that unsubscribes (or disconnects) is thus detected at the next
// message of its answer (the first token, or the next one); the request then finishes
// "abort" ("cancelled" on this wire), counted in kvmock_nats_generate_cancelled_total.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "transport/http/worker_backend.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

// Parses a PreprocessedRequest body. Errors name the field. A null or missing
// stop_conditions.max_tokens becomes `default_max_tokens`.
Result<GenerationRequest> parse_preprocessed_request(std::string_view json,
                                                     uint32_t default_max_tokens = 16);

// The finish_reason Dynamo's LLMEngineOutput carries for a worker's (vLLM) finish reason:
// Dynamo's FinishReason serializes an aborted request as "cancelled" (and releases before
// 1.1 accept no "abort"), so "abort" becomes "cancelled"; "stop" and "length" are the same
// words on both sides.
std::string_view dynamo_finish_reason(std::string_view vllm_reason);

class NatsGenerateIntake {
 public:
  NatsGenerateIntake(NatsClient& client, std::string ns, std::string component,
                     MetricsRegistry& metrics);
  ~NatsGenerateIntake();

  // Subscribes the worker's generate subject. `worker` must outlive the intake.
  Result<bool> serve(WorkerBackend& worker);
  // Unsubscribes `worker`'s subject (a crashed worker: requesters get "no responders").
  // Its route stays, so a message already being handled finishes; `worker` must still
  // outlive the intake. Not concurrently with serve() or stop().
  void unserve(const WorkerBackend& worker);
  // Unsubscribes every subject (intake off at shutdown).
  void stop();

  static std::string subject(std::string_view ns, std::string_view component, uint64_t worker_id);

 private:
  struct Route;
  // A request in flight, by key (the last token of its watch subject).
  struct Watched {
    WorkerBackend* worker = nullptr;
    std::optional<uint64_t> request_id;  // known once submit() returned
    bool gone = false;                   // the requester left before the id was known
  };
  static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* route);
  static void on_watch(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);
  void handle(WorkerBackend& worker, natsMsg* msg);
  Result<bool> ensure_watch();
  // The requester of `key` has gone: cancel its request (now, or once its id is known).
  void requester_gone(uint64_t key);
  void forget(uint64_t key);
  void send(const std::string& reply, uint64_t key, const std::string& text);

  NatsClient& client_;
  const std::string ns_;
  const std::string component_;
  std::vector<std::unique_ptr<Route>> routes_;
  Counter* accepted_;
  Counter* rejected_;
  Counter* cancelled_;
  std::string watch_prefix_;  // "{inbox}." once the watch subscription exists
  natsSubscription* watch_ = nullptr;
  std::mutex mutex_;  // guards watched_ and next_key_
  std::unordered_map<uint64_t, Watched> watched_;
  uint64_t next_key_ = 1;
};

}  // namespace kvmock
