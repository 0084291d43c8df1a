#include "core/pipeline/event_dedup.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::removed;
using testing::stored;

std::vector<BlockHash> removed_hashes(const std::optional<RouterEvent>& event) {
  return std::get<RemoveData>(event->event.data).block_hashes;
}

TEST(EventDedup, StoresAlwaysPassAndCountEachBlock) {
  EventDedup dedup;
  const RouterEvent store = stored(1, 0, std::nullopt, {{10, 100}, {11, 101}});
  EXPECT_EQ(dedup.filter(store), std::optional<RouterEvent>(store));
  EXPECT_EQ(dedup.filter(store), std::optional<RouterEvent>(store));
  EXPECT_EQ(dedup.refcount(10), 2u);
  EXPECT_EQ(dedup.refcount(11), 2u);
}

TEST(EventDedup, RemovePassesOnlyWhenTheLastCopyGoes) {
  EventDedup dedup;
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}})));
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}})));
  EXPECT_FALSE(dedup.filter(removed(1, 0, {10})).has_value());
  EXPECT_EQ(dedup.refcount(10), 1u);
  const auto second = dedup.filter(removed(1, 0, {10}));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(removed_hashes(second), std::vector<BlockHash>{10});
  EXPECT_EQ(dedup.refcount(10), 0u);
  EXPECT_EQ(dedup.counters().removes_dropped, 1u);
  EXPECT_EQ(dedup.counters().remove_hashes_dropped, 1u);
}

TEST(EventDedup, RemoveKeepsOnlyHashesWhoseLastCopyGoes) {
  EventDedup dedup;
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}, {11, 101}})));
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}})));
  const auto out = dedup.filter(removed(1, 0, {10, 11}));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(removed_hashes(out), std::vector<BlockHash>{11});
}

TEST(EventDedup, UnknownHashesPass) {
  EventDedup dedup;
  const auto out = dedup.filter(removed(1, 0, {42, 43}));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(removed_hashes(out), (std::vector<BlockHash>{42, 43}));
}

TEST(EventDedup, RemoveWithoutHashesIsDropped) {
  EventDedup dedup;
  EXPECT_FALSE(dedup.filter(removed(1, 0, {})).has_value());
}

TEST(EventDedup, ClearedPassesAndResetsEveryCount) {
  EventDedup dedup;
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}})));
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}})));
  EXPECT_TRUE(dedup.filter(cleared(1, 0)).has_value());
  EXPECT_EQ(dedup.refcount(10), 0u);
  // After the reset a single remove passes (as an unknown hash).
  EXPECT_TRUE(dedup.filter(removed(1, 0, {10})).has_value());
}

TEST(EventDedup, StoreReferencingItselfAsParentIsDroppedAndNotCounted) {
  EventDedup dedup;
  EXPECT_FALSE(dedup.filter(stored(1, 0, 11, {{10, 100}, {11, 101}})).has_value());
  EXPECT_EQ(dedup.counters().stores_dropped_self_parent, 1u);
  EXPECT_EQ(dedup.refcount(10), 0u);
}

TEST(EventDedup, StoreRepeatingAHashIsDroppedAndNotCounted) {
  EventDedup dedup;
  EXPECT_FALSE(
      dedup.filter(stored(1, 0, std::nullopt, {{10, 100}, {11, 101}, {10, 102}})).has_value());
  EXPECT_EQ(dedup.counters().stores_dropped_repeated_hash, 1u);
  EXPECT_EQ(dedup.refcount(10), 0u);
  EXPECT_EQ(dedup.refcount(11), 0u);
}

TEST(EventDedup, CopiesInDifferentTiersAreCountedApart) {
  EventDedup dedup;
  ASSERT_TRUE(dedup.filter(stored(1, 0, std::nullopt, {{10, 100}})));
  RouterEvent host = stored(1, 0, std::nullopt, {{10, 100}});
  host.storage_tier = StorageTier::kHostPinned;
  ASSERT_TRUE(dedup.filter(host));
  EXPECT_EQ(dedup.refcount(10, StorageTier::kDevice), 1u);
  EXPECT_EQ(dedup.refcount(10, StorageTier::kHostPinned), 1u);
  // Evicting the device copy is news even though a host copy remains.
  EXPECT_TRUE(dedup.filter(removed(1, 0, {10})).has_value());
}

}  // namespace
}  // namespace kvmock
