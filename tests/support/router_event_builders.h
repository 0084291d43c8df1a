// Terse constructors of RouterEvents for tests. A block is written {block_hash, tokens_hash}.
#pragma once

#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

#include "core/events/router_event.h"

namespace kvmock::testing {

inline RouterEvent make_event(WorkerId worker, DpRank rank, KvEventData data, EventId id = 0,
                              StorageTier tier = StorageTier::kDevice) {
  RouterEvent event;
  event.worker_id = worker;
  event.storage_tier = tier;
  event.event.event_id = id;
  event.event.dp_rank = rank;
  event.event.data = std::move(data);
  return event;
}

inline StoreData store_data(std::optional<BlockHash> parent,
                            std::initializer_list<std::pair<BlockHash, uint64_t>> blocks) {
  StoreData data;
  data.parent_hash = parent;
  for (const auto& [block_hash, tokens_hash] : blocks) {
    data.blocks.push_back(StoredBlock{block_hash, tokens_hash, std::nullopt});
  }
  return data;
}

inline RouterEvent stored(WorkerId worker, DpRank rank, std::optional<BlockHash> parent,
                          std::initializer_list<std::pair<BlockHash, uint64_t>> blocks,
                          EventId id = 0) {
  return make_event(worker, rank, store_data(parent, blocks), id);
}

inline RouterEvent removed(WorkerId worker, DpRank rank, std::vector<BlockHash> hashes,
                           EventId id = 0) {
  return make_event(worker, rank, RemoveData{std::move(hashes)}, id);
}

inline RouterEvent cleared(WorkerId worker, DpRank rank, EventId id = 0) {
  return make_event(worker, rank, ClearData{}, id);
}

inline EventId event_id(const RouterEvent& event) { return event.event.event_id; }

}  // namespace kvmock::testing
