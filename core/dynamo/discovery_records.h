// The discovery records of one kvmock worker as a Dynamo 1.0 worker writes them
// (docs/dynamo-discovery.md#records): its model card, its `generate` endpoint instance, one
// `worker_kv_indexer_query_dp{r}` instance per dp rank, and its two event channels. Keys
// and values are byte-exact; a discovery backend (etcd or files) stores them as given,
// all under the worker's lease.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dynamo/discovery_record.h"

namespace kvmock::dynamo {

// Which Dynamo release reads the records. Only the event-channel keys differ
// (docs/dynamo-discovery.md#releases; the 1.1 shape is unverified).
enum class DynamoRelease { k1_0, k1_1 };

// How the frontend reaches the worker's endpoints.
enum class RequestPlane { kTcp, kNats };

// Dynamo names the endpoints and topics below; they are not settings.
inline constexpr std::string_view kGenerateEndpoint = "generate";
inline constexpr std::string_view kIndexerQueryEndpointPrefix = "worker_kv_indexer_query_dp";
inline constexpr std::string_view kLoadMetricsTopic = "kv_metrics";

// What the records of one worker say: who it is, how the frontend reaches it, its model
// card, and where its events are published.
struct WorkerDiscoverySpec {
  std::string dynamo_namespace;  // e.g. "dynamo"
  std::string component;         // e.g. "backend"
  uint64_t instance_id = 0;      // the etcd lease id, or a random id with the file backend
  RequestPlane request_plane = RequestPlane::kTcp;
  // With RequestPlane::kTcp: the advertised "host:port" of the request listener (one per
  // process, shared by all workers). Ignored with kNats.
  std::string tcp_address;
  uint32_t data_parallel_size = 1;
  // The compact model card (model_card_json()), embedded in the Model record unchanged.
  std::string card_json;
  // The KV-event topic under the component; Dynamo 1.0's is "kv-events".
  std::string kv_events_topic = "kv-events";
  // When set, the event channels advertise a ZMQ PUB endpoint ("tcp://host:port") instead
  // of NATS subjects. Routers on the NATS event plane ignore these records either way.
  std::optional<std::string> zmq_event_endpoint;
  DynamoRelease release = DynamoRelease::k1_0;
};

// The records in the order Dynamo's mocker registers them (card, generate, query
// endpoints, event channels), so a backend that writes them in sequence behaves the same.
// Requires data_parallel_size >= 1 and a non-empty card_json.
std::vector<DiscoveryRecord> worker_discovery_records(const WorkerDiscoverySpec& spec);

// `{id:x}` as Dynamo prints ids in keys and addresses: lowercase hex, no padding, no 0x.
std::string instance_id_hex(uint64_t instance_id);

}  // namespace kvmock::dynamo
