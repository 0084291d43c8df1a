#include "transport/dynamo/worker_endpoints.h"

#include <mutex>
#include <optional>
#include <variant>

#include "core/events/json_writer.h"
#include "transport/log/logger.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/generate_intake.h"

namespace kvmock {
namespace {

// One generate request between the worker's callbacks and its response stream.
struct GenerateCall {
  std::shared_ptr<CallHomeStream> stream;
  WorkerBackend* worker = nullptr;
  uint32_t max_tokens = 0;
  // Touched only by the worker's callbacks, which run one at a time, in order.
  uint32_t emitted = 0;
  // The request's last token waits for on_finish, which brings the usage to put on it
  // (the worker calls on_finish right after the last pass's on_tokens).
  std::vector<TokenId> held;
  // The frontend's stop can race submit() returning the id.
  std::mutex mutex;
  std::optional<uint64_t> request_id;
  bool stopped = false;
};

void append_token_ids(std::string& out, std::span<const TokenId> tokens) {
  out += "\"token_ids\":[";
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(tokens[i]);
  }
  out += ']';
}

// Annotated<LLMEngineOutput> with only token_ids, the shape Dynamo's frontend needs.
std::string token_item(std::span<const TokenId> tokens) {
  std::string item = "{\"data\":{";
  append_token_ids(item, tokens);
  item += "}}";
  return item;
}

// The last item: its tokens (maybe none), finish_reason and the request's usage.
std::string final_item(std::span<const TokenId> tokens, const GenerationFinish& finish) {
  std::string item = "{\"data\":{";
  append_token_ids(item, tokens);
  item += ",\"finish_reason\":";
  if (finish.finish_reason == "error") {
    item += "{\"error\":";
    codec::append_json_string(item, finish.error.empty() ? "error" : finish.error);
    item += '}';
  } else {
    codec::append_json_string(item, dynamo_finish_reason(finish.finish_reason));
  }
  item += ",\"completion_usage\":{\"prompt_tokens\":" + std::to_string(finish.prompt_tokens) +
          ",\"completion_tokens\":" + std::to_string(finish.completion_tokens) +
          ",\"total_tokens\":" + std::to_string(finish.prompt_tokens + finish.completion_tokens) +
          ",\"prompt_tokens_details\":{\"audio_tokens\":null,\"cached_tokens\":" +
          std::to_string(finish.cached_tokens) + "}}}}";
  return item;
}

void on_tokens(GenerateCall& call, const std::vector<TokenId>& tokens) {
  for (TokenId token : tokens) {
    if (call.emitted + 1 >= call.max_tokens) {
      call.held.push_back(token);
    } else {
      call.stream->send_item(token_item(std::span(&token, 1)));
    }
    ++call.emitted;
  }
}

void on_finish(GenerateCall& call, const GenerationFinish& finish) {
  {
    std::lock_guard lock(call.mutex);
    if (call.stopped) return;  // the stream already ended; the frontend expects nothing
  }
  if (finish.finish_reason == "error" && call.emitted == 0) {
    call.stream->fail("generation failed: " + (finish.error.empty() ? "error" : finish.error));
    return;
  }
  call.stream->send_item(final_item(call.held, finish));
  call.stream->complete();
}

// The frontend stopped the stream (or it broke): cancel the request, now or once its id
// is known.
void on_stream_cancelled(GenerateCall& call) {
  std::optional<uint64_t> id;
  {
    std::lock_guard lock(call.mutex);
    call.stopped = true;
    id = call.request_id;
  }
  if (id) call.worker->cancel(*id);
}

}  // namespace

Result<QueryResponseForm> query_form_for_release(std::string_view release) {
  if (release == "1.0" || release.starts_with("1.0.")) return QueryResponseForm::kBareEventLists;
  if (release.starts_with("1.")) return QueryResponseForm::kWithLastEventId;
  return make_error("bad_release",
                    "unknown Dynamo release '" + std::string(release) + "' (expected 1.0 or 1.1)");
}

