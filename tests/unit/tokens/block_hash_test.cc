#include "core/tokens/block_hash.h"

#include <gtest/gtest.h>

#include <numeric>

namespace kvmock {
namespace {

// Golden values: tests/data/README.md (copied from the shared test vectors).

TEST(BlockHash, RawBytesWithSeed1337MatchDynamoTestVector) {
  EXPECT_EQ(xxh3_64(std::string_view("test data"), kBlockHashSeed), 13226331709069118873ull);
}

TEST(BlockHash, TokensAreHashedAsU32LittleEndian) {
  const std::vector<TokenId> tokens{0, 1, 2, 3};
  EXPECT_EQ(tokens_hash(tokens), 9143094415614847814ull);
  EXPECT_EQ(tokens_hashes(tokens, 4), std::vector<uint64_t>{9143094415614847814ull});
}

TEST(BlockHash, TwoBlocksGiveContentAndChainedSequenceHashes) {
  std::vector<TokenId> tokens(8);
  std::iota(tokens.begin(), tokens.end(), 1);
  const auto content = tokens_hashes(tokens, 4);
  EXPECT_EQ(content, (std::vector<uint64_t>{14643705804678351452ull, 16777012769546811212ull}));
  EXPECT_EQ(sequence_hashes(content),
            (std::vector<uint64_t>{14643705804678351452ull, 4945711292740353085ull}));
}

TEST(BlockHash, DesignCheckVectorMatches) {
  const std::vector<TokenId> tokens{11, 22, 33, 44, 55, 66, 77, 88};
  const auto content = tokens_hashes(tokens, 4);
  EXPECT_EQ(content, (std::vector<uint64_t>{4117275816416024698ull, 6081346995852963768ull}));
  EXPECT_EQ(sequence_hashes(content),
            (std::vector<uint64_t>{4117275816416024698ull, 5947898228081096063ull}));
}

TEST(BlockHash, SequenceChainOfArbitraryValues) {
  const std::vector<uint64_t> content{11, 22, 33};
  EXPECT_EQ(sequence_hashes(content),
            (std::vector<uint64_t>{11, 750553365844651409ull, 3257565445809651757ull}));
}

TEST(BlockHash, TrailingPartialBlockIsNotHashed) {
  const std::vector<TokenId> tokens{0, 1, 2, 3, 4, 5};
  EXPECT_EQ(tokens_hashes(tokens, 4).size(), 1u);
  EXPECT_TRUE(tokens_hashes(tokens, 0).empty());
  EXPECT_TRUE(tokens_hashes(std::vector<TokenId>{1, 2}, 4).empty());
}

TEST(BlockHash, LoraNameSaltsTheSeed) {
  EXPECT_EQ(block_hash_seed(), 1337u);
  EXPECT_EQ(block_hash_seed("adapter-a"), 8842669519798868182ull);
  const std::vector<TokenId> tokens{0, 1, 2, 3};
  EXPECT_EQ(tokens_hash(tokens, block_hash_seed("adapter-a")), 6665157333201000639ull);
}

TEST(BlockHash, CacheSaltSaltsTheSeedWithSeedOne) {
  EXPECT_EQ(block_hash_seed({}, "tenant-a"), 1948188790972764086ull);
  EXPECT_EQ(block_hash_seed("adapter-a", "tenant-a"), 10790858310771630931ull);
  const std::vector<TokenId> tokens{0, 1, 2, 3};
  EXPECT_EQ(tokens_hash(tokens, block_hash_seed({}, "tenant-a")), 17009624042690211646ull);
}

TEST(BlockHash, EmptySaltsAreAbsent) { EXPECT_EQ(block_hash_seed("", ""), kBlockHashSeed); }

TEST(BlockHash, MultimodalHashesJoinTheBlockTheyOverlap) {
  const std::vector<TokenId> tokens{0, 1, 2, 3};
  const std::vector<uint64_t> mm{42};
  const std::span<const TokenId> all(tokens);
  EXPECT_EQ(tokens_hash(all.subspan(0, 2), kBlockHashSeed, mm), 6100948656312251355ull);
  EXPECT_EQ(tokens_hash(all.subspan(2, 2)), 10731123482949079648ull);
}

TEST(BlockHash, MultimodalHashOrderDoesNotMatter) {
  const std::vector<TokenId> tokens{5, 6};
  const std::vector<uint64_t> a{3, 1, 2};
  const std::vector<uint64_t> b{1, 2, 3};
  EXPECT_EQ(tokens_hash(tokens, kBlockHashSeed, a), tokens_hash(tokens, kBlockHashSeed, b));
  EXPECT_NE(tokens_hash(tokens, kBlockHashSeed, a), tokens_hash(tokens));
}

TEST(BlockHash, MultimodalIdentifierOf64HexDigitsUsesItsFirst16) {
  const std::string hex(64, 'a');
  EXPECT_EQ(hash_mm_identifier(hex), 0xaaaaaaaaaaaaaaaaull);
  EXPECT_EQ(hash_mm_identifier("image-1"), xxh3_64(std::string_view("image-1"), 0));
  EXPECT_EQ(hash_mm_identifier(std::string(63, 'a')), xxh3_64(std::string(63, 'a'), 0));
}

}  // namespace
}  // namespace kvmock
