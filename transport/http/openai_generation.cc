#include "transport/http/openai_generation.h"

#include <algorithm>

#include "transport/http/openai_errors.h"

namespace kvmock {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kJson = "application/json";

// A stable 64-bit mix (splitmix64's finalizer): logprobs must be the same for the same token
// at the same position, run after run.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The sampled token's synthetic logprob: in [-3, -0.01], a function of (token, position).
double sampled_logprob(TokenId token, uint64_t position) {
  return -0.01 - static_cast<double>(mix((uint64_t{token} << 32) ^ position) % 2991) / 1000.0;
}

json token_bytes(const std::string& text) {
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(c);
  return bytes;
}

// Backs `end` off the middle of a UTF-8 character, so a streamed piece is valid text.
size_t utf8_boundary(const std::string& text, size_t end, size_t floor) {
  while (end > floor && end < text.size() &&
         (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return end;
}

}  // namespace

Generation::Generation(std::shared_ptr<HttpExchange> exchange, GenerationAnswer answer,
                       const ParsedRequest& request, const TextCodec& codec)
    : exchange_(std::move(exchange)),
      answer_(std::move(answer)),
      stream_(request.stream),
      include_usage_(request.include_usage),
      continuous_usage_(request.include_usage && request.continuous_usage_stats),
      stop_(request.stop),
      include_stop_(request.include_stop_str_in_output),
      stop_holdback_([&] {
        size_t longest = 0;
        for (const std::string& stop : request.stop) longest = std::max(longest, stop.size());
        return longest > 0 ? longest - 1 : 0;
      }()),
      logprobs_(request.logprobs),
      echo_text_(request.echo_text),
      tool_call_(request.forced_tool_call),
      prompt_tokens_(request.prompt.size()),
      codec_(codec),
      detokenizer_(codec, request.prompt),
      logprob_detokenizer_(request.logprobs
                               ? std::make_unique<IncrementalDetokenizer>(codec, request.prompt)
                               : nullptr),
      logprob_entries_(json::array()),
      logprob_text_offset_(request.echo_text ? request.echo_text->size() : 0) {
  if (!stream_) return;
  if (answer_.chat) {
    json delta{{"role", "assistant"}, {"content", ""}};
    pending_ += sse(chunk(std::move(delta), nullptr, std::nullopt));
  } else if (echo_text_ && !echo_text_->empty()) {
    pending_ += sse(chunk(*echo_text_, nullptr, std::nullopt));
  }
}

std::optional<BackendCall> Generation::started(uint64_t request_id) {
  std::lock_guard lock(mutex_);
  request_id_ = request_id;
  if (stream_) {
    exchange_->begin_stream(200, "text/event-stream", answer_.headers);
    begun_ = true;
    flush_locked();
  }
  if (gone_ && !finished_) return BackendCall{BackendCall::Kind::kCancel, request_id};
  return owed_stop_locked();
}

std::optional<BackendCall> Generation::client_gone() {
  std::lock_guard lock(mutex_);
  gone_ = true;
  if (finished_ || !request_id_) return std::nullopt;
  return BackendCall{BackendCall::Kind::kCancel, *request_id_};
}

std::optional<BackendCall> Generation::on_tokens(const std::vector<TokenId>& tokens) {
  std::lock_guard lock(mutex_);
  if (stopped_ || finished_) return std::nullopt;
  add_logprobs_locked(tokens);
  generated_ += tokens.size();
  accept_text_locked(detokenizer_.push(tokens));
  if (stream_) stream_text_locked(false);
  flush_locked();
  return owed_stop_locked();
}

std::optional<BackendCall> Generation::owed_stop_locked() {
  if (!stop_owed_ || !request_id_ || finished_) return std::nullopt;
  stop_owed_ = false;
  return BackendCall{BackendCall::Kind::kStop, *request_id_};
}

void Generation::accept_text_locked(const std::string& piece) {
  if (stopped_ || piece.empty()) return;
  text_ += piece;
  if (stop_.empty()) return;
  // The earliest match wins, as vLLM's detokenizer checks; a match may begin in text held
  // back from the stream but never in text already sent (the holdback covers it).
  size_t best = std::string::npos;
  const std::string* matched = nullptr;
  for (const std::string& stop : stop_) {
    const size_t at = text_.find(stop, searched_);
    if (at != std::string::npos && at < best) {
      best = at;
      matched = &stop;
    }
  }
  if (matched == nullptr) {
    searched_ = text_.size() > stop_holdback_ ? text_.size() - stop_holdback_ : 0;
    return;
  }
  text_.resize(include_stop_ ? best + matched->size() : best);
  matched_stop_ = *matched;
  stopped_ = true;
  stop_owed_ = true;
}

void Generation::stream_text_locked(bool at_end) {
  size_t end = text_.size();
  if (!at_end && !stopped_) end = end > stop_holdback_ ? end - stop_holdback_ : 0;
  end = utf8_boundary(text_, std::max(end, streamed_), streamed_);
  std::string piece = text_.substr(streamed_, end - streamed_);
  streamed_ = end;
  if (tool_call_) piece.clear();  // a forced tool call answers with the call, not text
  json logprobs = nullptr;
  if (logprobs_ && logprob_streamed_ < logprob_entries_.size()) {
    json entries = json::array();
    for (size_t i = logprob_streamed_; i < logprob_entries_.size(); ++i) {
      entries.push_back(logprob_entries_[i]);
    }
    logprob_streamed_ = logprob_entries_.size();
    logprobs = answer_.chat ? json{{"content", std::move(entries)}} : completion_logprobs(entries);
  }
  if (piece.empty() && logprobs.is_null() && !continuous_usage_) return;
  json delta = answer_.chat ? json{{"content", std::move(piece)}} : json(std::move(piece));
  pending_ += sse(chunk(std::move(delta), std::move(logprobs), std::nullopt));
}

void Generation::add_logprobs_locked(const std::vector<TokenId>& tokens) {
  if (!logprobs_) return;
  const std::shared_ptr<const std::vector<TokenId>> vocabulary = codec_.output_vocabulary();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const TokenId token = tokens[i];
    const uint64_t position = generated_ + i;
    const double logprob = sampled_logprob(token, position);
    // The token's share of the output text, as the client reads it (a word's leading space
    // included), so the entries' tokens join to the text.
    const std::string text = logprob_detokenizer_->push(std::span(&token, 1));
    json top = json::array();
    top.push_back({{"token", text}, {"logprob", logprob}, {"bytes", token_bytes(text)}});
    // Less likely alternatives, real tokens of the model, each below the one before.
    for (uint32_t rank = 1; rank < *logprobs_; ++rank) {
      const uint64_t pick = mix(uint64_t{token} * 31 + rank + position * 7);
      TokenId other = token + rank;
      if (vocabulary && !vocabulary->empty()) other = (*vocabulary)[pick % vocabulary->size()];
      const std::string other_text = codec_.decode(std::span(&other, 1), false);
      top.push_back({{"token", other_text},
                     {"logprob", logprob - 0.5 * rank - static_cast<double>(pick % 100) / 1000.0},
                     {"bytes", token_bytes(other_text)}});
    }
    json entry{{"token", text},
               {"logprob", logprob},
               {"bytes", token_bytes(text)},
               {"top_logprobs", std::move(top)}};
    logprob_entries_.push_back(std::move(entry));
  }
}

void Generation::on_finish(const GenerationFinish& finish) {
  std::lock_guard lock(mutex_);
  finished_ = true;
  if (!stopped_) accept_text_locked(detokenizer_.finish());
  json usage = usage_json(finish.prompt_tokens, finish.completion_tokens, finish.cached_tokens);
  if (!stream_) {
    respond_locked(finish, std::move(usage));
    return;
  }
  if (finish.finish_reason == "error") {
    pending_ += sse(openai_error_json(500, finish.error, "generation_failed", ""));
  } else {
    stream_text_locked(true);
    if (tool_call_) {
      json call = tool_calls().front();
      call["index"] = 0;
      pending_ +=
          sse(chunk(json{{"tool_calls", json::array({std::move(call)})}}, nullptr, std::nullopt));
    }
    json delta = answer_.chat ? json::object() : json("");
    json last = chunk(std::move(delta), nullptr, finish_reason(finish));
    last["choices"][0]["stop_reason"] = stop_reason(finish);
    pending_ += sse(last);
    if (include_usage_) {
      json tail = chunk_head();
      tail["choices"] = json::array();
      tail["usage"] = std::move(usage);
      pending_ += sse(tail);
    }
  }
  pending_ += "data: [DONE]\n\n";
  done_ = true;
  flush_locked();
}

std::string Generation::finish_reason(const GenerationFinish& finish) const {
  if (stopped_) return "stop";  // our stop string, whatever the worker reports for it
  if (tool_call_ && (finish.finish_reason == "stop" || finish.finish_reason == "length")) {
    return "tool_calls";
  }
  return finish.finish_reason;
}

// vLLM's stop_reason: the stop string or stop token id that ended the output, else null.
Generation::json Generation::stop_reason(const GenerationFinish& finish) const {
  if (stopped_) return matched_stop_;
  if (finish.matched_stop_token) return *finish.matched_stop_token;
  return nullptr;
}

Generation::json Generation::usage_json(uint64_t prompt_tokens, uint64_t completion_tokens,
                                        uint64_t cached) const {
  json usage;
  usage["prompt_tokens"] = prompt_tokens;
  usage["completion_tokens"] = completion_tokens;
  usage["total_tokens"] = prompt_tokens + completion_tokens;
  usage["prompt_tokens_details"] = {{"cached_tokens", cached}};
  return usage;
}

Generation::json Generation::chunk_head() const {
  json head;
  head["id"] = answer_.id;
  head["object"] = answer_.chat ? "chat.completion.chunk" : "text_completion";
  head["created"] = answer_.created;
  head["model"] = answer_.model;
  return head;
}

// A streamed chunk: `delta` is the chat delta object or the completion text.
Generation::json Generation::chunk(json delta, json logprobs,
                                   std::optional<std::string> reason) const {
  json choice;
  choice["index"] = 0;
  choice[answer_.chat ? "delta" : "text"] = std::move(delta);
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = reason ? json(*reason) : json(nullptr);
  json out = chunk_head();
  out["choices"] = json::array({std::move(choice)});
  // OpenAI: with include_usage every chunk carries "usage", null until the last one; vLLM's
  // continuous_usage_stats fills it with the counts so far.
  if (continuous_usage_) {
    out["usage"] = usage_json(prompt_tokens_, generated_, 0);
  } else if (include_usage_) {
    out["usage"] = nullptr;
  }
  return out;
}

Generation::json Generation::tool_calls() const {
  json function{{"name", tool_call_->name}, {"arguments", tool_call_->arguments}};
  json call{{"id", "chatcmpl-tool-" + answer_.id},
            {"type", "function"},
            {"function", std::move(function)}};
  return json::array({std::move(call)});
}

// Completions report logprobs as four parallel lists; text offsets count from the start of
// the returned text (after an echoed prompt) and run on across streamed chunks.
Generation::json Generation::completion_logprobs(const json& entries) {
  json tokens = json::array(), values = json::array(), tops = json::array(),
       offsets = json::array();
  for (const json& entry : entries) {
    tokens.push_back(entry["token"]);
    values.push_back(entry["logprob"]);
    json top = json::object();
    for (const json& alternative : entry["top_logprobs"]) {
      top[alternative["token"].get<std::string>()] = alternative["logprob"];
    }
    tops.push_back(std::move(top));
    offsets.push_back(logprob_text_offset_);
    logprob_text_offset_ += entry["token"].get_ref<const std::string&>().size();
  }
  return json{{"text_offset", std::move(offsets)},
              {"token_logprobs", std::move(values)},
              {"tokens", std::move(tokens)},
              {"top_logprobs", std::move(tops)}};
}

void Generation::respond_locked(const GenerationFinish& finish, json usage) {
  if (finish.finish_reason == "error") {
    exchange_->respond(500, std::string(kJson),
                       openai_error_json(500, finish.error, "generation_failed", "").dump(),
                       answer_.headers);
    return;
  }
  const std::string reason = finish_reason(finish);
  if (reason == "abort") {
    exchange_->respond(503, std::string(kJson),
                       openai_error_json(503, "the request was aborted", "aborted", "").dump(),
                       answer_.headers);
    return;
  }
  json choice;
  choice["index"] = 0;
  json logprobs = nullptr;
  if (answer_.chat) {
    json message{{"role", "assistant"}, {"content", tool_call_ ? json(nullptr) : json(text_)}};
    if (tool_call_) message["tool_calls"] = tool_calls();
    choice["message"] = std::move(message);
    if (logprobs_) logprobs = json{{"content", logprob_entries_}};
  } else {
    choice["text"] = echo_text_.value_or("") + text_;
    if (logprobs_) logprobs = completion_logprobs(logprob_entries_);
  }
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = reason;
  choice["stop_reason"] = stop_reason(finish);
  json body;
  body["id"] = answer_.id;
  body["object"] = answer_.chat ? "chat.completion" : "text_completion";
  body["created"] = answer_.created;
  body["model"] = answer_.model;
  body["choices"] = json::array({std::move(choice)});
  body["usage"] = std::move(usage);
  exchange_->respond(200, std::string(kJson), body.dump(), answer_.headers);
}

// Writes what is pending once the stream has begun; ends it after the last chunk.
void Generation::flush_locked() {
  if (!begun_) return;
  if (!pending_.empty()) exchange_->write(std::move(pending_));
  pending_.clear();
  if (done_) exchange_->finish();
}

}  // namespace kvmock
