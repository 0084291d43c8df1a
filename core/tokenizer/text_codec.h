// How a worker turns the text of a request into token ids and its generated ids back into
// text: the mock tokenizer (no model configured) or a real model's tokenizer and chat
// template (workers.model.path; docs/tokenizers.md). The HTTP intake and the /tokenize and
// /detokenize endpoints go through this one seam, so the ids a router computes from the same
// text are the ids the worker caches and publishes.
//
// Implementations are immutable after construction and shared by every worker: all methods
// are const and safe to call from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/tokens/block_hash.h"

namespace kvmock {

// What a chat request asks the template to render. Objects keep the request's key order
// (a template that prints `tools | tojson` must print them as the client sent them).
struct ChatPrompt {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // content already text
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  nlohmann::ordered_json tools;            // null when the request has none
  nlohmann::ordered_json template_kwargs;  // chat_template_kwargs: more template variables
  std::string now;  // "YYYY-MM-DDTHH:MM" (UTC), the date strftime_now renders
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;

  // The ids of `text`. `add_special_tokens` adds what the tokenizer's post-processor adds
  // (e.g. BOS): vLLM's default for completions and /tokenize of a prompt. Errors:
  // "bad_prompt" when the text cannot be tokenized (e.g. invalid UTF-8).
  virtual Result<std::vector<TokenId>> encode(std::string_view text,
                                              bool add_special_tokens) const = 0;

  // The prompt text of a chat request, rendered by the model's chat template. Errors:
  // "no_chat_template" (the model has none), "template_error" (the template refused the
  // conversation, e.g. its raise_exception; the message is the template's).
  virtual Result<std::string> render_chat(const ChatPrompt& prompt) const = 0;

  // The text of `ids`. Ids outside the vocabulary are skipped.
  virtual std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const = 0;

  // The vocabulary string of one id (vLLM's token_strs), or nullopt outside it.
  virtual std::optional<std::string> token_string(TokenId id) const = 0;

  // Ids a mock worker may generate: ordinary vocabulary entries that decode to readable
  // text on their own (never special tokens, EOS or byte pieces). nullptr: the engine's
  // default range (the mock tokenizer names every id).
  virtual std::shared_ptr<const std::vector<TokenId>> output_vocabulary() const = 0;

  // How many prompt ids incremental detokenization decodes before the first output id, so
  // the first output word gets the spacing it has after the prompt (vLLM uses 5).
  virtual size_t detokenize_context() const = 0;
};

// The codec of a worker without a model directory: core/tokenizer/mock_tokenizer.h.
std::shared_ptr<const TextCodec> make_mock_text_codec();

}  // namespace kvmock
