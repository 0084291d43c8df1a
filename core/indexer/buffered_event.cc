#include "core/indexer/buffered_event.h"

#include <variant>

namespace kvmock {

BufferedEvent::BufferedEvent(const RouterEvent& event)
    : event_id_(event.event.event_id), tier_(event.storage_tier) {
  if (const auto* store = std::get_if<StoreData>(&event.event.data)) {
    kind_ = Kind::kStore;
    parent_hash_ = store->parent_hash;
    start_position_ = store->start_position;
    hashes_.reserve(2 * store->blocks.size());
    for (size_t i = 0; i < store->blocks.size(); ++i) {
      const StoredBlock& block = store->blocks[i];
      hashes_.push_back(block.block_hash);
      hashes_.push_back(block.tokens_hash);
      if (block.mm_extra_info)
        multimodal_.emplace_back(static_cast<uint32_t>(i), *block.mm_extra_info);
    }
  } else if (const auto* remove = std::get_if<RemoveData>(&event.event.data)) {
    kind_ = Kind::kRemove;
    hashes_ = remove->block_hashes;
  }
}

RouterEvent BufferedEvent::expand(WorkerRank owner) const {
  RouterEvent out;
  out.worker_id = owner.worker_id;
  out.storage_tier = tier_;
  out.event.event_id = event_id_;
  out.event.dp_rank = owner.dp_rank;
  switch (kind_) {
    case Kind::kStore: {
      StoreData store;
      store.parent_hash = parent_hash_;
      store.start_position = start_position_;
      store.blocks.resize(hashes_.size() / 2);
      for (size_t i = 0; i < store.blocks.size(); ++i) {
        store.blocks[i].block_hash = hashes_[2 * i];
        store.blocks[i].tokens_hash = hashes_[2 * i + 1];
      }
      for (const auto& [index, info] : multimodal_) store.blocks[index].mm_extra_info = info;
      out.event.data = std::move(store);
      break;
    }
    case Kind::kRemove:
      out.event.data = RemoveData{hashes_};
      break;
    case Kind::kClear:
      out.event.data = ClearData{};
      break;
  }
  return out;
}

size_t BufferedEvent::heap_bytes() const {
  size_t bytes =
      hashes_.capacity() * sizeof(uint64_t) + multimodal_.capacity() * sizeof(multimodal_[0]);
  for (const auto& [index, info] : multimodal_) {
    bytes += info.mm_objects.capacity() * sizeof(MultimodalObject);
    for (const MultimodalObject& object : info.mm_objects) {
      bytes += object.offsets.capacity() * sizeof(object.offsets[0]);
    }
  }
  return bytes;
}

}  // namespace kvmock
