#include "core/common/flat_hash_map.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace kvmock {
namespace {

TEST(FlatHashMap, InsertFindAndEraseOneKey) {
  FlatHashMap<uint64_t, uint32_t> map;
  EXPECT_EQ(map.find(5), nullptr);
  EXPECT_TRUE(map.try_emplace(5, 50).second);
  ASSERT_NE(map.find(5), nullptr);
  EXPECT_EQ(*map.find(5), 50u);
  EXPECT_EQ(map.size(), 1u);
  EXPECT_TRUE(map.erase(5));
  EXPECT_FALSE(map.erase(5));
  EXPECT_EQ(map.find(5), nullptr);
  EXPECT_TRUE(map.empty());
}

TEST(FlatHashMap, TryEmplaceKeepsTheExistingValue) {
  FlatHashMap<uint64_t, uint32_t> map;
  map.try_emplace(0, 1);  // zero is an ordinary key
  const auto [value, inserted] = map.try_emplace(0, 2);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(*value, 1u);
  ++map[0];
  ++map[9];
  EXPECT_EQ(*map.find(0), 2u);
  EXPECT_EQ(*map.find(9), 1u);
}

TEST(FlatHashMap, ClearKeepsCapacityAndForgetsKeys) {
  FlatHashMap<uint64_t, uint32_t> map;
  for (uint64_t i = 0; i < 100; ++i) map.try_emplace(i, 1);
  const size_t capacity = map.capacity();
  map.clear();
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.capacity(), capacity);
  EXPECT_FALSE(map.contains(42));
  map.release();
  EXPECT_EQ(map.capacity(), 0u);
  EXPECT_FALSE(map.contains(42));
}

TEST(FlatHashMap, ForEachVisitsEveryElementOnce) {
  FlatHashMap<uint64_t, uint32_t> map;
  for (uint64_t i = 1; i <= 50; ++i) map.try_emplace(i * 1000, static_cast<uint32_t>(i));
  uint64_t key_sum = 0;
  uint64_t value_sum = 0;
  map.for_each([&](uint64_t key, uint32_t value) {
    key_sum += key;
    value_sum += value;
  });
  EXPECT_EQ(key_sum, 1275000u);
  EXPECT_EQ(value_sum, 1275u);
}

// Keys that share a home slot stress the backward-shift deletion: every surviving key must
// stay reachable whatever order keys leave in.
TEST(FlatHashMap, MatchesStdUnorderedMapUnderRandomChurn) {
  std::mt19937_64 rng(11);
  FlatHashMap<uint64_t, uint64_t> flat;
  std::unordered_map<uint64_t, uint64_t> reference;
  for (int step = 0; step < 200000; ++step) {
    const uint64_t key = rng() % 512;  // small key space: long probe runs, many erases
    switch (rng() % 3) {
      case 0:
        EXPECT_EQ(flat.try_emplace(key, step).second, reference.try_emplace(key, step).second);
        break;
      case 1:
        EXPECT_EQ(flat.erase(key), reference.erase(key) == 1);
        break;
      default: {
        auto it = reference.find(key);
        const uint64_t* found = flat.find(key);
        ASSERT_EQ(found != nullptr, it != reference.end());
        if (found != nullptr) {
          EXPECT_EQ(*found, it->second);
        }
      }
    }
    ASSERT_EQ(flat.size(), reference.size());
  }
  for (const auto& [key, value] : reference) {
    const uint64_t* found = flat.find(key);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(*found, value);
  }
}

TEST(FlatHashMap, ReserveAvoidsGrowth) {
  FlatHashMap<uint64_t, uint32_t> map;
  map.reserve(1000);
  const size_t capacity = map.capacity();
  EXPECT_GE(capacity * 3, 1000u * 4);
  for (uint64_t i = 0; i < 1000; ++i) map.try_emplace(i, 0);
  EXPECT_EQ(map.capacity(), capacity);
}

}  // namespace
}  // namespace kvmock
