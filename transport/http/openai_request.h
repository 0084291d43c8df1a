// Parsing of OpenAI-compatible request bodies into what a mock worker needs. Pure
// functions of the body (no backend, no I/O) so they can be fuzzed; every malformed body
// yields an Error, never an exception.
//
// Error reasons (all map to HTTP 400 except where noted), and the request field each
// names in OpenAI's `error.param`: see openai_error_param().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/tokens/block_hash.h"

namespace kvmock {

// max_tokens when a request gives none (completions and chat alike; a mock has no
// context window to fill).
inline constexpr uint32_t kDefaultMaxTokens = 16;

struct ParsedRequest {
  std::vector<TokenId> prompt;  // never empty
  uint32_t max_tokens = kDefaultMaxTokens;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string model;           // empty when the request names none
};

// POST /v1/completions. `prompt` may be a string, a list of token ids, or a list holding
// exactly one string or one list of token ids.
Result<ParsedRequest> parse_completion_request(std::string_view body);

// POST /v1/chat/completions. `messages` is a non-empty list of {role, content}; content
// is a string or a list of {type:"text", text} parts. The prompt is the mock chat
// template tokenized (core/tokenizer/mock_tokenizer.h).
Result<ParsedRequest> parse_chat_request(std::string_view body);

// The request field an error reason refers to, or "" when none ("bad_json").
std::string_view openai_error_param(std::string_view reason);

}  // namespace kvmock
