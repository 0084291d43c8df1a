#include "core/events/engine_event_converter.h"

#include <gtest/gtest.h>

#include <numeric>

namespace kvmock {
namespace {

std::vector<TokenId> iota_tokens(size_t n, TokenId first = 1) {
  std::vector<TokenId> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

EngineBlockStored stored(std::vector<uint64_t> hashes, std::optional<uint64_t> parent,
                         uint32_t block_size, TokenId first_token = 1) {
  EngineBlockStored s;
  s.token_ids = iota_tokens(hashes.size() * block_size, first_token);
  s.block_hashes = std::move(hashes);
  s.parent_block_hash = parent;
  s.block_size = block_size;
  s.medium = "GPU";
  return s;
}

ConversionOptions options(uint32_t block_size) {
  ConversionOptions o;
  o.worker_id = 42;
  o.block_size = block_size;
  return o;
}

TEST(EngineEventConverter, StoredBlocksGetTokensHashRecomputedAtTheRelayBlockSize) {
  EngineBatch batch;
  batch.dp_rank = 3;
  batch.events.push_back(stored({0xaaa, 0xbbb}, 0x999, 4));
  const ConvertedBatch out = convert_engine_batch(batch, options(4));
  ASSERT_TRUE(out.issues.empty());
  ASSERT_EQ(out.events.size(), 1u);
  const RouterEvent& e = out.events[0];
  EXPECT_EQ(e.worker_id, 42u);
  EXPECT_EQ(e.event.dp_rank, 3u);
  EXPECT_EQ(e.event.event_id, 0u);
  EXPECT_EQ(e.storage_tier, StorageTier::kDevice);
  const auto& data = std::get<StoreData>(e.event.data);
  EXPECT_EQ(data.parent_hash, std::optional<uint64_t>(0x999));
  ASSERT_EQ(data.blocks.size(), 2u);
  EXPECT_EQ(data.blocks[0].block_hash, 0xaaau);
  EXPECT_EQ(data.blocks[1].block_hash, 0xbbbu);
  // tokens 1..8 in blocks of 4: golden content hashes.
  EXPECT_EQ(data.blocks[0].tokens_hash, 14643705804678351452ull);
  EXPECT_EQ(data.blocks[1].tokens_hash, 16777012769546811212ull);
  EXPECT_FALSE(data.blocks[0].mm_extra_info.has_value());
}

TEST(EngineEventConverter, TooFewTokenIdsDropTheStoreAndReportIt) {
  // The shape of the vllm-positional-int golden vector: 2 token ids for 2 blocks of 16.
  EngineBatch batch;
  EngineBlockStored s = stored({33, 34}, 32, 16);
  s.token_ids = {1, 2};
  batch.events.push_back(s);
  EngineBlockRemoved r;
  r.block_hashes = {34};
  r.medium = "STORAGE";
  batch.events.push_back(r);
  const ConvertedBatch out = convert_engine_batch(batch, options(16));
  ASSERT_EQ(out.issues.size(), 1u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kTokenCountMismatch);
  EXPECT_EQ(out.issues[0].event_index, 0u);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].storage_tier, StorageTier::kDisk);
  EXPECT_EQ(std::get<RemoveData>(out.events[0].event.data).block_hashes, std::vector<uint64_t>{34});
}

TEST(EngineEventConverter, BlockSizeMismatchEndsTheBatch) {
  EngineBatch batch;
  batch.events.push_back(stored({1}, std::nullopt, 16));
  batch.events.push_back(stored({2}, 1, 32));
  batch.events.push_back(stored({3}, 2, 16));
  batch.events.push_back(EngineAllBlocksCleared{});
  const ConvertedBatch out = convert_engine_batch(batch, options(16));
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_EQ(out.issues.size(), 3u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kBlockSizeMismatch);
  EXPECT_EQ(out.issues[0].event_index, 1u);
  EXPECT_EQ(out.issues[1].kind, ConversionIssueKind::kSkippedAfterMismatch);
  EXPECT_EQ(out.issues[2].kind, ConversionIssueKind::kSkippedAfterMismatch);
}

TEST(EngineEventConverter, SelfReferencingStoreIsDropped) {
  EngineBatch batch;
  batch.events.push_back(stored({5, 6}, 6, 4));
  const ConvertedBatch out = convert_engine_batch(batch, options(4));
  EXPECT_TRUE(out.events.empty());
  ASSERT_EQ(out.issues.size(), 1u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kSelfParent);
}

TEST(EngineEventConverter, RepeatedHashInOneStoreIsDropped) {
  EngineBatch batch;
  batch.events.push_back(stored({5, 6, 5}, std::nullopt, 4));
  std::vector<uint64_t> many(40);
  std::iota(many.begin(), many.end(), 100);
  many.back() = 100;  // exercise the hashed path for long stores too
  batch.events.push_back(stored(many, std::nullopt, 4));
  const ConvertedBatch out = convert_engine_batch(batch, options(4));
  EXPECT_TRUE(out.events.empty());
  ASSERT_EQ(out.issues.size(), 2u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kDuplicateHash);
  EXPECT_EQ(out.issues[1].kind, ConversionIssueKind::kDuplicateHash);
}

// Stores of up to 32 blocks are checked with a small hash table: values that fall in one
// slot are told apart, and a repeat is found wherever it sits.
TEST(EngineEventConverter, RepeatedHashIsFoundAmongHashesThatShareATableSlot) {
  std::vector<uint64_t> same_slot;  // 32 distinct values with equal top bits once mixed
  for (uint64_t h = 1; same_slot.size() < 32; ++h) {
    if (((h * 0x9e3779b97f4a7c15ull) >> 58) == 63) same_slot.push_back(h);
  }
  EngineBatch distinct;
  distinct.events.push_back(stored(same_slot, std::nullopt, 4));
  const ConvertedBatch kept = convert_engine_batch(distinct, options(4));
  EXPECT_TRUE(kept.issues.empty());
  ASSERT_EQ(kept.events.size(), 1u);
  EXPECT_EQ(std::get<StoreData>(kept.events[0].event.data).blocks.size(), 32u);

  for (size_t first = 0; first < 8; ++first) {
    for (size_t second = first + 1; second < 8; ++second) {
      std::vector<uint64_t> hashes(same_slot.begin(), same_slot.begin() + 8);
      hashes[second] = hashes[first];
      EngineBatch batch;
      batch.events.push_back(stored(hashes, std::nullopt, 4));
      const ConvertedBatch out = convert_engine_batch(batch, options(4));
      EXPECT_TRUE(out.events.empty()) << first << "," << second;
      ASSERT_EQ(out.issues.size(), 1u);
      EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kDuplicateHash);
    }
  }
}

