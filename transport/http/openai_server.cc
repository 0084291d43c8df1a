#include "transport/http/openai_server.h"

#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/tokenizer/incremental_detokenizer.h"

namespace kvmock {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kWorkerIdHeader = "x-kvmock-worker-id";

int64_t unix_seconds(const Clock& clock) { return static_cast<int64_t>(clock.unix_ms() / 1000); }

// The minute strftime_now renders in chat templates: "YYYY-MM-DDTHH:MM", UTC.
std::string template_now(const Clock& clock) {
  const std::time_t seconds = unix_seconds(clock);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M", &utc);
  return text;
}

std::string_view error_type(int status) {
  switch (status) {
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    case 500:
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

ordered_json error_json(int status, std::string_view message, std::string_view code,
                        std::string_view param) {
  ordered_json error;
  error["message"] = message;
  error["type"] = error_type(status);
  error["param"] = param.empty() ? ordered_json(nullptr) : ordered_json(param);
  error["code"] = code;
  return ordered_json{{"error", std::move(error)}};
}

// The HTTP status a backend refusal maps to, and the OpenAI `code` it is reported as.
int backend_error_status(std::string_view reason) {
  if (reason == "not_ready") return 503;
  if (reason == "queue_full") return 429;
  if (reason == "prompt_too_long" || reason == "bad_request") return 400;
  return 500;
}

std::string_view backend_error_code(std::string_view reason) {
  // OpenAI's name for a prompt over the context window.
  if (reason == "prompt_too_long") return "context_length_exceeded";
  return reason;
}

// One generation in flight: turns the worker's callbacks into the HTTP answer. Callbacks
// run on the worker's thread, client hang-up on the connection's strand, and the
// submitting thread finishes the set-up; `mutex` orders the three.
class Generation {
 public:
  Generation(std::shared_ptr<HttpExchange> exchange, bool chat, const ParsedRequest& request,
             const TextCodec& codec, std::string id, std::string model,
             std::map<std::string, std::string> headers, int64_t created)
      : exchange_(std::move(exchange)),
        chat_(chat),
        stream_(request.stream),
        include_usage_(request.include_usage),
        id_(std::move(id)),
        model_(std::move(model)),
        created_(created),
        headers_(std::move(headers)),
        detokenizer_(codec, request.prompt) {
    if (stream_ && chat_) {
      ordered_json delta{{"role", "assistant"}, {"content", ""}};
      pending_ += sse(chunk(std::move(delta), std::nullopt));
    }
  }

  // Called once submit() succeeded: start the stream (if any) and bind cancellation.
  // Returns the request id to cancel if the client has already gone.
  std::optional<uint64_t> started(uint64_t request_id) {
    std::lock_guard lock(mutex_);
    request_id_ = request_id;
    if (stream_) {
      exchange_->begin_stream(200, "text/event-stream", headers_);
      begun_ = true;
      flush_locked();
    }
    if (gone_ && !finished_) return request_id;
    return std::nullopt;
  }

  // The client went away; returns the request id to cancel, if it is known yet.
  std::optional<uint64_t> client_gone() {
    std::lock_guard lock(mutex_);
    gone_ = true;
    if (finished_) return std::nullopt;
    return request_id_;
  }

  void on_tokens(const std::vector<TokenId>& tokens) {
    std::lock_guard lock(mutex_);
    emit_text_locked(detokenizer_.push(tokens));
    flush_locked();
  }

  void on_finish(const GenerationFinish& finish) {
    std::lock_guard lock(mutex_);
    finished_ = true;
    emit_text_locked(detokenizer_.finish());
    const ordered_json usage = usage_json(finish);
    if (!stream_) {
      respond_locked(finish, usage);
      return;
    }
    if (finish.finish_reason == "error") {
      pending_ += sse(error_json(500, finish.error, "generation_failed", ""));
    } else {
      ordered_json delta = chat_ ? ordered_json::object() : ordered_json("");
      pending_ += sse(chunk(std::move(delta), finish_reason(finish)));
      if (include_usage_) {
        ordered_json last = chunk_head();
        last["choices"] = ordered_json::array();
        last["usage"] = usage;
        pending_ += sse(last);
      }
    }
    pending_ += "data: [DONE]\n\n";
    done_ = true;
    flush_locked();
  }

 private:
  static std::string sse(const ordered_json& payload) { return "data: " + payload.dump() + "\n\n"; }

  // Output text as the detokenizer releases it: kept whole for a plain answer, one chunk
  // per piece when streaming (nothing for an empty piece: a character still incomplete).
  void emit_text_locked(std::string text) {
    if (!stream_) {
      text_ += text;
      return;
    }
    if (text.empty()) return;
    ordered_json delta = chat_ ? ordered_json{{"content", std::move(text)}} : ordered_json(text);
    pending_ += sse(chunk(std::move(delta), std::nullopt));
  }

  // vLLM reports an aborted request as "abort".
  static std::string finish_reason(const GenerationFinish& finish) {
    if (finish.finish_reason == "cancelled") return "abort";
    return finish.finish_reason;
  }

  static ordered_json usage_json(const GenerationFinish& finish) {
    ordered_json usage;
    usage["prompt_tokens"] = finish.prompt_tokens;
    usage["completion_tokens"] = finish.completion_tokens;
    usage["total_tokens"] = finish.prompt_tokens + finish.completion_tokens;
    usage["prompt_tokens_details"] = {{"cached_tokens", finish.cached_tokens}};
    return usage;
  }

  ordered_json chunk_head() const {
    ordered_json head;
    head["id"] = id_;
    head["object"] = chat_ ? "chat.completion.chunk" : "text_completion";
    head["created"] = created_;
    head["model"] = model_;
    return head;
  }

  // A streamed chunk: `delta` is the chat delta object or the completion text.
  ordered_json chunk(ordered_json delta, std::optional<std::string> reason) const {
    ordered_json choice;
    choice["index"] = 0;
    choice[chat_ ? "delta" : "text"] = std::move(delta);
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = reason ? ordered_json(*reason) : ordered_json(nullptr);
    ordered_json out = chunk_head();
    out["choices"] = ordered_json::array({std::move(choice)});
    // OpenAI: with include_usage every chunk carries "usage", null until the last one.
    if (include_usage_) out["usage"] = nullptr;
    return out;
  }

  void respond_locked(const GenerationFinish& finish, const ordered_json& usage) {
    if (finish.finish_reason == "error") {
      exchange_->respond(500, std::string(kJson),
                         error_json(500, finish.error, "generation_failed", "").dump(), headers_);
      return;
    }
    if (finish.finish_reason == "cancelled") {
      exchange_->respond(503, std::string(kJson),
                         error_json(503, "the request was cancelled", "cancelled", "").dump(),
                         headers_);
      return;
    }
    ordered_json choice;
    choice["index"] = 0;
    if (chat_) {
      choice["message"] = {{"role", "assistant"}, {"content", text_}};
    } else {
      choice["text"] = text_;
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = finish_reason(finish);
    ordered_json body;
    body["id"] = id_;
    body["object"] = chat_ ? "chat.completion" : "text_completion";
    body["created"] = created_;
    body["model"] = model_;
    body["choices"] = ordered_json::array({std::move(choice)});
    body["usage"] = usage;
    exchange_->respond(200, std::string(kJson), body.dump(), headers_);
  }

  // Writes what is pending once the stream has begun; ends it after the last chunk.
  void flush_locked() {
    if (!begun_) return;
    if (!pending_.empty()) exchange_->write(std::move(pending_));
    pending_.clear();
    if (done_) exchange_->finish();
  }

  const std::shared_ptr<HttpExchange> exchange_;
  const bool chat_;
  const bool stream_;
  const bool include_usage_;
  const std::string id_;
  const std::string model_;
  const int64_t created_;
  const std::map<std::string, std::string> headers_;

  std::mutex mutex_;
  std::optional<uint64_t> request_id_;  // known once submit() returned
  bool begun_ = false;                  // stream header sent; chunks may be written
  bool done_ = false;                   // [DONE] queued; finish() once begun
  bool finished_ = false;               // on_finish ran: nothing left to cancel
  bool gone_ = false;
  IncrementalDetokenizer detokenizer_;
  std::string pending_;  // SSE bytes produced before the stream began
  std::string text_;     // non-streaming: the whole output so far
};

void respond_error(HttpExchange& exchange, const std::map<std::string, std::string>& headers,
                   int status, std::string_view message, std::string_view code,
                   std::string_view param) {
  exchange.respond(status, std::string(kJson), error_json(status, message, code, param).dump(),
                   headers);
}

// Answers 400 with the parse error when `parsed` holds one; true when the body parsed.
template <class T>
bool parsed_or_400(HttpExchange& exchange, const std::map<std::string, std::string>& headers,
                   const Result<T>& parsed) {
  if (parsed) return true;
  const Error& error = parsed.error();
  respond_error(exchange, headers, 400, error.message, error.reason,
                openai_error_param(error.reason));
  return false;
}

}  // namespace

std::map<std::string, std::string> OpenAiServer::response_headers() const {
  return {{std::string(kWorkerIdHeader), std::to_string(backend_.worker_id())}};
}

void OpenAiServer::handle(const std::shared_ptr<HttpExchange>& exchange) {
  const HttpRequest& request = exchange->request();
  const std::string path = request.path();
  const std::map<std::string, std::string> headers = response_headers();
  const auto reply_error = [&](int status, std::string_view message, std::string_view code,
                               std::string_view param = {}) {
    respond_error(*exchange, headers, status, message, code, param);
  };

  const bool is_post_api = path == "/v1/completions" || path == "/v1/chat/completions" ||
                           path == "/tokenize" || path == "/detokenize";
  const bool is_get_api = path == "/v1/models" || path == "/health" || path == "/metrics";
  if (!is_post_api && !is_get_api) {
    reply_error(404, "no route for " + path, "not_found");
    return;
  }
  const bool get = request.method == "GET" || request.method == "HEAD";
  if ((is_post_api && request.method != "POST") || (is_get_api && !get)) {
    reply_error(405, "method " + request.method + " not allowed on " + path, "method_not_allowed");
    return;
  }

  if (path == "/v1/completions") return generate(exchange, Api::kCompletions);
  if (path == "/v1/chat/completions") return generate(exchange, Api::kChat);
  if (path == "/tokenize") return tokenize(exchange);
  if (path == "/detokenize") return detokenize(exchange);
  if (path == "/metrics") {
    exchange->respond(200, std::string(kPrometheusText), backend_.render_metrics(), headers);
  } else if (path == "/health") {
    if (backend_.ready()) {
      exchange->respond(200, std::string(kJson), R"({"status":"ok"})", headers);
    } else {
      reply_error(503, backend_.not_ready_reason(), "not_ready");
    }
  } else {  // /v1/models: every served name, as vLLM lists its --served-model-name list
    const int64_t created = unix_seconds(clock_);
    const std::span<const std::string> names = backend_.served_model_names();
    ordered_json data = ordered_json::array();
    for (const std::string& name : names) {
      ordered_json model;
      model["id"] = name;
      model["object"] = "model";
      model["created"] = created;
      model["owned_by"] = "kvmock";
      model["root"] = names.front();
      model["parent"] = nullptr;
      model["max_model_len"] = backend_.max_model_len();
      data.push_back(std::move(model));
    }
    ordered_json list{{"object", "list"}, {"data", std::move(data)}};
    exchange->respond(200, std::string(kJson), list.dump(), headers);
  }
}

bool OpenAiServer::serves_model(HttpExchange& exchange, const std::string& requested) const {
  if (requested.empty()) return true;
  for (const std::string& name : backend_.served_model_names()) {
    if (name == requested) return true;
  }
  respond_error(exchange, response_headers(), 404, "The model `" + requested + "` does not exist.",
                "model_not_found", "model");
  return false;
}

void OpenAiServer::tokenize(const std::shared_ptr<HttpExchange>& exchange) {
  const TextCodec& codec = backend_.text_codec();
  auto parsed = parse_tokenize_request(exchange->request().body, codec, template_now(clock_));
  if (!parsed_or_400(*exchange, response_headers(), parsed)) return;
  if (!serves_model(*exchange, parsed->model)) return;
  ordered_json body;
  body["count"] = parsed->tokens.size();
  body["max_model_len"] = backend_.max_model_len();
  body["tokens"] = parsed->tokens;
  ordered_json strings = nullptr;
  if (parsed->return_token_strs) {
    strings = ordered_json::array();
    for (TokenId id : parsed->tokens) strings.push_back(codec.token_string(id).value_or(""));
  }
  body["token_strs"] = std::move(strings);
  exchange->respond(200, std::string(kJson), body.dump(), response_headers());
}

void OpenAiServer::detokenize(const std::shared_ptr<HttpExchange>& exchange) {
  const TextCodec& codec = backend_.text_codec();
  auto parsed = parse_detokenize_request(exchange->request().body);
  if (!parsed_or_400(*exchange, response_headers(), parsed)) return;
  if (!serves_model(*exchange, parsed->model)) return;
  // vLLM decodes with the tokenizer's defaults: special tokens kept.
  const ordered_json body{{"prompt", codec.decode(parsed->tokens, /*skip_special_tokens=*/false)}};
  exchange->respond(200, std::string(kJson), body.dump(), response_headers());
}

void OpenAiServer::generate(const std::shared_ptr<HttpExchange>& exchange, Api api) {
  const std::map<std::string, std::string> headers = response_headers();
  const auto reply_error = [&](int status, std::string_view message, std::string_view code,
                               std::string_view param = {}) {
    respond_error(*exchange, headers, status, message, code, param);
  };

  const bool chat = api == Api::kChat;
  const TextCodec& codec = backend_.text_codec();
  auto parsed = chat ? parse_chat_request(exchange->request().body, codec, template_now(clock_))
                     : parse_completion_request(exchange->request().body, codec);
  if (!parsed_or_400(*exchange, headers, parsed)) return;
  if (!serves_model(*exchange, parsed->model)) return;
  // vLLM names its first served name in responses, whichever alias the request used.
  const std::string& model = backend_.model_name();

  const std::string id = std::string(chat ? "chatcmpl-" : "cmpl-") +
                         std::to_string(backend_.worker_id()) + "-" +
                         std::to_string(next_id_.fetch_add(1));
  auto generation = std::make_shared<Generation>(exchange, chat, *parsed, codec, id, model, headers,
                                                 unix_seconds(clock_));
  GenerationRequest request;
  request.prompt = std::move(parsed->prompt);  // a long prompt is held once, by the engine
  request.max_tokens = parsed->max_tokens;

  // Weak: the exchange keeps this callback, and the generation keeps the exchange.
  WorkerBackend& backend = backend_;
  exchange->on_client_gone([weak = std::weak_ptr<Generation>(generation), &backend] {
    if (auto alive = weak.lock()) {
      if (auto request_id = alive->client_gone()) backend.cancel(*request_id);
    }
  });

  GenerationCallbacks callbacks;
  callbacks.on_tokens = [generation](const std::vector<TokenId>& tokens) {
    generation->on_tokens(tokens);
  };
  callbacks.on_finish = [generation](const GenerationFinish& finish) {
    generation->on_finish(finish);
  };
  auto submitted = backend_.submit(std::move(request), std::move(callbacks));
  if (!submitted) {
    const Error& error = submitted.error();
    const int status = backend_error_status(error.reason);
    reply_error(status, error.message, backend_error_code(error.reason),
                error.reason == "prompt_too_long" ? "prompt" : "");
    return;
  }
  if (auto cancel = generation->started(*submitted)) backend_.cancel(*cancel);
}

}  // namespace kvmock
