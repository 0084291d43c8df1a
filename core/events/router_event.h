// The router-facing event model (Dynamo 1.0 family, docs/wire-formats.md#router-events):
// what a worker tells a KV-aware router about the blocks it holds, plus the load
// metric and the local-indexer query types. Plain values; codecs live beside them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kvmock {

using WorkerId = uint64_t;
using DpRank = uint32_t;
// An engine's identifier of a block: the prefix-chained sequence hash for mock
// workers, whatever the engine sends for relays. Opaque to the router.
using BlockHash = uint64_t;
using EventId = uint64_t;

enum class StorageTier : uint8_t { kDevice, kHostPinned, kDisk, kExternal };

std::string_view storage_tier_name(StorageTier tier);
std::optional<StorageTier> parse_storage_tier(std::string_view name);

struct MultimodalObject {
  uint64_t mm_hash = 0;
  std::vector<std::pair<uint64_t, uint64_t>> offsets;  // [start, end) token ranges
  bool operator==(const MultimodalObject&) const = default;
};

struct MultimodalExtraInfo {
  std::vector<MultimodalObject> mm_objects;
  bool operator==(const MultimodalExtraInfo&) const = default;
};

struct StoredBlock {
  BlockHash block_hash = 0;
  uint64_t tokens_hash = 0;  // content hash (core/tokens/block_hash.h); routers match on it
  std::optional<MultimodalExtraInfo> mm_extra_info;
  bool operator==(const StoredBlock&) const = default;
};

struct StoreData {
  std::optional<BlockHash> parent_hash;  // nullopt: the chain starts at the root
  std::vector<StoredBlock> blocks;       // consecutive, each the child of the previous
  std::optional<uint32_t> start_position;
  bool operator==(const StoreData&) const = default;
};

struct RemoveData {
  std::vector<BlockHash> block_hashes;
  bool operator==(const RemoveData&) const = default;
};

struct ClearData {
  bool operator==(const ClearData&) const = default;
};

using KvEventData = std::variant<StoreData, RemoveData, ClearData>;

struct KvCacheEvent {
  EventId event_id = 0;
  KvEventData data;
  DpRank dp_rank = 0;
  bool operator==(const KvCacheEvent&) const = default;
};

struct RouterEvent {
  WorkerId worker_id = 0;
  StorageTier storage_tier = StorageTier::kDevice;
  KvCacheEvent event;
  bool operator==(const RouterEvent&) const = default;
};

inline bool is_store(const KvEventData& d) { return std::holds_alternative<StoreData>(d); }
inline bool is_remove(const KvEventData& d) { return std::holds_alternative<RemoveData>(d); }
inline bool is_clear(const KvEventData& d) { return std::holds_alternative<ClearData>(d); }

// Which optional fields an encoder writes. Routers accept every combination; the
// default is the widest-compatible set (no residency_domain, no start_position).
struct RouterEventFieldSet {
  bool residency_domain = false;  // writes "residency_domain":"worker"
  bool start_position = false;    // writes "start_position" (null when unset)
};

// Worker load metric, published on `namespace.{ns}.kv_metrics`.
struct ActiveLoad {
  WorkerId worker_id = 0;
  DpRank dp_rank = 0;
  std::optional<uint64_t> active_decode_blocks;
  std::optional<uint64_t> active_prefill_tokens;  // router-originated only; workers send null
  std::optional<uint64_t> kv_used_blocks;
  bool operator==(const ActiveLoad&) const = default;
};

// The event-plane envelope around every NATS core publish.
struct EventEnvelope {
  uint64_t publisher_id = 0;
  uint64_t sequence = 0;      // per publisher, from 0
  uint64_t published_at = 0;  // unix ms
  std::string topic;
  std::vector<uint8_t> payload;  // msgpack-named event
  bool operator==(const EventEnvelope&) const = default;
};

// Local-indexer recovery query (docs/wire-formats.md#indexer-query).
struct WorkerKvQueryRequest {
  WorkerId worker_id = 0;
  DpRank dp_rank = 0;
  std::optional<EventId> start_event_id;
  std::optional<EventId> end_event_id;
  bool operator==(const WorkerKvQueryRequest&) const = default;
};

struct QueryEvents {
  std::vector<RouterEvent> events;
  EventId last_event_id = 0;
  bool operator==(const QueryEvents&) const = default;
};
struct QueryTreeDump {
  std::vector<RouterEvent> events;  // synthetic ids 0,1,2,... all Stored, parents first
  EventId last_event_id = 0;
  bool operator==(const QueryTreeDump&) const = default;
};
struct QueryTooNew {
  EventId requested_start = 0;
  EventId requested_end = 0;
  EventId newest_available = 0;
  bool operator==(const QueryTooNew&) const = default;
};
struct QueryInvalidRange {
  EventId start_id = 0;
  EventId end_id = 0;
  bool operator==(const QueryInvalidRange&) const = default;
};
struct QueryError {
  std::string message;
  bool operator==(const QueryError&) const = default;
};

using WorkerKvQueryResponse =
    std::variant<QueryEvents, QueryTreeDump, QueryTooNew, QueryInvalidRange, QueryError>;

}  // namespace kvmock