TEST(EngineEventConverter, LoraNameAndCacheSaltSaltTheContentHash) {
  EngineBatch batch;
  EngineBlockStored s = stored({1}, std::nullopt, 4, 0);
  s.lora_name = "adapter-a";
  batch.events.push_back(s);
  s.lora_name.reset();
  s.cache_salt = "tenant-a";
  batch.events.push_back(s);
  const ConvertedBatch out = convert_engine_batch(batch, options(4));
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(std::get<StoreData>(out.events[0].event.data).blocks[0].tokens_hash,
            6665157333201000639ull);
  EXPECT_EQ(std::get<StoreData>(out.events[1].event.data).blocks[0].tokens_hash,
            17009624042690211646ull);
}

TEST(EngineEventConverter, MultimodalHashesEnterTheBlockHashAndTheExtraInfo) {
  EngineBatch batch;
  EngineBlockStored s = stored({1, 2}, std::nullopt, 2, 0);
  s.mm_hashes = {{42}, {}};
  batch.events.push_back(s);
  const ConvertedBatch out = convert_engine_batch(batch, options(2));
  ASSERT_EQ(out.events.size(), 1u);
  const auto& blocks = std::get<StoreData>(out.events[0].event.data).blocks;
  EXPECT_EQ(blocks[0].tokens_hash, 6100948656312251355ull);
  EXPECT_EQ(blocks[1].tokens_hash, 10731123482949079648ull);
  ASSERT_TRUE(blocks[0].mm_extra_info.has_value());
  EXPECT_EQ(blocks[0].mm_extra_info->mm_objects.at(0).mm_hash, 42u);
  EXPECT_FALSE(blocks[1].mm_extra_info.has_value());
}

