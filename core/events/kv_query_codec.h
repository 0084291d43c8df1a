// JSON codecs for the worker local-indexer recovery query
// (docs/wire-formats.md#indexer-query).
//
// Request: {"worker_id":N,"dp_rank":N,"start_event_id":N|null,"end_event_id":N|null}.
// Decoding: worker_id required; dp_rank defaults to 0 (older routers omit it); the
// event ids default to null; extra keys (supports_tree_dump_failed, kind, ...) are
// ignored.
//
// Response: externally tagged, PascalCase variant names:
//   {"Events":{"events":[RouterEvent...],"last_event_id":N}}
//   {"TreeDump":{"events":[...],"last_event_id":N}}
//   {"TooNew":{"requested_start":N,"requested_end":N,"newest_available":N}}
//   {"InvalidRange":{"start_id":N,"end_id":N}}
//   {"Error":"message"}
// Events use the router-event JSON of router_event_codec.h. Decoding also accepts the
// pre-watermark forms {"Events":[...]} (last_event_id = id of the last event, 0 when
// empty) and {"TreeDump":[...]} (last_event_id = 0), and ignores unknown keys inside
// variants (e.g. the newest "reset_scope"). Unknown variants are "bad_value".
#pragma once

#include <string>
#include <string_view>

#include "core/common/result.h"
#include "core/events/router_event.h"

namespace kvmock {

// Appends the JSON text of `request` to `out`.
void encode_worker_kv_query_request_json(const WorkerKvQueryRequest& request, std::string& out);
std::string encode_worker_kv_query_request_json(const WorkerKvQueryRequest& request);
Result<WorkerKvQueryRequest> decode_worker_kv_query_request_json(std::string_view json);

// How Events and TreeDump carry their events. Dynamo 1.0 routers parse only the bare
// list ({"Events":[...]}); from 1.1 they parse only the struct with the watermark
// ({"Events":{"events":[...],"last_event_id":N}}).
enum class QueryResponseForm { kWithLastEventId, kBareEventLists };

// Appends the JSON text of `response` to `out`; `fields` applies to the events inside.
void encode_worker_kv_query_response_json(
    const WorkerKvQueryResponse& response, const RouterEventFieldSet& fields, std::string& out,
    QueryResponseForm form = QueryResponseForm::kWithLastEventId);
std::string encode_worker_kv_query_response_json(const WorkerKvQueryResponse& response,
                                                 const RouterEventFieldSet& fields = {});
Result<WorkerKvQueryResponse> decode_worker_kv_query_response_json(std::string_view json);

}  // namespace kvmock
