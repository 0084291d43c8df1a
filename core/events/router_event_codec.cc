#include "core/events/router_event_codec.h"

#include <type_traits>
#include <variant>

#include "core/events/codec_support.h"
#include "core/events/router_event_node.h"

namespace kvmock {
namespace {

using codec::Kind;
using codec::Path;
using codec::path_error;

// --- Writing (shared by JSON and msgpack) ------------------------------------------------

template <class W>
void write_mm_extra_info(const std::optional<MultimodalExtraInfo>& info, W& w) {
  if (!info) {
    w.null();
    return;
  }
  w.begin_map(1);
  w.key("mm_objects");
  w.begin_array(info->mm_objects.size());
  for (const MultimodalObject& obj : info->mm_objects) {
    w.begin_map(2);
    w.key("mm_hash");
    w.u64(obj.mm_hash);
    w.key("offsets");
    w.begin_array(obj.offsets.size());
    for (const auto& [start, end] : obj.offsets) {
      w.begin_array(2);
      w.u64(start);
      w.u64(end);
      w.end_array();
    }
    w.end_array();
    w.end_map();
  }
  w.end_array();
  w.end_map();
}

template <class W>
void write_store_data(const StoreData& store, const RouterEventFieldSet& fields, W& w) {
  w.begin_map(fields.start_position ? 3 : 2);
  w.key("parent_hash");
  w.optional_u64(store.parent_hash);
  if (fields.start_position) {
    w.key("start_position");
    w.optional_u64(store.start_position);
  }
  w.key("blocks");
  w.begin_array(store.blocks.size());
  for (const StoredBlock& block : store.blocks) {
    w.begin_map(3);
    w.key("block_hash");
    w.u64(block.block_hash);
    w.key("tokens_hash");
    w.u64(block.tokens_hash);
    w.key("mm_extra_info");
    write_mm_extra_info(block.mm_extra_info, w);
    w.end_map();
  }
  w.end_array();
  w.end_map();
}

// KvCacheEventData, serde externally tagged: "cleared" or {"stored"|"removed": ...}.
template <class W>
void write_data(const KvEventData& data, const RouterEventFieldSet& fields, W& w) {
  if (const auto* store = std::get_if<StoreData>(&data)) {
    w.begin_map(1);
    w.key("stored");
    write_store_data(*store, fields, w);
    w.end_map();
  } else if (const auto* remove = std::get_if<RemoveData>(&data)) {
    w.begin_map(1);
    w.key("removed");
    w.begin_map(1);
    w.key("block_hashes");
    w.begin_array(remove->block_hashes.size());
    for (BlockHash h : remove->block_hashes) w.u64(h);
    w.end_array();
    w.end_map();
    w.end_map();
  } else {
    w.str("cleared");
  }
}

template <class W>
void write_router_event_impl(const RouterEvent& event, const RouterEventFieldSet& fields, W& w) {
  w.begin_map(fields.residency_domain ? 4 : 3);
  w.key("worker_id");
  w.u64(event.worker_id);
  w.key("storage_tier");
  w.str(storage_tier_name(event.storage_tier));
  if (fields.residency_domain) {
    w.key("residency_domain");
    w.str("worker");
  }
  w.key("event");
  w.begin_map(3);
  w.key("event_id");
  w.u64(event.event.event_id);
  w.key("data");
  write_data(event.event.data, fields, w);
  w.key("dp_rank");
  w.u64(event.event.dp_rank);
  w.end_map();
  w.end_map();
}

// --- Reading (shared by JSON and msgpack) ------------------------------------------------

template <class N>
Result<std::vector<uint64_t>> read_u64_array(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kArray, path));
  std::vector<uint64_t> out;
  const size_t size = codec::node_size(n);
  out.reserve(size);
  for (size_t i = 0; i < size; ++i) {
    const Path item = path.index(i);
    KVMOCK_ASSIGN_OR_RETURN(uint64_t v, codec::read_u64(codec::node_at(n, i), item));
    out.push_back(v);
  }
  return out;
}

template <class N>
Result<MultimodalObject> read_mm_object(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kMap, path));
  MultimodalObject obj;
  const Path hash_path = path.field("mm_hash");
  KVMOCK_ASSIGN_OR_RETURN(N hash, codec::require_field(n, "mm_hash", hash_path));
  KVMOCK_ASSIGN_OR_RETURN(obj.mm_hash, codec::read_u64(hash, hash_path));
  const Path offsets_path = path.field("offsets");
  KVMOCK_ASSIGN_OR_RETURN(N offsets, codec::require_field(n, "offsets", offsets_path));
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(offsets, Kind::kArray, offsets_path));
  const size_t count = codec::node_size(offsets);
  obj.offsets.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const Path range_path = offsets_path.index(i);
    KVMOCK_ASSIGN_OR_RETURN(std::vector<uint64_t> range,
                            read_u64_array(codec::node_at(offsets, i), range_path));
    if (range.size() != 2) {
      return path_error("bad_value", range_path, "expected a [start, end] pair");
    }
    obj.offsets.emplace_back(range[0], range[1]);
  }
  return obj;
}

