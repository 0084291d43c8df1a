// One OpenAI generation in flight: turns a worker's callbacks into the HTTP answer of
// /v1/completions or /v1/chat/completions, whole or streamed (SSE), as vLLM shapes it:
// stop strings matched on the text (the worker is told to stop), synthetic logprobs
// consistent with the returned tokens, echo, a forced tool call, usage (also per chunk with
// continuous_usage_stats), and vLLM's finish_reason/stop_reason.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/tokenizer/incremental_detokenizer.h"
#include "core/tokenizer/text_codec.h"
#include "transport/http/http_server.h"
#include "transport/http/openai_request.h"
#include "transport/http/worker_backend.h"

namespace kvmock {

// What shapes one answer, fixed before the request is submitted.
struct GenerationAnswer {
  bool chat = false;
  std::string id;     // "cmpl-…" / "chatcmpl-…"
  std::string model;  // the name answers carry
  int64_t created = 0;
  std::map<std::string, std::string> headers;
};

// A call the server owes the worker once the generation has said so: cancel (the client
// left) or stop (a stop string matched).
struct BackendCall {
  enum class Kind { kCancel, kStop };
  Kind kind;
  uint64_t request_id;
};

// Callbacks run on the worker's thread, client hang-up on the connection's strand, and the
// submitting thread finishes the set-up; `mutex_` orders the three. Methods that return a
// BackendCall leave the call to the caller, made after the lock is released.
class Generation {
 public:
  // `codec` must outlive the generation; `request` is read here (its prompt too), not kept.
  Generation(std::shared_ptr<HttpExchange> exchange, GenerationAnswer answer,
             const ParsedRequest& request, const TextCodec& codec);

  // submit() succeeded: start the stream (if any). Returns the call owed if the client has
  // already gone or a stop string already matched.
  std::optional<BackendCall> started(uint64_t request_id);
  // The client went away: the cancel owed, once the request id is known.
  std::optional<BackendCall> client_gone();
  // A pass's tokens: the stop owed when they complete a stop string.
  std::optional<BackendCall> on_tokens(const std::vector<TokenId>& tokens);
  void on_finish(const GenerationFinish& finish);

 private:
  using json = nlohmann::ordered_json;

  // Appends text and checks the stop strings on it; a match truncates it and ends output.
  void accept_text_locked(const std::string& piece);
  // Streams the text that can no longer be part of a stop string (all of it at the end).
  void stream_text_locked(bool at_end);
  void add_logprobs_locked(const std::vector<TokenId>& tokens);
  std::optional<BackendCall> owed_stop_locked();
  std::string finish_reason(const GenerationFinish& finish) const;
  json stop_reason(const GenerationFinish& finish) const;
  json usage_json(uint64_t prompt_tokens, uint64_t completion_tokens, uint64_t cached) const;
  json chunk_head() const;
  json chunk(json delta, json logprobs, std::optional<std::string> reason) const;
  json tool_calls() const;
  json completion_logprobs(const json& entries);
  void respond_locked(const GenerationFinish& finish, json usage);
  void flush_locked();
  static std::string sse(const json& payload) { return "data: " + payload.dump() + "\n\n"; }

  const std::shared_ptr<HttpExchange> exchange_;
  const GenerationAnswer answer_;
  const bool stream_;
  const bool include_usage_;
  const bool continuous_usage_;
  const std::vector<std::string> stop_;
  const bool include_stop_;
  const size_t stop_holdback_;  // the longest stop string, less one byte
  const std::optional<uint32_t> logprobs_;
  const std::optional<std::string> echo_text_;
  const std::optional<ForcedToolCall> tool_call_;
  const uint64_t prompt_tokens_;
  const TextCodec& codec_;

  std::mutex mutex_;
  std::optional<uint64_t> request_id_;  // known once submit() returned
  bool begun_ = false;                  // stream header sent; chunks may be written
  bool done_ = false;                   // [DONE] queued; finish() once begun
  bool finished_ = false;               // on_finish ran: nothing left to cancel
  bool gone_ = false;
  bool stopped_ = false;    // a stop string matched: later tokens are dropped
  bool stop_owed_ = false;  // ... and the worker has not been told yet
  std::string matched_stop_;
  IncrementalDetokenizer detokenizer_;
  std::string text_;        // the output text so far (after a stop: up to it)
  size_t streamed_ = 0;     // bytes of text_ already streamed
  size_t searched_ = 0;     // text_ before this holds no stop string start
  uint64_t generated_ = 0;  // tokens received
  // Decodes the output token by token for logprobs (only when they are asked for).
  std::unique_ptr<IncrementalDetokenizer> logprob_detokenizer_;
  json logprob_entries_;         // chat: content entries; completions: the four lists
  size_t logprob_streamed_ = 0;  // entries already sent (streaming)
  size_t logprob_text_offset_;   // completions: text_offset of the next entry
  std::string pending_;          // SSE bytes produced before the stream began
};

}  // namespace kvmock
