// Parsing of OpenAI-compatible request bodies into what a mock worker needs. Pure
// functions of the body (no backend, no I/O) so they can be fuzzed; every malformed body
// yields an Error, never an exception.
//
// Error reasons (all map to HTTP 400 except where noted), and the request field each
// names in OpenAI's `error.param`: see openai_error_param().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/tokenizer/text_codec.h"
#include "core/tokens/block_hash.h"

namespace kvmock {

// max_tokens when a completions request gives none (vLLM's default; a chat request without
// one may use the rest of the context, see OpenAiServer).
inline constexpr uint32_t kDefaultMaxTokens = 16;
// The most logprobs (completions) or top_logprobs (chat) a request may ask for: vLLM's
// default --max-logprobs.
inline constexpr uint32_t kMaxLogprobs = 20;
// The most choices (`n`) or sequences (`best_of`) one request may ask for: each is an engine
// request of its own, so the cap keeps one body from flooding a worker's queue. vLLM has no
// such cap; its queue limits play that part.
inline constexpr uint32_t kMaxChoices = 128;

// A tool call the request forces (tool_choice "required" or a named function): the mock
// answers with a call to it, its arguments made up from the function's parameter schema.
struct ForcedToolCall {
  std::string name;
  std::string arguments;  // a JSON object, as text
};

struct ParsedRequest {
  std::vector<TokenId> prompt;         // never empty
  std::optional<uint32_t> max_tokens;  // unset: the endpoint's default
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  bool continuous_usage_stats = false;  // stream_options.continuous_usage_stats
  // The choices answered, and (completions' best_of) the sequences generated to pick them
  // from: n <= best_of <= kMaxChoices, best_of == n when streaming.
  uint32_t n = 1;
  uint32_t best_of = 1;
  std::string model;  // empty when the request names none
  // vLLM's stop conditions.
  std::vector<std::string> stop;
  std::vector<TokenId> stop_token_ids;
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;
  uint32_t min_tokens = 0;
  std::optional<uint64_t> seed;
  // Completions: `logprobs` N; chat: `top_logprobs` when `logprobs` is true (0 when absent).
  std::optional<uint32_t> logprobs;
  // Completions with `echo`: the prompt as text, to precede the output.
  std::optional<std::string> echo_text;
  std::optional<uint32_t> data_parallel_rank;
  std::optional<ForcedToolCall> forced_tool_call;
};

// POST /v1/completions. `prompt` may be a string, a list of token ids, or a list holding
// exactly one string or one list of token ids. Text is encoded by `codec` with special
// tokens added (vLLM's default for completions).
Result<ParsedRequest> parse_completion_request(std::string_view body, const TextCodec& codec);

// POST /v1/chat/completions. `messages` is a non-empty list of {role, content, ...}; content
// is a string or a list of {type:"text", text} parts (joined by newlines). The prompt is the
// codec's chat template rendered (add_generation_prompt, continue_final_message, tools,
// chat_template_kwargs from the body; `now` for strftime_now) and encoded without adding
// special tokens again. `best_of` is not a chat field: ignored like any unknown key.
// Errors also "no_chat_template", "template_error".
Result<ParsedRequest> parse_chat_request(std::string_view body, const TextCodec& codec,
                                         std::string_view now);

// POST /tokenize as vLLM serves it: {"prompt", "add_special_tokens" (default true)} or
// {"messages", "add_generation_prompt" (default true), "continue_final_message",
// "add_special_tokens" (default false), "tools", "chat_template_kwargs"}; optional "model"
// and "return_token_strs". The prompt may be empty.
struct TokenizeRequest {
  std::vector<TokenId> tokens;
  std::string model;
  bool return_token_strs = false;
};
Result<TokenizeRequest> parse_tokenize_request(std::string_view body, const TextCodec& codec,
                                               std::string_view now);

// POST /detokenize: {"tokens": [ids], "model"?}. Error "bad_tokens" when tokens is not a list
// of ids (0..2^32-1); ids the vocabulary lacks are skipped by the decode, as the reference
// tokenizer skips them.
struct DetokenizeRequest {
  std::vector<TokenId> tokens;
  std::string model;
};
Result<DetokenizeRequest> parse_detokenize_request(std::string_view body);

// The request field an error reason refers to ("bad_temperature" → "temperature"), or ""
// when none ("bad_json").
std::string_view openai_error_param(std::string_view reason);

}  // namespace kvmock
