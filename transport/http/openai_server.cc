#include "transport/http/openai_server.h"

#include <charconv>
#include <chrono>
#include <ctime>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "transport/http/admin_config.h"
#include "transport/http/lora_endpoints.h"
#include "transport/http/openai_errors.h"
#include "transport/http/openai_generation.h"

namespace kvmock {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kWorkerIdHeader = "x-kvmock-worker-id";
// Forces one fault on the request it comes with (headers are matched lowercased).
constexpr std::string_view kFaultHeader = "x-kvmock-fault";
// vLLM's data-parallel pin (headers are matched lowercased).
constexpr std::string_view kDataParallelRankHeader = "x-data-parallel-rank";

Result<uint32_t> parse_rank_header(const std::string& value) {
  uint32_t rank = 0;
  const char* end = value.data() + value.size();
  const auto [at, ec] = std::from_chars(value.data(), end, rank);
  if (ec != std::errc() || at != end || value.empty()) {
    return make_error("bad_request",
                      "X-data-parallel-rank must be a non-negative integer, got \"" + value + "\"");
  }
  return rank;
}

void call_backend(WorkerBackend& backend, std::optional<BackendCall> call) {
  if (!call) return;
  if (call->kind == BackendCall::Kind::kStop) {
    backend.stop(call->request_id);
  } else {
    backend.cancel(call->request_id);
  }
}

void call_backend(WorkerBackend& backend, const std::vector<BackendCall>& calls) {
  for (const BackendCall& call : calls) call_backend(backend, call);
}

// The injected faults' messages: the worker's own words where it has some (vLLM's for the
// context length and the unknown model), each saying it was injected, so a router's log is
// not mistaken for a real failure.
std::string fault_message(FaultType fault, const std::string& model) {
  switch (fault) {
    case FaultType::kRateLimit:
      return "Rate limit reached for model " + model + " (fault injected by kvmock)";
    case FaultType::kServerError:
      return "Internal server error (fault injected by kvmock)";
    case FaultType::kServiceUnavailable:
      return "The service is temporarily unavailable (fault injected by kvmock)";
    case FaultType::kInvalidRequest:
      return "Invalid request (fault injected by kvmock)";
    case FaultType::kContextLength:
      return "This model's maximum context length was exceeded (fault injected by kvmock)";
    case FaultType::kModelNotFound:
      return "The model `" + model + "` does not exist. (fault injected by kvmock)";
    case FaultType::kTimeout:
    case FaultType::kConnectionReset:
    case FaultType::kStreamCut:
      break;  // act on the connection: nothing is written
  }
  return "fault injected by kvmock";
}

// The value of `key` in the target's query string (`?a=1&b=2`), undecoded; nullopt when
// absent.
std::optional<std::string> query_value(const std::string& target, std::string_view key) {
  const size_t query = target.find('?');
  if (query == std::string::npos) return std::nullopt;
  size_t at = query + 1;
  while (at <= target.size()) {
    const size_t end = std::min(target.find('&', at), target.size());
    const std::string_view pair(target.data() + at, end - at);
    const size_t equals = pair.find('=');
    if (pair.substr(0, equals) == key) {
      return equals == std::string_view::npos ? std::string()
                                              : std::string(pair.substr(equals + 1));
    }
    at = end + 1;
  }
  return std::nullopt;
}

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

void respond_error(HttpExchange& exchange, const std::map<std::string, std::string>& headers,
                   int status, std::string_view message, std::string_view code,
                   std::string_view param) {
  exchange.respond(status, std::string(kJson),
                   openai_error_json(status, message, code, param).dump(), headers);
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

  // vLLM serves the LoRA endpoints only where runtime LoRA updates are allowed: here, on
  // workers that keep adapters.
  LoraAdapters* adapters = backend_.lora_adapters();
  const bool is_lora_api =
      adapters != nullptr && (path == kLoadLoraAdapterPath || path == kUnloadLoraAdapterPath);
  // vLLM's sleep mode (served by vLLM in its dev mode; here by every worker that has it).
  const bool has_sleep = backend_.has_sleep_mode();
  const bool is_sleep_post = has_sleep && (path == "/sleep" || path == "/wake_up");
  const bool is_post_api = path == "/v1/completions" || path == "/v1/chat/completions" ||
                           path == "/tokenize" || path == "/detokenize" || is_lora_api ||
                           is_sleep_post;
  const bool is_get_api = path == "/v1/models" || path == "/health" || path == "/metrics" ||
                          (has_sleep && path == "/is_sleeping");
  if (path == kAdminConfigPath && backend_.faults() != nullptr) {
    return admin_config(*exchange);
  }
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
  if (is_lora_api) return serve_lora_endpoint(*exchange, *adapters, headers);
  if (path == "/sleep") {
    const std::string level = query_value(request.target, "level").value_or("1");
    if (level != "1" && level != "2") {
      reply_error(400, "level must be 1 or 2, got \"" + level + "\"", "bad_level", "level");
      return;
    }
    backend_.sleep(static_cast<uint32_t>(level[0] - '0'));
    exchange->respond(200, std::string(kJson), "", headers);
  } else if (path == "/wake_up") {
    backend_.wake_up();
    exchange->respond(200, std::string(kJson), "", headers);
  } else if (path == "/is_sleeping") {
    const ordered_json body{{"is_sleeping", backend_.is_sleeping()}};
    exchange->respond(200, std::string(kJson), body.dump(), headers);
  } else if (path == "/metrics") {
    exchange->respond(200, std::string(kPrometheusText), backend_.render_metrics(), headers);
  } else if (path == "/health") {
    if (backend_.ready()) {
      exchange->respond(200, std::string(kJson), R"({"status":"ok"})", headers);
    } else {
      reply_error(503, backend_.not_ready_reason(), "not_ready");
    }
  } else {
    list_models(*exchange);
  }
}

void OpenAiServer::list_models(HttpExchange& exchange) const {
  // Every served name, as vLLM lists its --served-model-name list, then each LoRA adapter
  // with the model it adapts as parent and its path as root.
  const int64_t created = unix_seconds(clock_);
  const std::span<const std::string> names = backend_.served_model_names();
  ordered_json data = ordered_json::array();
  const auto add = [&](const std::string& id, const std::string& root, ordered_json parent,
                       ordered_json max_model_len) {
    ordered_json model;
    model["id"] = id;
    model["object"] = "model";
    model["created"] = created;
    model["owned_by"] = "kvmock";
    model["root"] = root;
    model["parent"] = std::move(parent);
    model["max_model_len"] = std::move(max_model_len);
    data.push_back(std::move(model));
  };
  for (const std::string& name : names) add(name, names.front(), nullptr, backend_.max_model_len());
  if (LoraAdapters* adapters = backend_.lora_adapters()) {
    for (const LoraAdapter& adapter : adapters->list()) {
      add(adapter.name, adapter.path, adapter.parent, nullptr);
    }
  }
  ordered_json list{{"object", "list"}, {"data", std::move(data)}};
  exchange.respond(200, std::string(kJson), list.dump(), response_headers());
}

std::optional<OpenAiServer::ServedModel> OpenAiServer::resolve_model(
    HttpExchange& exchange, const std::string& requested) const {
  // vLLM names its first served name in responses, whichever alias the request used.
  if (requested.empty()) return ServedModel{backend_.model_name(), std::nullopt};
  for (const std::string& name : backend_.served_model_names()) {
    if (name == requested) return ServedModel{backend_.model_name(), std::nullopt};
  }
  if (LoraAdapters* adapters = backend_.lora_adapters()) {
    if (auto adapter = adapters->find(requested)) return ServedModel{adapter->name, adapter};
  }
  respond_error(exchange, response_headers(), 404, "The model `" + requested + "` does not exist.",
                "model_not_found", "model");
  return std::nullopt;
}

void OpenAiServer::tokenize(const std::shared_ptr<HttpExchange>& exchange) {
  const TextCodec& codec = backend_.text_codec();
  auto parsed = parse_tokenize_request(exchange->request().body, codec, template_now(clock_));
  if (!parsed_or_400(*exchange, response_headers(), parsed)) return;
  if (!resolve_model(*exchange, parsed->model)) return;
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
  if (!resolve_model(*exchange, parsed->model)) return;
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
  const std::optional<ServedModel> served = resolve_model(*exchange, parsed->model);
  if (!served) return;
  const FaultOutcome fault = inject_fault(exchange, *parsed);
  if (fault == FaultOutcome::kHandled) return;
  const std::string& model = served->name;

  GenerationRequest request;
  request.max_tokens = default_max_tokens(chat, *parsed);
  request.min_tokens = parsed->min_tokens;
  request.ignore_eos = parsed->ignore_eos;
  request.stop_token_ids = parsed->stop_token_ids;
  request.seed = parsed->seed;
  request.dp_rank = parsed->data_parallel_rank;
  if (served->adapter) {
    request.lora_name = served->adapter->name;
    request.lora_id = served->adapter->id;
  }
  // vLLM's header names the rank too, and wins over the body.
  const auto& headers_in = exchange->request().headers;
  if (auto rank = headers_in.find(std::string(kDataParallelRankHeader)); rank != headers_in.end()) {
    auto pinned = parse_rank_header(rank->second);
    if (!pinned) {
      reply_error(400, pinned.error().message, "bad_data_parallel_rank", "data_parallel_rank");
      return;
    }
    request.dp_rank = *pinned;
  }

  GenerationAnswer answer;
  answer.chat = chat;
  answer.id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(backend_.worker_id()) +
              "-" + std::to_string(next_id_.fetch_add(1));
  answer.model = model;
  answer.created = unix_seconds(clock_);
  answer.headers = headers;
  auto generation = std::make_shared<Generation>(exchange, std::move(answer), *parsed, codec);
  if (fault == FaultOutcome::kCutStream) {
    generation->cut_stream_after(std::max<uint64_t>(1, request.max_tokens / 2));
  }
  request.prompt = std::move(parsed->prompt);  // the engine holds it, once per sequence

  // Weak: the exchange keeps this callback, and the generation keeps the exchange.
  WorkerBackend& backend = backend_;
  exchange->on_client_gone([weak = std::weak_ptr<Generation>(generation), &backend] {
    if (auto alive = weak.lock()) call_backend(backend, alive->client_gone());
  });

  // vLLM samples each of the n (best_of) sequences on its own; here each is an engine
  // request, so each needs its own seed for its own output.
  const std::optional<uint64_t> seed = request.seed;
  const size_t count = generation->sequence_count();
  for (size_t sequence = 0; sequence < count; ++sequence) {
    GenerationRequest submitted = sequence + 1 < count ? request : std::move(request);
    if (seed) submitted.seed = *seed + sequence;
    GenerationCallbacks callbacks;
    callbacks.on_tokens = [generation, &backend, sequence](const std::vector<TokenId>& tokens) {
      call_backend(backend, generation->on_tokens(sequence, tokens));
    };
    callbacks.on_finish = [generation, &backend, sequence](const GenerationFinish& finish) {
      call_backend(backend, generation->on_finish(sequence, finish));
    };
    auto id = backend_.submit(std::move(submitted), std::move(callbacks));
    if (!id) {
      call_backend(backend_, generation->abandon());
      const Error& error = id.error();
      const int status = backend_error_status(error.reason);
      reply_error(status, error.message, backend_error_code(error.reason),
                  error.reason == "prompt_too_long" ? "prompt" : "");
      return;
    }
    call_backend(backend_, generation->submitted(sequence, *id));
  }
  generation->all_submitted();
}

void OpenAiServer::admin_config(HttpExchange& exchange) {
  // The admin port's /admin/workers/{id}/config answers through the same function.
  answer_admin_config(exchange, *backend_.faults(), kAdminConfigPath, response_headers());
}

OpenAiServer::FaultOutcome OpenAiServer::inject_fault(const std::shared_ptr<HttpExchange>& exchange,
                                                      const ParsedRequest& parsed) {
  WorkerFaults* faults = backend_.faults();
  if (faults == nullptr) return FaultOutcome::kNone;
  std::optional<FaultType> fault;
  const auto& headers = exchange->request().headers;
  if (auto forced = headers.find(std::string(kFaultHeader)); forced != headers.end()) {
    fault = fault_type_from_name(forced->second);
    if (!fault) {
      respond_error(*exchange, response_headers(), 400,
                    "X-Kvmock-Fault: unknown fault type \"" + forced->second + "\"", "bad_fault",
                    "");
      return FaultOutcome::kHandled;
    }
  } else {
    fault = faults->draw();
  }
  if (!fault) return FaultOutcome::kNone;
  faults->record(*fault);
  switch (*fault) {
    case FaultType::kTimeout:
      // Accepted and never answered: the exchange is kept by its own hang-up callback,
      // which runs (and lets it go) when the client gives up or the server stops.
      exchange->on_client_gone([exchange] {});
      return FaultOutcome::kHandled;
    case FaultType::kConnectionReset:
      exchange->abort(/*reset=*/true);
      return FaultOutcome::kHandled;
    case FaultType::kStreamCut:
      if (parsed.stream) return FaultOutcome::kCutStream;
      // No stream to cut: the connection closes without an answer.
      exchange->abort(/*reset=*/false);
      return FaultOutcome::kHandled;
    default:
      break;
  }
  const std::string& model = parsed.model.empty() ? backend_.model_name() : parsed.model;
  respond_error(*exchange, response_headers(), fault_status(*fault), fault_message(*fault, model),
                fault_code(*fault), *fault == FaultType::kModelNotFound ? "model" : "");
  return FaultOutcome::kHandled;
}

uint32_t OpenAiServer::default_max_tokens(bool chat, const ParsedRequest& parsed) const {
  if (parsed.max_tokens) return *parsed.max_tokens;
  // vLLM: a chat request may use the rest of the context; a completion gets 16 tokens.
  const uint64_t context = backend_.max_model_len();
  if (!chat || context == 0) return std::max(kDefaultMaxTokens, parsed.min_tokens);
  const uint64_t prompt = parsed.prompt.size();
  // A prompt that fills the context is refused by the worker with vLLM's message.
  const uint64_t rest = context > prompt ? context - prompt : 1;
  return static_cast<uint32_t>(std::min<uint64_t>(rest, std::numeric_limits<uint32_t>::max()));
}

}  // namespace kvmock