DynamoEndpointHandler make_generate_handler(WorkerBackend& worker, GenerateEndpointOptions options,
                                            DynamoRequestDispatcher& dispatcher) {
  return [&worker, options, &dispatcher](std::string body,
                                         const std::shared_ptr<CallHomeStream>& stream) {
    auto request = parse_preprocessed_request(body, options.default_max_tokens);
    if (request && request->dp_rank && *request->dp_rank >= options.data_parallel_size) {
      request = make_error("bad_request", "routing.dp_rank " + std::to_string(*request->dp_rank) +
                                              " is not below the data parallel size " +
                                              std::to_string(options.data_parallel_size));
    }
    if (!request) {
      dispatcher.count_error("bad_request");
      stream->fail("invalid generate request: " + request.error().message);
      return;
    }
    auto call = std::make_shared<GenerateCall>();
    call->stream = stream;
    call->worker = &worker;
    call->max_tokens = request->max_tokens;
    stream->set_on_cancel([weak = std::weak_ptr<GenerateCall>(call)] {
      if (auto live = weak.lock()) on_stream_cancelled(*live);
    });
    GenerationCallbacks callbacks;
    callbacks.on_tokens = [call](const std::vector<TokenId>& tokens) { on_tokens(*call, tokens); };
    callbacks.on_finish = [call](const GenerationFinish& finish) { on_finish(*call, finish); };
    auto submitted = worker.submit(std::move(*request), std::move(callbacks));
    if (!submitted) {
      stream->fail("request refused (" + std::string(submitted.error().reason) +
                   "): " + submitted.error().message);
      return;
    }
    bool stopped = false;
    {
      std::lock_guard lock(call->mutex);
      call->request_id = *submitted;
      stopped = call->stopped;
    }
    if (stopped) worker.cancel(*submitted);
  };
}

std::string answer_indexer_query(std::string_view body, uint64_t instance_id, uint32_t dp_rank,
                                 const IndexerQuery& query,
                                 const IndexerQueryEndpointOptions& options,
                                 MetricsRegistry& metrics) {
  const auto count = [&metrics](const char* result) {
    metrics
        .counter("kvmock_indexer_queries_total", "Local indexer queries answered.",
                 {{"result", result}})
        .inc();
  };
  WorkerKvQueryResponse response;
  const char* result = "ok";
  auto request = decode_worker_kv_query_request_json(body);
  if (!request) {
    response = QueryError{"bad request: " + request.error().message};
    result = "error";
  } else if (request->worker_id != instance_id) {
    response = QueryError{"query for worker " + std::to_string(request->worker_id) +
                          " reached worker " + std::to_string(instance_id)};
    result = "error";
  } else {
    // Dynamo 1.0 sends no dp_rank; the endpoint's name carries it.
    request->dp_rank = dp_rank;
    response = query(*request);
    if (std::holds_alternative<QueryError>(response)) result = "error";
  }
  std::string json;
  encode_worker_kv_query_response_json(response, options.field_set, json, options.form);
  if (json.size() <= options.max_answer_bytes) {
    count(result);
    return json;
  }
  count("too_large");
  const std::string message = "answer too large: " + std::to_string(json.size()) +
                              " bytes, over the request plane's limit of " +
                              std::to_string(options.max_answer_bytes) +
                              " bytes; ask for a shorter event range";
  Logger::instance().log_limited(LogSeverity::kWarn, "dynamo-query-too-large", "dynamo", message);
  json.clear();
  encode_worker_kv_query_response_json(QueryError{message}, options.field_set, json, options.form);
  return json;
}

DynamoEndpointHandler make_indexer_query_handler(uint64_t instance_id, uint32_t dp_rank,
                                                 IndexerQuery query,
                                                 IndexerQueryEndpointOptions options,
                                                 DynamoRequestDispatcher& dispatcher) {
  return [instance_id, dp_rank, query = std::move(query), options, &dispatcher](
             std::string body, const std::shared_ptr<CallHomeStream>& stream) {
    // The answer is the bare response, not wrapped in Annotated; one item, then the end.
    stream->send_item(
        answer_indexer_query(body, instance_id, dp_rank, query, options, dispatcher.metrics()));
    stream->complete();
  };
}

void serve_dynamo_worker(DynamoRequestDispatcher& dispatcher, uint64_t instance_id,
                         WorkerBackend& worker, GenerateEndpointOptions generate,
                         const std::vector<IndexerQuery>& query_per_rank,
                         const IndexerQueryEndpointOptions& query_options) {
  dispatcher.register_endpoint(instance_id, "generate",
                               make_generate_handler(worker, generate, dispatcher));
  for (size_t rank = 0; rank < query_per_rank.size(); ++rank) {
    if (!query_per_rank[rank]) continue;
    dispatcher.register_endpoint(
        instance_id, "worker_kv_indexer_query_dp" + std::to_string(rank),
        make_indexer_query_handler(instance_id, static_cast<uint32_t>(rank), query_per_rank[rank],
                                   query_options, dispatcher));
  }
}

}  // namespace kvmock
