// One OpenAI generation in flight: turns the worker's callbacks for its `n` (or `best_of`)
// engine requests into the HTTP answer of /v1/completions or /v1/chat/completions, whole or
// streamed (SSE), as vLLM shapes it:
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

// The answer's `n` choices come from `best_of` engine requests (one each unless best_of > n),
// all with the same prompt: chunks of every choice interleave in one stream, a whole answer
// waits for every sequence, and with best_of > n the n of highest cumulative logprob are
// returned.
//
// Callbacks run on the worker's thread, client hang-up on the connection's strand, and the
// submitting thread finishes the set-up; `mutex_` orders the three. Methods that return
// BackendCalls leave the calls to the caller, made after the lock is released.
class Generation {
 public:
  // `codec` must outlive the generation; `request` is read here (its prompt too), not kept.
  Generation(std::shared_ptr<HttpExchange> exchange, GenerationAnswer answer,
             const ParsedRequest& request, const TextCodec& codec);

  // Engine requests to submit: best_of, each answered through `sequence` 0..count-1.
  size_t sequence_count() const { return sequences_.size(); }
  // Sequence `sequence` was queued as `request_id`: the call owed at once if the client has
  // gone, the answer already failed, or a stop string already matched.
  std::optional<BackendCall> submitted(size_t sequence, uint64_t request_id);
  // Every sequence is queued: the stream (if any) begins.
  void all_submitted();
  // A submit was refused: the caller answers with the refusal, nothing is answered from here,
  // and the sequences already queued are cancelled with the calls returned.
  std::vector<BackendCall> abandon();
  // The client went away: the cancels owed, for every sequence queued and not finished.
  std::vector<BackendCall> client_gone();
  // A pass's tokens: the stop owed when they complete a stop string.
  std::optional<BackendCall> on_tokens(size_t sequence, const std::vector<TokenId>& tokens);
  // The cancels owed to the other sequences when this one failed the answer.
  std::vector<BackendCall> on_finish(size_t sequence, const GenerationFinish& finish);
  // The stream_cut fault: once any sequence has produced `tokens` tokens (or finishes
  // first), the stream stops mid-way: what was sent stays, no finish chunk and no [DONE]
  // follow, and the connection closes (its hang-up cancels the requests). Call before
  // all_submitted(); streaming answers only.
  void cut_stream_after(uint64_t tokens) { cut_after_tokens_ = tokens; }

 private:
  using json = nlohmann::ordered_json;

  // One engine request's output as the answer sees it.
  struct Sequence {
    Sequence(const TextCodec& codec, const ParsedRequest& request);

    std::optional<uint64_t> request_id;  // known once submit() returned
    bool finished = false;               // on_finish ran: nothing left to cancel
    bool stopped = false;                // a stop string matched: later tokens are dropped
    bool stop_owed = false;              // ... and the worker has not been told yet
    std::string matched_stop;
    IncrementalDetokenizer detokenizer;
    std::string text;        // the output text so far (after a stop: up to it)
    size_t streamed = 0;     // bytes of text already streamed
    size_t searched = 0;     // text before this holds no stop string start
    uint64_t generated = 0;  // tokens received
    // best_of's ranking: the synthetic logprobs of the tokens received, summed.
    double cumulative_logprob = 0;
    // Decodes the output token by token for logprobs (only when they are asked for).
    std::unique_ptr<IncrementalDetokenizer> logprob_detokenizer;
    json logprob_entries;         // chat: content entries; completions: the four lists
    size_t logprob_streamed = 0;  // entries already sent (streaming)
    size_t logprob_text_offset;   // completions: text_offset of the next entry
    GenerationFinish finish;      // once finished
  };

  // Appends text and checks the stop strings on it; a match truncates it and ends output.
  void accept_text_locked(Sequence& sequence, const std::string& piece);
  // Streams the text that can no longer be part of a stop string (all of it at the end).
  void stream_text_locked(size_t index, bool at_end);
  void stream_finish_locked(size_t index);
  void add_logprobs_locked(Sequence& sequence, const std::vector<TokenId>& tokens);
  // One logprobs entry: `token` at `position`, whose text is `text`, with synthetic values
  // and `logprobs_ - 1` less likely alternatives.
  json logprob_entry(TokenId token, uint64_t position, const std::string& text) const;
  // Completions with echo and logprobs: the prompt's entries, as vLLM's prompt logprobs
  // (the first token has none: null logprob and alternatives), in the four-list form with
  // offsets from 0. Null otherwise.
  json prompt_logprobs(const ParsedRequest& request) const;
  std::optional<BackendCall> owed_stop_locked(Sequence& sequence);
  // Cancels for every sequence queued and not finished.
  std::vector<BackendCall> cancels_locked() const;
  std::string finish_reason(const Sequence& sequence) const;
  json stop_reason(const Sequence& sequence) const;
  json usage_json(uint64_t prompt_tokens, uint64_t completion_tokens, uint64_t cached) const;
  // Counts the prompt once and the output of `returned` sequences.
  json final_usage(const std::vector<size_t>& returned) const;
  json chunk_head() const;
  json chunk(size_t index, json delta, json logprobs, std::optional<std::string> reason) const;
  json tool_calls(size_t index) const;
  json completion_logprobs(Sequence& sequence, const json& entries);
  // `entries` in completions' four-list form, offsets counted on from `*offset`.
  static json completion_lists(const json& entries, size_t* offset);
  // The sequences answered, in choice order: all of them, or best_of's top n.
  std::vector<size_t> returned_sequences() const;
  void respond_locked();
  void respond_error_locked(int status, const std::string& message, std::string_view code);
  void flush_locked();
  // Ends the stream without its end (cut_stream_after): closes the connection after what
  // is pending.
  void cut_locked();
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
  // prompt_logprobs(): streamed with the echoed prompt, or leading every choice's lists.
  json prompt_logprobs_;
  const std::optional<ForcedToolCall> tool_call_;
  const uint64_t prompt_tokens_;
  const size_t returned_count_;  // n
  const TextCodec& codec_;

  std::mutex mutex_;
  std::vector<std::unique_ptr<Sequence>> sequences_;
  size_t finished_count_ = 0;
  bool begun_ = false;                        // stream header sent; chunks may be written
  bool done_ = false;                         // answered, or [DONE] queued (finish() once begun)
  bool abandoned_ = false;                    // a submit was refused: the server answers
  std::optional<uint64_t> cut_after_tokens_;  // the stream_cut fault's point
  bool cut_ = false;                          // ... reached: the stream ends unfinished
  bool gone_ = false;
  std::string pending_;  // SSE bytes produced before the stream began
};

}  // namespace kvmock
