// Dynamo-shaped request intake over NATS: each worker serves
// `namespace.{ns}.component.{comp}.generate.{worker_id}`. A request is a
// PreprocessedRequest JSON (`token_ids`, `stop_conditions.max_tokens`, `routing.dp_rank`,
// `routing.lora_name`/`cache_salt`; everything else ignored) sent with a reply subject; the
// answer is a stream of LLMEngineOutput JSON messages on that subject: one per pass with
// the new `token_ids`, then a last one with `finish_reason` ("length", "cancelled", or
// {"error": "..."}) and `completion_usage`.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
#include <vector>

#include "transport/http/worker_backend.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

// Parses a PreprocessedRequest body. Errors name the field.
Result<GenerationRequest> parse_preprocessed_request(std::string_view json);

class NatsGenerateIntake {
 public:
  NatsGenerateIntake(NatsClient& client, std::string ns, std::string component,
                     MetricsRegistry& metrics);
  ~NatsGenerateIntake();

  // Subscribes the worker's generate subject. `worker` must outlive the intake.
  Result<bool> serve(WorkerBackend& worker);
  // Unsubscribes every subject (intake off at shutdown).
  void stop();

  static std::string subject(std::string_view ns, std::string_view component, uint64_t worker_id);

 private:
  struct Route;
  static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* route);
  void handle(WorkerBackend& worker, natsMsg* msg);

  NatsClient& client_;
  const std::string ns_;
  const std::string component_;
  std::vector<std::unique_ptr<Route>> routes_;
  Counter* accepted_;
  Counter* rejected_;
};

}  // namespace kvmock