TEST(EngineEventConverter, MediumMapsToStorageTier) {
  EXPECT_EQ(storage_tier_for_medium("GPU"), StorageTier::kDevice);
  EXPECT_EQ(storage_tier_for_medium("gpu"), StorageTier::kDevice);
  EXPECT_EQ(storage_tier_for_medium("CPU"), StorageTier::kHostPinned);
  EXPECT_EQ(storage_tier_for_medium("CPU_PINNED"), StorageTier::kHostPinned);
  EXPECT_EQ(storage_tier_for_medium("STORAGE"), StorageTier::kDisk);
  EXPECT_EQ(storage_tier_for_medium("DISK"), StorageTier::kDisk);
  EXPECT_EQ(storage_tier_for_medium("EXTERNAL"), StorageTier::kExternal);
  EXPECT_EQ(storage_tier_for_medium("TAPE"), std::nullopt);
}

TEST(EngineEventConverter, UnknownMediumIsConvertedAsDeviceAndReported) {
  EngineBatch batch;
  EngineBlockRemoved r;
  r.block_hashes = {9};
  r.medium = "TAPE";
  batch.events.push_back(r);
  const ConvertedBatch out = convert_engine_batch(batch, options(4));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].storage_tier, StorageTier::kDevice);
  ASSERT_EQ(out.issues.size(), 1u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kUnknownMedium);
}

TEST(EngineEventConverter, MissingOrNegativeDpRankUsesTheDefault) {
  EngineBatch batch;
  batch.events.push_back(EngineAllBlocksCleared{});
  ConversionOptions o = options(4);
  o.default_dp_rank = 2;
  EXPECT_EQ(convert_engine_batch(batch, o).events.at(0).event.dp_rank, 2u);
  batch.dp_rank = -1;
  const ConvertedBatch out = convert_engine_batch(batch, o);
  EXPECT_EQ(out.events.at(0).event.dp_rank, 2u);
  ASSERT_EQ(out.issues.size(), 1u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kBadDpRank);
  EXPECT_TRUE(is_clear(out.events[0].event.data));
}

TEST(EngineEventConverter, EmptyStoresAndRemovesAreDropped) {
  EngineBatch batch;
  batch.events.push_back(stored({}, std::nullopt, 4));
  batch.events.push_back(EngineBlockRemoved{});
  const ConvertedBatch out = convert_engine_batch(batch, options(4));
  EXPECT_TRUE(out.events.empty());
  ASSERT_EQ(out.issues.size(), 2u);
  EXPECT_EQ(out.issues[0].kind, ConversionIssueKind::kEmptyEvent);
  EXPECT_EQ(out.issues[1].kind, ConversionIssueKind::kEmptyEvent);
}

TEST(EngineEventConverter, CountersAccumulateIssuesByReason) {
  EngineBatch batch;
  batch.events.push_back(stored({5, 6}, 6, 4));
  batch.events.push_back(stored({7}, std::nullopt, 4));
  ConversionCounters counters;
  counters.add(batch, convert_engine_batch(batch, options(4)));
  counters.add(batch, convert_engine_batch(batch, options(4)));
  EXPECT_EQ(counters.events_in, 4u);
  EXPECT_EQ(counters.events_out, 2u);
  EXPECT_EQ(counters.issues[static_cast<size_t>(ConversionIssueKind::kSelfParent)], 2u);
  EXPECT_EQ(conversion_issue_reason(ConversionIssueKind::kSelfParent), "self_parent");
}

}  // namespace
}  // namespace kvmock
