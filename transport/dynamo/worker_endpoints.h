// The endpoints a mock worker serves on Dynamo's request plane
// (docs/wire-formats.md#dynamo-generate-items and #indexer-query):
//
//   generate                       PreprocessedRequest in; one LLMEngineOutput item per
//                                  token out, finish_reason and completion_usage (with
//                                  prompt_tokens_details.cached_tokens) on the last item
//   worker_kv_indexer_query_dp{r}  WorkerKvQueryRequest in; one bare WorkerKvQueryResponse
//                                  item out (the dp rank is the endpoint's)
//
// serve_dynamo_worker() registers both with a dispatcher, so the TCP and the NATS intakes
// share them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/events/kv_query_codec.h"
#include "core/events/router_event.h"
#include "transport/dynamo/request_dispatcher.h"
#include "transport/http/worker_backend.h"

namespace kvmock {

struct GenerateEndpointOptions {
  // Used when stop_conditions.max_tokens is null (a client that gave no limit).
  uint32_t default_max_tokens = 16;
  uint32_t data_parallel_size = 1;  // routing.dp_rank must be below it
};

using IndexerQuery = std::function<WorkerKvQueryResponse(const WorkerKvQueryRequest&)>;

struct IndexerQueryEndpointOptions {
  QueryResponseForm form = QueryResponseForm::kBareEventLists;  // Dynamo 1.0
  RouterEventFieldSet field_set;
  // The largest answer item: longer answers become an Error saying so. By default what
  // fits in one two-part message of Dynamo's default size.
  size_t max_answer_bytes = dynamo::kDefaultMaxMessageBytes - 64;
};

// The query answer form of a Dynamo release: "1.0" bare event lists, "1.1" (and later)
// the struct with last_event_id. Errors: "bad_release".
Result<QueryResponseForm> query_form_for_release(std::string_view release);

// The generate handler of `worker` (which must outlive the dispatcher's use of it).
DynamoEndpointHandler make_generate_handler(WorkerBackend& worker, GenerateEndpointOptions options,
                                            DynamoRequestDispatcher& dispatcher);

// The JSON answer to one query body for `instance_id`'s engine `dp_rank`, at most
// options.max_answer_bytes long. Counted in kvmock_indexer_queries_total{result}.
std::string answer_indexer_query(std::string_view body, uint64_t instance_id, uint32_t dp_rank,
                                 const IndexerQuery& query,
                                 const IndexerQueryEndpointOptions& options,
                                 MetricsRegistry& metrics);

DynamoEndpointHandler make_indexer_query_handler(uint64_t instance_id, uint32_t dp_rank,
                                                 IndexerQuery query,
                                                 IndexerQueryEndpointOptions options,
                                                 DynamoRequestDispatcher& dispatcher);

// Registers "generate" and, for each rank r with a query function,
// "worker_kv_indexer_query_dp{r}" for `instance_id`.
void serve_dynamo_worker(DynamoRequestDispatcher& dispatcher, uint64_t instance_id,
                         WorkerBackend& worker, GenerateEndpointOptions generate,
                         const std::vector<IndexerQuery>& query_per_rank,
                         const IndexerQueryEndpointOptions& query_options);

}  // namespace kvmock
