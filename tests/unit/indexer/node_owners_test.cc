#include "core/indexer/node_owners.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvmock {
namespace {

std::vector<OwnerEntry> entries(const NodeOwners& owners) { return {owners.begin(), owners.end()}; }

TEST(NodeOwners, StartsEmptyAndHoldsOneEntryInPlace) {
  NodeOwners owners;
  EXPECT_TRUE(owners.empty());
  owners.push_back({3, 30});
  EXPECT_EQ(owners.size(), 1u);
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{3, 30}}));
  owners.swap_remove(0);
  EXPECT_TRUE(owners.empty());
}

TEST(NodeOwners, KeepsInsertionOrderWhenASecondEntryArrives) {
  NodeOwners owners;
  owners.push_back({0, 10});
  owners.push_back({1, 11});
  owners.push_back({2, 12});
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{0, 10}, {1, 11}, {2, 12}}));
}

TEST(NodeOwners, SwapRemoveMovesTheLastEntryIntoTheHole) {
  NodeOwners owners;
  for (uint32_t i = 0; i < 4; ++i) owners.push_back({i, 10 + i});
  owners.swap_remove(1);
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{0, 10}, {3, 13}, {2, 12}}));
  owners.swap_remove(2);
  owners.swap_remove(0);
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{3, 13}}));
  owners.swap_remove(0);
  EXPECT_TRUE(owners.empty());
  // Empty again: the next entries start over, in order.
  owners.push_back({5, 15});
  owners.push_back({6, 16});
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{5, 15}, {6, 16}}));
}

TEST(NodeOwners, ClearEmptiesBothForms) {
  NodeOwners one;
  one.push_back({1, 1});
  one.clear();
  EXPECT_TRUE(one.empty());
  NodeOwners many;
  many.push_back({1, 1});
  many.push_back({2, 2});
  many.clear();
  EXPECT_TRUE(many.empty());
  many.push_back({7, 7});
  EXPECT_EQ(entries(many), (std::vector<OwnerEntry>{{7, 7}}));
}

TEST(NodeOwners, EntriesCanBeRewrittenThroughTheView) {
  NodeOwners owners;
  owners.push_back({1, 1});
  owners.view()[0].block_hash = 9;
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{1, 9}}));
  owners.push_back({2, 2});
  owners.view()[1].block_hash = 8;
  EXPECT_EQ(entries(owners), (std::vector<OwnerEntry>{{1, 9}, {2, 8}}));
}

TEST(NodeOwners, CopiesAreDeepAndMovesTakeTheEntries) {
  NodeOwners original;
  original.push_back({1, 1});
  original.push_back({2, 2});
  NodeOwners copy = original;
  copy.swap_remove(0);
  EXPECT_EQ(entries(original), (std::vector<OwnerEntry>{{1, 1}, {2, 2}}));
  EXPECT_EQ(entries(copy), (std::vector<OwnerEntry>{{2, 2}}));
  NodeOwners moved = std::move(original);
  EXPECT_EQ(entries(moved), (std::vector<OwnerEntry>{{1, 1}, {2, 2}}));
  copy = moved;
  EXPECT_EQ(entries(copy), entries(moved));
}

TEST(NodeOwners, OneEntryFitsInThreeWords) {
  // The point of the type: a node's single owner costs no heap block.
  EXPECT_EQ(sizeof(NodeOwners), 3 * sizeof(void*));
}

}  // namespace
}  // namespace kvmock