template <class N>
Result<std::optional<MultimodalExtraInfo>> read_mm_extra_info(const N& block, const Path& path) {
  auto f = codec::node_find(block, "mm_extra_info");
  if (!f || codec::node_kind(*f) == Kind::kNull) return std::optional<MultimodalExtraInfo>();
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(*f, Kind::kMap, path));
  const Path objects_path = path.field("mm_objects");
  KVMOCK_ASSIGN_OR_RETURN(N objects, codec::require_field(*f, "mm_objects", objects_path));
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(objects, Kind::kArray, objects_path));
  MultimodalExtraInfo info;
  const size_t count = codec::node_size(objects);
  info.mm_objects.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    KVMOCK_ASSIGN_OR_RETURN(MultimodalObject obj,
                            read_mm_object(codec::node_at(objects, i), objects_path.index(i)));
    info.mm_objects.push_back(std::move(obj));
  }
  return std::optional<MultimodalExtraInfo>(std::move(info));
}

template <class N>
Result<StoredBlock> read_stored_block(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kMap, path));
  StoredBlock block;
  const Path block_hash_path = path.field("block_hash");
  KVMOCK_ASSIGN_OR_RETURN(N block_hash, codec::require_field(n, "block_hash", block_hash_path));
  KVMOCK_ASSIGN_OR_RETURN(block.block_hash, codec::read_u64(block_hash, block_hash_path));
  const Path tokens_hash_path = path.field("tokens_hash");
  KVMOCK_ASSIGN_OR_RETURN(N tokens_hash, codec::require_field(n, "tokens_hash", tokens_hash_path));
  KVMOCK_ASSIGN_OR_RETURN(block.tokens_hash, codec::read_u64(tokens_hash, tokens_hash_path));
  KVMOCK_ASSIGN_OR_RETURN(block.mm_extra_info, read_mm_extra_info(n, path.field("mm_extra_info")));
  return block;
}

template <class N>
Result<KvEventData> read_store_data(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kMap, path));
  StoreData store;
  KVMOCK_ASSIGN_OR_RETURN(store.parent_hash,
                          codec::read_optional_u64(n, "parent_hash", path.field("parent_hash")));
  KVMOCK_ASSIGN_OR_RETURN(
      store.start_position,
      codec::read_optional_u32(n, "start_position", path.field("start_position")));
  const Path blocks_path = path.field("blocks");
  KVMOCK_ASSIGN_OR_RETURN(N blocks, codec::require_field(n, "blocks", blocks_path));
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(blocks, Kind::kArray, blocks_path));
  const size_t count = codec::node_size(blocks);
  store.blocks.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    KVMOCK_ASSIGN_OR_RETURN(StoredBlock block,
                            read_stored_block(codec::node_at(blocks, i), blocks_path.index(i)));
    store.blocks.push_back(std::move(block));
  }
  return KvEventData(std::move(store));
}

template <class N>
Result<KvEventData> read_remove_data(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kMap, path));
  const Path hashes_path = path.field("block_hashes");
  KVMOCK_ASSIGN_OR_RETURN(N hashes, codec::require_field(n, "block_hashes", hashes_path));
  KVMOCK_ASSIGN_OR_RETURN(std::vector<uint64_t> list, read_u64_array(hashes, hashes_path));
  return KvEventData(RemoveData{std::move(list)});
}

// KvCacheEventData, serde externally tagged: "cleared" or {"stored"|"removed": ...}.
template <class N>
Result<KvEventData> read_event_data(const N& n, const Path& path) {
  const Kind kind = codec::node_kind(n);
  if (kind == Kind::kString) {
    const std::string_view name = codec::node_str(n);
    if (name == "cleared") return KvEventData(ClearData{});
    if (name == "stored" || name == "removed") {
      return path_error("bad_type", path, "variant \"" + std::string(name) + "\" needs a payload");
    }
    return path_error("bad_value", path, "unknown variant \"" + std::string(name) + "\"");
  }
  if (kind != Kind::kMap) {
    return path_error(
        "bad_type", path,
        "expected \"cleared\" or a single-key map, got " + std::string(codec::kind_name(kind)));
  }
  auto entry = codec::node_single_entry(n);
  if (!entry) return path_error("bad_value", path, "expected a map with exactly one string key");
  const auto& [name, payload] = *entry;
  if (name == "stored") return read_store_data(payload, path.field("stored"));
  if (name == "removed") return read_remove_data(payload, path.field("removed"));
  if (name == "cleared") {
    // serde accepts a unit variant spelled as {"cleared": null}.
    if (codec::node_kind(payload) != Kind::kNull) {
      return path_error("bad_type", path.field("cleared"), "expected null");
    }
    return KvEventData(ClearData{});
  }
  return path_error("bad_value", path, "unknown variant \"" + std::string(name) + "\"");
}

