// What the HTTP (OpenAI) and NATS intakes need from a mock worker. The worker driver
// implements it; the intakes know nothing about scheduling.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/tokenizer/text_codec.h"
#include "core/tokens/block_hash.h"
#include "transport/http/lora_adapters.h"
#include "transport/http/worker_faults.h"

namespace kvmock {

struct GenerationRequest {
  std::vector<TokenId> prompt;
  uint32_t max_tokens = 16;
  // Which engine of the worker serves it (vLLM's X-data-parallel-rank header or body
  // data_parallel_rank; NATS: routing.dp_rank). Unset: the worker chooses. A rank at or past
  // the worker's dp size is refused with "bad_request".
  std::optional<uint32_t> dp_rank;
  // The LoRA adapter the request names (its blocks hash apart from the base model's and
  // its KV events carry it); empty: the base model. lora_id is vLLM's lora_int_id, 0: none.
  std::string lora_name;
  uint32_t lora_id = 0;
  std::string cache_salt;
  // Ids the output must not contain: a Dynamo frontend ends the stream at an EOS or hidden
  // stop id (PreprocessedRequest eos_token_ids and stop_conditions.stop_token_ids_hidden).
  // The worker passes them to the engine as Request::excluded_output_tokens.
  std::vector<TokenId> eos_token_ids;
  // Output ids are below it: the model's vocabulary size. 0: the engine's default.
  TokenId output_vocab_end = 0;
  // When set, output ids are drawn from this list instead (a real model's readable words,
  // TextCodec::output_vocabulary); the worker sets it, shared by all its requests.
  std::shared_ptr<const std::vector<TokenId>> output_vocabulary;
  // vLLM's stop conditions. Unless ignore_eos, the worker's output-length distribution may
  // end the output early at an EOS (finish_reason "stop"), never before min_tokens. A
  // generated id in stop_token_ids ends it too ("stop", matched_stop_token set).
  bool ignore_eos = false;
  uint32_t min_tokens = 0;
  std::vector<TokenId> stop_token_ids;
  // vLLM's per-request seed: the same prompt with the same seed gives the same output ids on
  // any worker. Unset: ids follow the engine's seed and the request's id.
  std::optional<uint64_t> seed;
};

struct GenerationFinish {
  // vLLM's finish reasons: "stop" (EOS, a stop token or stop string), "length" (max_tokens
  // or the context), "abort" (cancelled by the client or the worker); "error" otherwise.
  std::string finish_reason;
  std::string error;                          // set when finish_reason == "error"
  std::optional<TokenId> matched_stop_token;  // the stop_token_ids entry that ended it
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;
  uint32_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

// Callbacks run on the worker's thread and must not block. on_tokens is called with the
// tokens of each pass as they are produced (one per pass for decode); on_finish exactly
// once, last.
struct GenerationCallbacks {
  std::function<void(const std::vector<TokenId>& tokens)> on_tokens;
  std::function<void(const GenerationFinish& finish)> on_finish;
};

class WorkerBackend {
 public:
  virtual ~WorkerBackend() = default;

  // Queues a request. Errors (reason → HTTP status): "not_ready" 503 (shutting down, or the
  // event outbox is full), "queue_full" 429,
  // "prompt_too_long" 400, "bad_request" 400.
  virtual Result<uint64_t> submit(GenerationRequest request, GenerationCallbacks callbacks) = 0;
  // Cancels a queued or running request and frees its blocks; on_finish("abort") follows
  // unless the request already finished. Safe from any thread.
  virtual void cancel(uint64_t request_id) = 0;
  // Ends a running request because its text matched a stop string (vLLM's detokenizer
  // check): like cancel(), but on_finish reports "stop" and metrics count it as a stop.
  virtual void stop(uint64_t request_id) = 0;
  virtual bool ready() const = 0;
  // Why ready() is false, for /health and logs.
  virtual std::string not_ready_reason() const { return "the worker is not ready"; }
  virtual uint64_t worker_id() const = 0;
  virtual const std::string& model_name() const = 0;
  // Every name the worker answers to: model_name() first, then workers.model.aliases (vLLM's
  // --served-model-name list). A request naming another model gets 404.
  virtual std::span<const std::string> served_model_names() const { return {&model_name(), 1}; }
  // How the worker turns text into ids and ids into text (the mock tokenizer unless a model
  // directory is configured). Lives as long as the worker.
  virtual const TextCodec& text_codec() const { return *make_mock_text_codec(); }
  // The context length /v1/models and /tokenize report (vLLM's max_model_len).
  virtual uint64_t max_model_len() const { return 0; }
  // The worker's vLLM-named Prometheus metrics (text format), as a vLLM pod serves them.
  virtual std::string render_metrics() const = 0;
  // The LoRA adapters the worker serves besides its model; null when it serves none and
  // cannot load any.
  virtual LoraAdapters* lora_adapters() { return nullptr; }
  // The worker's runtime fault settings (GET/POST /admin/config); null: no faults.
  virtual WorkerFaults* faults() { return nullptr; }
  // vLLM's sleep mode (POST /sleep?level=N, POST /wake_up, GET /is_sleeping): asleep, the
  // worker refuses generation requests with 503 and has discarded its KV cache (both
  // levels); the default worker has no sleep mode and answers 404.
  virtual bool has_sleep_mode() const { return false; }
  virtual void sleep(uint32_t level) { (void)level; }
  virtual void wake_up() {}
  virtual bool is_sleeping() const { return false; }
};

}  // namespace kvmock
