#include "core/events/store_checks.h"

#include <cstdint>

#include "core/common/flat_hash_map.h"

namespace kvmock {

namespace {
// Up to this many blocks a pairwise scan beats building a set.
constexpr size_t kPairwiseLimit = 32;
}  // namespace

bool stores_own_parent(const StoreData& store) {
  if (!store.parent_hash) return false;
  for (const StoredBlock& block : store.blocks) {
    if (block.block_hash == *store.parent_hash) return true;
  }
  return false;
}

bool has_repeated_block_hash(const StoreData& store) {
  const auto& blocks = store.blocks;
  if (blocks.size() <= kPairwiseLimit) {
    for (size_t i = 1; i < blocks.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (blocks[i].block_hash == blocks[j].block_hash) return true;
      }
    }
    return false;
  }
  FlatHashMap<BlockHash, uint8_t> seen;
  seen.reserve(blocks.size());
  for (const StoredBlock& block : blocks) {
    if (!seen.try_emplace(block.block_hash, 1).second) return true;
  }
  return false;
}

}  // namespace kvmock