template <class N>
Result<KvCacheEvent> read_kv_cache_event(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kMap, path));
  KvCacheEvent event;
  const Path id_path = path.field("event_id");
  KVMOCK_ASSIGN_OR_RETURN(N id, codec::require_field(n, "event_id", id_path));
  KVMOCK_ASSIGN_OR_RETURN(event.event_id, codec::read_u64(id, id_path));
  const Path data_path = path.field("data");
  KVMOCK_ASSIGN_OR_RETURN(N data, codec::require_field(n, "data", data_path));
  KVMOCK_ASSIGN_OR_RETURN(event.data, read_event_data(data, data_path));
  KVMOCK_ASSIGN_OR_RETURN(event.dp_rank,
                          codec::read_defaulted_u32(n, "dp_rank", path.field("dp_rank")));
  return event;
}

template <class N>
Result<RouterEvent> read_router_event_impl(const N& n, const Path& path) {
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(n, Kind::kMap, path));
  RouterEvent event;
  const Path worker_path = path.field("worker_id");
  KVMOCK_ASSIGN_OR_RETURN(N worker, codec::require_field(n, "worker_id", worker_path));
  KVMOCK_ASSIGN_OR_RETURN(event.worker_id, codec::read_u64(worker, worker_path));

  if (auto tier = codec::node_find(n, "storage_tier")) {
    const Path tier_path = path.field("storage_tier");
    KVMOCK_RETURN_IF_ERROR(codec::expect_kind(*tier, Kind::kString, tier_path));
    auto parsed = parse_storage_tier(codec::node_str(*tier));
    if (!parsed) {
      return path_error("bad_value", tier_path,
                        "unknown storage tier \"" + std::string(codec::node_str(*tier)) + "\"");
    }
    event.storage_tier = *parsed;
  }

  // Dynamo drops events whose residency_domain is present but not a valid string.
  if (auto domain = codec::node_find(n, "residency_domain")) {
    const Path domain_path = path.field("residency_domain");
    KVMOCK_RETURN_IF_ERROR(codec::expect_kind(*domain, Kind::kString, domain_path));
    const std::string_view value = codec::node_str(*domain);
    if (value == "cache_owner") {
      return path_error("unsupported", domain_path, "cache_owner events are not modelled");
    }
    if (value != "worker") {
      return path_error("bad_value", domain_path,
                        "unknown residency domain \"" + std::string(value) + "\"");
    }
  }

  const Path event_path = path.field("event");
  KVMOCK_ASSIGN_OR_RETURN(N inner, codec::require_field(n, "event", event_path));
  KVMOCK_ASSIGN_OR_RETURN(event.event, read_kv_cache_event(inner, event_path));
  return event;
}

}  // namespace

namespace codec {

Result<RouterEvent> read_router_event(const JsonNode& node, const Path& path) {
  return read_router_event_impl(node, path);
}
Result<RouterEvent> read_router_event(const MsgNode& node, const Path& path) {
  return read_router_event_impl(node, path);
}

void write_router_event(const RouterEvent& event, const RouterEventFieldSet& fields,
                        JsonWriter& w) {
  write_router_event_impl(event, fields, w);
}

}  // namespace codec

void encode_router_event_json(const RouterEvent& event, const RouterEventFieldSet& fields,
                              std::string& out) {
  codec::JsonWriter w(out);
  write_router_event_impl(event, fields, w);
}

std::string encode_router_event_json(const RouterEvent& event, const RouterEventFieldSet& fields) {
  std::string out;
  size_t estimate = 160;
  if (const auto* store = std::get_if<StoreData>(&event.event.data)) {
    estimate += store->blocks.size() * 96;
  } else if (const auto* remove = std::get_if<RemoveData>(&event.event.data)) {
    estimate += remove->block_hashes.size() * 21;
  }
  out.reserve(estimate);
  encode_router_event_json(event, fields, out);
  return out;
}

Result<RouterEvent> decode_router_event_json(std::string_view json) {
  auto doc = codec::parse_json(json);
  if (!doc) return doc.error();
  return codec::read_router_event(codec::JsonNode{&*doc}, Path());
}

void encode_router_event_msgpack(const RouterEvent& event, const RouterEventFieldSet& fields,
                                 std::vector<uint8_t>& out) {
  codec::MsgpackWriter w(out);
  write_router_event_impl(event, fields, w);
}

std::vector<uint8_t> encode_router_event_msgpack(const RouterEvent& event,
                                                 const RouterEventFieldSet& fields) {
  std::vector<uint8_t> out;
  out.reserve(128);
  encode_router_event_msgpack(event, fields, out);
  return out;
}

Result<RouterEvent> decode_router_event_msgpack(std::span<const uint8_t> bytes) {
  auto handle = codec::unpack_msgpack(bytes);
  if (!handle) return handle.error();
  return codec::read_router_event(codec::MsgNode{&handle->get()}, Path());
}

}  // namespace kvmock
