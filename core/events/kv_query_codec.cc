#include "core/events/kv_query_codec.h"

#include <variant>

#include "core/events/codec_support.h"
#include "core/events/router_event_codec.h"
#include "core/events/router_event_node.h"

namespace kvmock {
namespace {

using codec::JsonNode;
using codec::Kind;
using codec::Path;
using codec::path_error;

void write_events(const std::vector<RouterEvent>& events, EventId last_event_id,
                  const RouterEventFieldSet& fields, QueryResponseForm form, codec::JsonWriter& w) {
  if (form == QueryResponseForm::kBareEventLists) {
    w.begin_array(events.size());
    for (const RouterEvent& event : events) codec::write_router_event(event, fields, w);
    w.end_array();
    return;
  }
  w.begin_map(2);
  w.key("events");
  w.begin_array(events.size());
  for (const RouterEvent& event : events) codec::write_router_event(event, fields, w);
  w.end_array();
  w.key("last_event_id");
  w.u64(last_event_id);
  w.end_map();
}

Result<uint64_t> read_required_u64(const JsonNode& map, std::string_view key, const Path& path) {
  const Path field_path = path.field(key);
  KVMOCK_ASSIGN_OR_RETURN(JsonNode node, codec::require_field(map, key, field_path));
  return codec::read_u64(node, field_path);
}

Result<std::vector<RouterEvent>> read_event_list(const JsonNode& list, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(list, Kind::kArray, path));
  std::vector<RouterEvent> events;
  const size_t count = codec::node_size(list);
  events.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    KVMOCK_ASSIGN_OR_RETURN(RouterEvent event,
                            codec::read_router_event(codec::node_at(list, i), path.index(i)));
    events.push_back(std::move(event));
  }
  return events;
}

// The payload of Events / TreeDump: {"events":[...],"last_event_id":N}, or the old bare
// list. Returns the events and the watermark (nullopt for the old form).
struct EventBatch {
  std::vector<RouterEvent> events;
  std::optional<EventId> last_event_id;
};

Result<EventBatch> read_event_batch(const JsonNode& node, const Path& path) {
  EventBatch batch;
  if (codec::node_kind(node) == Kind::kArray) {
    KVMOCK_ASSIGN_OR_RETURN(batch.events, read_event_list(node, path));
    return batch;
  }
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(node, Kind::kMap, path));
  const Path events_path = path.field("events");
  KVMOCK_ASSIGN_OR_RETURN(JsonNode list, codec::require_field(node, "events", events_path));
  KVMOCK_ASSIGN_OR_RETURN(batch.events, read_event_list(list, events_path));
  KVMOCK_ASSIGN_OR_RETURN(batch.last_event_id, read_required_u64(node, "last_event_id", path));
  return batch;
}

}  // namespace

void encode_worker_kv_query_request_json(const WorkerKvQueryRequest& request, std::string& out) {
  codec::JsonWriter w(out);
  w.begin_map(4);
  w.key("worker_id");
  w.u64(request.worker_id);
  w.key("dp_rank");
  w.u64(request.dp_rank);
  w.key("start_event_id");
  w.optional_u64(request.start_event_id);
  w.key("end_event_id");
  w.optional_u64(request.end_event_id);
  w.end_map();
}

std::string encode_worker_kv_query_request_json(const WorkerKvQueryRequest& request) {
  std::string out;
  encode_worker_kv_query_request_json(request, out);
  return out;
}

Result<WorkerKvQueryRequest> decode_worker_kv_query_request_json(std::string_view json) {
  auto doc = codec::parse_json(json);
  if (!doc) return doc.error();
  const JsonNode root{&*doc};
  const Path root_path;
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(root, Kind::kMap, root_path));
  WorkerKvQueryRequest request;
  KVMOCK_ASSIGN_OR_RETURN(request.worker_id, read_required_u64(root, "worker_id", root_path));
  KVMOCK_ASSIGN_OR_RETURN(request.dp_rank,
                          codec::read_defaulted_u32(root, "dp_rank", root_path.field("dp_rank")));
  KVMOCK_ASSIGN_OR_RETURN(
      request.start_event_id,
      codec::read_optional_u64(root, "start_event_id", root_path.field("start_event_id")));
  KVMOCK_ASSIGN_OR_RETURN(
      request.end_event_id,
      codec::read_optional_u64(root, "end_event_id", root_path.field("end_event_id")));
  return request;
}

