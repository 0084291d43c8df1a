// The OpenAI-compatible API of one mock worker, as a vLLM pod serves it:
//   POST /v1/completions        prompt as text or token ids; stream (SSE) or not
//   POST /v1/chat/completions   messages rendered by the model's chat template
//   POST /tokenize              vLLM's: text or messages to ids ({count,max_model_len,tokens})
//   POST /detokenize            vLLM's: ids to text ({prompt})
//   GET  /v1/models             every served name of the worker's model, then its LoRA
//                               adapters (with their `parent`)
//   POST /v1/load_lora_adapter, /v1/unload_lora_adapter   vLLM's runtime LoRA endpoints
//   GET  /health                200 when the worker is ready, else 503
//   GET  /metrics               the worker's vLLM-named Prometheus metrics
//   GET, POST /admin/config     the worker's fault settings, read or merged (docs/faults.md)
// A generation request fails on purpose when the fault settings draw it, or as its
// `X-Kvmock-Fault: <type>` header says.
// Every response carries `x-kvmock-worker-id`. Errors use OpenAI's shape
// {"error":{"message","type","param","code"}}: 400 bad request or prompt too long, 404
// unknown model or path, 405 wrong method, 429 queue full, 503 not ready, 500 when the
// worker fails a request. A client that hangs up before its answer is complete has its
// request cancelled, so the worker frees its blocks.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transport/http/http_server.h"
#include "transport/http/openai_request.h"
#include "transport/http/worker_backend.h"
#include "transport/time/system_clock.h"

namespace kvmock {

inline constexpr std::string_view kAdminConfigPath = "/admin/config";

class OpenAiServer {
 public:
  // `backend` must outlive this object and every exchange handed to handle(). `clock`
  // gives the `created` timestamps.
  explicit OpenAiServer(WorkerBackend& backend, const Clock& clock = SystemClock::instance())
      : backend_(backend), clock_(clock) {}

  // An HttpHandler for HttpServer; answers asynchronously from the worker's thread.
  void handle(const std::shared_ptr<HttpExchange>& exchange);

 private:
  enum class Api { kCompletions, kChat };

  void generate(const std::shared_ptr<HttpExchange>& exchange, Api api);
  void tokenize(const std::shared_ptr<HttpExchange>& exchange);
  void detokenize(const std::shared_ptr<HttpExchange>& exchange);
  // What a request's `model` names: the worker's model (by any served name, or none) or
  // one of its LoRA adapters.
  struct ServedModel {
    std::string name;  // the name answers carry: the first served name, or the adapter's
    std::optional<LoraAdapter> adapter;
  };
  // The served model `requested` names; otherwise answers 404 with vLLM's message and
  // returns nullopt.
  std::optional<ServedModel> resolve_model(HttpExchange& exchange,
                                           const std::string& requested) const;
  void list_models(HttpExchange& exchange) const;
  void admin_config(HttpExchange& exchange);
  // What the fault its header forces or the settings draw (counted) did to a request.
  enum class FaultOutcome {
    kNone,      // no fault: serve it
    kHandled,   // answered, reset, or left unanswered: the request is done
    kCutStream  // serve it, and cut its stream mid-way
  };
  FaultOutcome inject_fault(const std::shared_ptr<HttpExchange>& exchange,
                            const ParsedRequest& parsed);
  // max_tokens when the request sets none, as vLLM picks it.
  uint32_t default_max_tokens(bool chat, const ParsedRequest& parsed) const;
  // Headers on every response: which worker answered.
  std::map<std::string, std::string> response_headers() const;

  WorkerBackend& backend_;
  const Clock& clock_;
  std::atomic<uint64_t> next_id_{1};  // response ids: unique per worker
};

}  // namespace kvmock
