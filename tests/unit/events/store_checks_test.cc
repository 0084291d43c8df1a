#include "core/events/store_checks.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::store_data;

TEST(StoreChecks, BlockEqualToTheParentIsItsOwnParent) {
  EXPECT_TRUE(stores_own_parent(store_data(11, {{10, 1}, {11, 2}})));
  EXPECT_FALSE(stores_own_parent(store_data(9, {{10, 1}, {11, 2}})));
  EXPECT_FALSE(stores_own_parent(store_data(std::nullopt, {{0, 1}})));
}

TEST(StoreChecks, RepeatedBlockHashIsFoundInShortAndLongEvents) {
  EXPECT_TRUE(has_repeated_block_hash(store_data(std::nullopt, {{10, 1}, {11, 2}, {10, 3}})));
  EXPECT_FALSE(has_repeated_block_hash(store_data(std::nullopt, {{10, 1}, {11, 1}})));
  StoreData long_store;
  for (uint64_t i = 0; i < 200; ++i) long_store.blocks.push_back({i, 0, std::nullopt});
  EXPECT_FALSE(has_repeated_block_hash(long_store));
  long_store.blocks.push_back({150, 0, std::nullopt});
  EXPECT_TRUE(has_repeated_block_hash(long_store));
}

}  // namespace
}  // namespace kvmock
