// Shape checks on a Stored event that every consumer applies the same way
// (docs/wire-formats.md#radix-tree): a chain cannot contain itself.
#pragma once

#include "core/events/router_event.h"

namespace kvmock {

// True if a block of `store` has block_hash == parent_hash (Dynamo's InvalidBlockSequence).
bool stores_own_parent(const StoreData& store);

// True if a block_hash appears twice among `store.blocks`.
bool has_repeated_block_hash(const StoreData& store);

}  // namespace kvmock