void encode_worker_kv_query_response_json(const WorkerKvQueryResponse& response,
                                          const RouterEventFieldSet& fields, std::string& out,
                                          QueryResponseForm form) {
  // serde's externally tagged enum: a one-entry map from the variant name to its payload.
  codec::JsonWriter w(out);
  w.begin_map(1);
  if (const auto* events = std::get_if<QueryEvents>(&response)) {
    w.key("Events");
    write_events(events->events, events->last_event_id, fields, form, w);
  } else if (const auto* dump = std::get_if<QueryTreeDump>(&response)) {
    w.key("TreeDump");
    write_events(dump->events, dump->last_event_id, fields, form, w);
  } else if (const auto* too_new = std::get_if<QueryTooNew>(&response)) {
    w.key("TooNew");
    w.begin_map(3);
    w.key("requested_start");
    w.u64(too_new->requested_start);
    w.key("requested_end");
    w.u64(too_new->requested_end);
    w.key("newest_available");
    w.u64(too_new->newest_available);
    w.end_map();
  } else if (const auto* invalid = std::get_if<QueryInvalidRange>(&response)) {
    w.key("InvalidRange");
    w.begin_map(2);
    w.key("start_id");
    w.u64(invalid->start_id);
    w.key("end_id");
    w.u64(invalid->end_id);
    w.end_map();
  } else {
    w.key("Error");
    w.str(std::get<QueryError>(response).message);
  }
  w.end_map();
}

std::string encode_worker_kv_query_response_json(const WorkerKvQueryResponse& response,
                                                 const RouterEventFieldSet& fields) {
  std::string out;
  encode_worker_kv_query_response_json(response, fields, out);
  return out;
}

Result<WorkerKvQueryResponse> decode_worker_kv_query_response_json(std::string_view json) {
  auto doc = codec::parse_json(json);
  if (!doc) return doc.error();
  const JsonNode root{&*doc};
  const Path root_path;
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(root, Kind::kMap, root_path));
  auto entry = codec::node_single_entry(root);
  if (!entry) return path_error("bad_value", root_path, "expected a map with exactly one key");
  const auto& [name, payload] = *entry;
  const Path path = root_path.field(name);

  if (name == "Events") {
    KVMOCK_ASSIGN_OR_RETURN(EventBatch batch, read_event_batch(payload, path));
    QueryEvents out;
    out.last_event_id =
        batch.last_event_id.value_or(batch.events.empty() ? 0 : batch.events.back().event.event_id);
    out.events = std::move(batch.events);
    return WorkerKvQueryResponse(std::move(out));
  }
  if (name == "TreeDump") {
    KVMOCK_ASSIGN_OR_RETURN(EventBatch batch, read_event_batch(payload, path));
    return WorkerKvQueryResponse(
        QueryTreeDump{std::move(batch.events), batch.last_event_id.value_or(0)});
  }
  if (name == "TooNew") {
    KVMOCK_RETURN_IF_ERROR(codec::expect_kind(payload, Kind::kMap, path));
    QueryTooNew out;
    KVMOCK_ASSIGN_OR_RETURN(out.requested_start,
                            read_required_u64(payload, "requested_start", path));
    KVMOCK_ASSIGN_OR_RETURN(out.requested_end, read_required_u64(payload, "requested_end", path));
    KVMOCK_ASSIGN_OR_RETURN(out.newest_available,
                            read_required_u64(payload, "newest_available", path));
    return WorkerKvQueryResponse(out);
  }
  if (name == "InvalidRange") {
    KVMOCK_RETURN_IF_ERROR(codec::expect_kind(payload, Kind::kMap, path));
    QueryInvalidRange out;
    KVMOCK_ASSIGN_OR_RETURN(out.start_id, read_required_u64(payload, "start_id", path));
    KVMOCK_ASSIGN_OR_RETURN(out.end_id, read_required_u64(payload, "end_id", path));
    return WorkerKvQueryResponse(out);
  }
  if (name == "Error") {
    KVMOCK_RETURN_IF_ERROR(codec::expect_kind(payload, Kind::kString, path));
    return WorkerKvQueryResponse(QueryError{std::string(codec::node_str(payload))});
  }
  return path_error("bad_value", root_path,
                    "unknown response variant \"" + std::string(name) + "\"");
}

}  // namespace kvmock
