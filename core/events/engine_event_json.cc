#include "core/events/engine_event_json.h"

#include <nlohmann/json.hpp>

namespace kvmock {
namespace {

using nlohmann::ordered_json;

template <typename T>
ordered_json optional_json(const std::optional<T>& value) {
  return value ? ordered_json(*value) : ordered_json(nullptr);
}

void add_fields(const EngineBlockStored& e, ordered_json& j) {
  j["type"] = "BlockStored";
  j["block_hashes"] = e.block_hashes;
  j["parent_block_hash"] = optional_json(e.parent_block_hash);
  j["token_ids"] = e.token_ids;
  j["block_size"] = e.block_size;
  j["lora_id"] = optional_json(e.lora_id);
  j["medium"] = optional_json(e.medium);
  j["lora_name"] = optional_json(e.lora_name);
  if (e.cache_salt) j["cache_salt"] = *e.cache_salt;
  bool any_mm = false;
  for (const auto& block : e.mm_hashes) any_mm |= !block.empty();
  if (any_mm) j["mm_hashes"] = e.mm_hashes;
  if (e.group_idx) j["group_idx"] = *e.group_idx;
  if (e.kv_cache_spec_kind) j["kv_cache_spec_kind"] = *e.kv_cache_spec_kind;
  if (e.kv_cache_spec_sliding_window) {
    j["kv_cache_spec_sliding_window"] = *e.kv_cache_spec_sliding_window;
  }
}

void add_fields(const EngineBlockRemoved& e, ordered_json& j) {
  j["type"] = "BlockRemoved";
  j["block_hashes"] = e.block_hashes;
  j["medium"] = optional_json(e.medium);
  if (e.group_idx) j["group_idx"] = *e.group_idx;
}

void add_fields(const EngineAllBlocksCleared&, ordered_json& j) { j["type"] = "AllBlocksCleared"; }

}  // namespace

std::string engine_event_json(const EngineBatch& batch, size_t index) {
  ordered_json j;
  j["kind"] = "engine";
  j["index"] = index;
  j["ts"] = batch.ts;
  j["dp_rank"] = optional_json(batch.dp_rank);
  j["encoding"] = batch.encoding == EngineEventEncoding::kMap ? "map" : "positional";
  std::visit([&j](const auto& event) { add_fields(event, j); }, batch.events.at(index));
  return j.dump();
}

}  // namespace kvmock
