#include "core/events/router_event_codec.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "tests/unit/events/codec_test_util.h"

namespace kvmock {
namespace {

using testing_util::from_hex;
using testing_util::golden_router_event;
using testing_util::kAllFields;
using testing_util::kGoldenRouterEventHex;
using testing_util::to_hex;

constexpr uint64_t kTwo63 = 1ull << 63;
constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();
constexpr StorageTier kAllTiers[] = {StorageTier::kDevice, StorageTier::kHostPinned,
                                     StorageTier::kDisk, StorageTier::kExternal};

RouterEvent removed_event(StorageTier tier) {
  RouterEvent e;
  e.worker_id = 7;
  e.storage_tier = tier;
  e.event.event_id = 3;
  e.event.dp_rank = 2;
  e.event.data = RemoveData{{9143094415614847814ull, 1, 0}};
  return e;
}

RouterEvent cleared_event(StorageTier tier) {
  RouterEvent e;
  e.worker_id = 7;
  e.storage_tier = tier;
  e.event.event_id = 2;
  e.event.data = ClearData{};
  return e;
}

RouterEvent multimodal_event() {
  RouterEvent e;
  e.worker_id = 12;
  e.event.event_id = 9;
  StoreData store;
  store.parent_hash = 77;
  MultimodalExtraInfo info;
  info.mm_objects.push_back(MultimodalObject{42, {{0, 16}, {20, 36}}});
  info.mm_objects.push_back(MultimodalObject{kMaxU64, {}});
  store.blocks.push_back(StoredBlock{1, 2, info});
  store.blocks.push_back(StoredBlock{3, 4, MultimodalExtraInfo{}});
  store.blocks.push_back(StoredBlock{5, 6, std::nullopt});
  e.event.data = store;
  return e;
}

// --- Golden vector ---------------------------------------------------------------------------

TEST(RouterEventCodec, GoldenMsgpackVectorIsReproducedByteForByte) {
  const auto bytes = encode_router_event_msgpack(golden_router_event(), kAllFields);
  EXPECT_EQ(bytes.size(), 190u);
  EXPECT_EQ(to_hex(bytes), kGoldenRouterEventHex);
}

TEST(RouterEventCodec, GoldenMsgpackVectorDecodesToTheExpectedEvent) {
  const auto bytes = from_hex(kGoldenRouterEventHex);
  auto decoded = decode_router_event_msgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, golden_router_event());
}

TEST(RouterEventCodec, DefaultFieldSetOmitsResidencyDomainAndStartPosition) {
  const auto bytes = encode_router_event_msgpack(golden_router_event());
  const std::string hex = to_hex(bytes);
  // 190 - ("residency_domain":"worker" = 24) - ("start_position":nil = 16)
  EXPECT_EQ(bytes.size(), 150u);
  EXPECT_EQ(bytes[0], 0x83);  // three top-level keys
  EXPECT_EQ(hex.find(to_hex(from_hex("b07265736964656e63795f646f6d61696e"))), std::string::npos);
  EXPECT_EQ(hex.find("73746172745f706f736974696f6e"), std::string::npos);
  auto decoded = decode_router_event_msgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, golden_router_event());
}

TEST(RouterEventCodec, MsgpackUsesMinimalUnsignedForms) {
  RouterEvent e = cleared_event(StorageTier::kDevice);
  e.worker_id = 0x7f;
  e.event.event_id = 0x80;
  e.event.dp_rank = 0x10000;
  const std::string hex = to_hex(encode_router_event_msgpack(e));
  EXPECT_NE(hex.find("a9776f726b65725f69647f"), std::string::npos);      // fixint
  EXPECT_NE(hex.find("a86576656e745f6964cc80"), std::string::npos);      // uint8
  EXPECT_NE(hex.find("a764705f72616e6bce00010000"), std::string::npos);  // uint32
  EXPECT_NE(hex.find("a464617461a7636c6561726564"), std::string::npos);  // "data":"cleared"
}

TEST(RouterEventCodec, EncodersAppendToTheCallersBuffer) {
  std::vector<uint8_t> bytes{0xaa};
  encode_router_event_msgpack(golden_router_event(), kAllFields, bytes);
  ASSERT_EQ(bytes.size(), 191u);
  EXPECT_EQ(bytes[0], 0xaa);
  EXPECT_EQ(bytes[1], 0x84);
  std::string text = "prefix";
  encode_router_event_json(golden_router_event(), {}, text);
  EXPECT_EQ(text.rfind("prefix{\"worker_id\":7,", 0), 0u);
}

// --- JSON examples of §1.5 --------------------------------------------------------------------

constexpr std::string_view kLatestJson =
    R"({"worker_id":7,"storage_tier":"device","residency_domain":"worker",)"
    R"("event":{"event_id":1,"data":{"stored":{"parent_hash":null,"start_position":null,)"
    R"("blocks":[{"block_hash":9143094415614847814,"tokens_hash":9143094415614847814,)"
    R"("mm_extra_info":null}]}},"dp_rank":0}})";

TEST(RouterEventCodec, LatestJsonExampleDecodes) {
  const std::string pretty =
      "{\"worker_id\":7,\"storage_tier\":\"device\",\"residency_domain\":\"worker\",\n"
      " \"event\":{\"event_id\":1,\n"
      "          \"data\":{\"stored\":{\"parent_hash\":null,\"start_position\":null,\n"
      "                  \"blocks\":[{\"block_hash\":9143094415614847814,\n"
      "                             \"tokens_hash\":9143094415614847814,\n"
      "                             \"mm_extra_info\":null}]}},\n"
      "          \"dp_rank\":0}}\n";
  auto decoded = decode_router_event_json(pretty);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, golden_router_event());
}

TEST(RouterEventCodec, JsonEncoderWritesTheLatestExampleWithTheFullFieldSet) {
  EXPECT_EQ(encode_router_event_json(golden_router_event(), kAllFields), kLatestJson);
}

TEST(RouterEventCodec, JsonRemovedAndClearedExamplesDecodeAndReencodeIdentically) {
  const std::string removed =
      R"({"worker_id":7,"storage_tier":"device","event":{"event_id":3,"data":{"removed":{"block_hashes":[9143094415614847814]}},"dp_rank":0}})";
  const std::string cleared =
      R"({"worker_id":7,"storage_tier":"device","event":{"event_id":2,"data":"cleared","dp_rank":0}})";
  auto r = decode_router_event_json(removed);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(std::get<RemoveData>(r->event.data).block_hashes,
            std::vector<BlockHash>{9143094415614847814ull});
  EXPECT_EQ(r->event.event_id, 3u);
  EXPECT_EQ(encode_router_event_json(*r), removed);
  auto c = decode_router_event_json(cleared);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(is_clear(c->event.data));
  EXPECT_EQ(encode_router_event_json(*c), cleared);
}

TEST(RouterEventCodec, LegacyMinimalJsonFormDecodesWithDefaults) {
  auto decoded = decode_router_event_json(
      R"({"worker_id":7,"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[{"block_hash":1,"tokens_hash":2}]}},"dp_rank":0}})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->worker_id, 7u);
  EXPECT_EQ(decoded->storage_tier, StorageTier::kDevice);
  const auto& store = std::get<StoreData>(decoded->event.data);
  EXPECT_FALSE(store.parent_hash.has_value());
  EXPECT_FALSE(store.start_position.has_value());
  ASSERT_EQ(store.blocks.size(), 1u);
  EXPECT_EQ(store.blocks[0].block_hash, 1u);
  EXPECT_EQ(store.blocks[0].tokens_hash, 2u);
  EXPECT_FALSE(store.blocks[0].mm_extra_info.has_value());
}

TEST(RouterEventCodec, MissingDpRankDefaultsToZero) {
  auto decoded =
      decode_router_event_json(R"({"worker_id":7,"event":{"event_id":4,"data":"cleared"}})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->event.dp_rank, 0u);
  EXPECT_EQ(decoded->event.event_id, 4u);
}

TEST(RouterEventCodec, DecodersIgnoreKeyOrderAndUnknownKeys) {
  auto decoded = decode_router_event_json(
      R"({"event":{"dp_rank":5,"extra":[1,{"x":null}],"data":{"removed":{"block_hashes":[8],"why":"lru"}},"event_id":6},)"
      R"("state_source":null,"storage_tier":"disk","worker_id":9})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->worker_id, 9u);
  EXPECT_EQ(decoded->storage_tier, StorageTier::kDisk);
  EXPECT_EQ(decoded->event.dp_rank, 5u);
  EXPECT_EQ(decoded->event.event_id, 6u);
  EXPECT_EQ(std::get<RemoveData>(decoded->event.data).block_hashes, std::vector<BlockHash>{8});
}

TEST(RouterEventCodec, LegacyMsgpackShapeWithoutStorageTierDecodes) {
  // {"worker_id":1,"event":{"event_id":2,"data":"cleared"}}
  const auto bytes = from_hex(
      "82a9776f726b65725f696401a56576656e7482a86576656e745f696402a464617461a7636c6561726564");
  auto decoded = decode_router_event_msgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, [] {
    RouterEvent e;
    e.worker_id = 1;
    e.event.event_id = 2;
    e.event.data = ClearData{};
    return e;
  }());
}

TEST(RouterEventCodec, ClearedSpelledAsSingleKeyMapWithNullDecodes) {
  auto decoded = decode_router_event_json(
      R"({"worker_id":1,"event":{"event_id":2,"data":{"cleared":null},"dp_rank":0}})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(is_clear(decoded->event.data));
}

// --- Round trips --------------------------------------------------------------------------

TEST(RouterEventCodec, RemovedAndClearedRoundTripInBothCodecsForEveryTier) {
  for (StorageTier tier : kAllTiers) {
    for (const RouterEvent& e : {removed_event(tier), cleared_event(tier)}) {
      SCOPED_TRACE(std::string(storage_tier_name(tier)));
      auto from_json = decode_router_event_json(encode_router_event_json(e));
      ASSERT_TRUE(from_json.ok()) << from_json.error().message;
      EXPECT_EQ(*from_json, e);
      auto from_msgpack = decode_router_event_msgpack(encode_router_event_msgpack(e));
      ASSERT_TRUE(from_msgpack.ok()) << from_msgpack.error().message;
      EXPECT_EQ(*from_msgpack, e);
    }
  }
}

TEST(RouterEventCodec, TierNamesAreWrittenInSnakeCase) {
  EXPECT_NE(encode_router_event_json(cleared_event(StorageTier::kHostPinned))
                .find(R"("storage_tier":"host_pinned")"),
            std::string::npos);
}

TEST(RouterEventCodec, ExtremeHashesRoundTripExactlyInBothCodecs) {
  for (uint64_t h : {uint64_t{0}, kTwo63, kMaxU64}) {
    SCOPED_TRACE(h);
    RouterEvent e;
    e.worker_id = h;
    e.event.event_id = h;
    StoreData store;
    store.parent_hash = h;
    store.blocks.push_back(StoredBlock{h, h, std::nullopt});
    e.event.data = store;
    const std::string json = encode_router_event_json(e, kAllFields);
    EXPECT_NE(json.find("\"tokens_hash\":" + std::to_string(h)), std::string::npos) << json;
    auto from_json = decode_router_event_json(json);
    ASSERT_TRUE(from_json.ok()) << from_json.error().message;
    EXPECT_EQ(*from_json, e);
    auto from_msgpack = decode_router_event_msgpack(encode_router_event_msgpack(e, kAllFields));
    ASSERT_TRUE(from_msgpack.ok()) << from_msgpack.error().message;
    EXPECT_EQ(*from_msgpack, e);
  }
}

TEST(RouterEventCodec, JsonHashesAtAndAboveTwoTo63DecodeExactly) {
  auto decoded = decode_router_event_json(
      R"({"worker_id":18446744073709551615,"event":{"event_id":9223372036854775808,)"
      R"("data":{"removed":{"block_hashes":[9223372036854775807,9223372036854775808,18446744073709551614]}}}})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->worker_id, kMaxU64);
  EXPECT_EQ(decoded->event.event_id, kTwo63);
  EXPECT_EQ(std::get<RemoveData>(decoded->event.data).block_hashes,
            (std::vector<BlockHash>{kTwo63 - 1, kTwo63, kMaxU64 - 1}));
}

TEST(RouterEventCodec, MsgpackWritesLargeHashesAsUint64) {
  RouterEvent e = removed_event(StorageTier::kDevice);
  e.event.data = RemoveData{{kTwo63}};
  const std::string hex = to_hex(encode_router_event_msgpack(e));
  EXPECT_NE(hex.find("91cf8000000000000000"), std::string::npos) << hex;
}

TEST(RouterEventCodec, MultimodalExtraInfoRoundTripsInBothCodecs) {
  const RouterEvent e = multimodal_event();
  const std::string json = encode_router_event_json(e);
  EXPECT_NE(json.find(R"("mm_extra_info":{"mm_objects":[{"mm_hash":42,"offsets":[[0,16],[20,36]]},)"
                      R"({"mm_hash":18446744073709551615,"offsets":[]}]})"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("mm_extra_info":{"mm_objects":[]})"), std::string::npos) << json;
  auto from_json = decode_router_event_json(json);
  ASSERT_TRUE(from_json.ok()) << from_json.error().message;
  EXPECT_EQ(*from_json, e);
  auto from_msgpack = decode_router_event_msgpack(encode_router_event_msgpack(e));
  ASSERT_TRUE(from_msgpack.ok()) << from_msgpack.error().message;
  EXPECT_EQ(*from_msgpack, e);
}

TEST(RouterEventCodec, StartPositionIsWrittenOnlyWhenTheFieldSetAsksForIt) {
  RouterEvent e = golden_router_event();
  std::get<StoreData>(e.event.data).start_position = 5;
  const RouterEventFieldSet with_start{false, true};
  const std::string json = encode_router_event_json(e, with_start);
  EXPECT_NE(json.find(R"("parent_hash":null,"start_position":5,"blocks")"), std::string::npos);
  EXPECT_EQ(json.find("residency_domain"), std::string::npos);
  auto from_json = decode_router_event_json(json);
  ASSERT_TRUE(from_json.ok());
  EXPECT_EQ(*from_json, e);
  auto from_msgpack = decode_router_event_msgpack(encode_router_event_msgpack(e, with_start));
  ASSERT_TRUE(from_msgpack.ok());
  EXPECT_EQ(*from_msgpack, e);

  // Without the field the position is not on the wire, so it decodes as unset.
  auto dropped = decode_router_event_msgpack(encode_router_event_msgpack(e));
  ASSERT_TRUE(dropped.ok());
  EXPECT_FALSE(std::get<StoreData>(dropped->event.data).start_position.has_value());
}

TEST(RouterEventCodec, ResidencyDomainAloneAddsOneTopLevelKey) {
  const RouterEventFieldSet domain_only{true, false};
  const auto bytes = encode_router_event_msgpack(cleared_event(StorageTier::kDisk), domain_only);
  EXPECT_EQ(bytes[0], 0x84);
  const std::string json = encode_router_event_json(cleared_event(StorageTier::kDisk), domain_only);
  EXPECT_EQ(
      json,
      R"({"worker_id":7,"storage_tier":"disk","residency_domain":"worker","event":{"event_id":2,"data":"cleared","dp_rank":0}})");
  auto decoded = decode_router_event_msgpack(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, cleared_event(StorageTier::kDisk));
}

// --- Rejections (the full malformed-input table is in codec_support_test.cc) --------------

TEST(RouterEventCodec, ErrorMessageNamesTheFieldPath) {
  auto decoded = decode_router_event_json(
      R"({"worker_id":1,"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[)"
      R"({"block_hash":1,"tokens_hash":1},{"block_hash":2,"tokens_hash":2},{"block_hash":3,"tokens_hash":"3"}]}}}})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().reason, "bad_type");
  EXPECT_EQ(decoded.error().message,
            "event.data.stored.blocks[2].tokens_hash: expected unsigned integer, got string");
}

TEST(RouterEventCodec, ResidencyDomainMustBeTheStringWorker) {
  auto null_domain = decode_router_event_json(
      R"({"worker_id":1,"residency_domain":null,"event":{"event_id":1,"data":"cleared"}})");
  ASSERT_FALSE(null_domain.ok());
  EXPECT_EQ(null_domain.error().reason, "bad_type");
  EXPECT_EQ(null_domain.error().message, "residency_domain: expected string, got null");
  auto owner = decode_router_event_json(
      R"({"worker_id":1,"residency_domain":"cache_owner","event":{"event_id":1,"data":"cleared"}})");
  ASSERT_FALSE(owner.ok());
  EXPECT_EQ(owner.error().reason, "unsupported");
  auto other = decode_router_event_json(
      R"({"worker_id":1,"residency_domain":"gpu","event":{"event_id":1,"data":"cleared"}})");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().reason, "bad_value");
}

TEST(RouterEventCodec, MissingRequiredFieldIsReportedByPath) {
  auto decoded = decode_router_event_json(R"({"worker_id":1,"event":{"data":"cleared"}})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().reason, "missing_field");
  EXPECT_EQ(decoded.error().message, "event.event_id: required field is missing");
}

TEST(RouterEventCodec, EnumWithTwoKeysOrUnknownNameIsRejected) {
  auto two_keys = decode_router_event_json(
      R"({"worker_id":1,"event":{"event_id":1,"data":{"removed":{"block_hashes":[]},"cleared":null}}})");
  ASSERT_FALSE(two_keys.ok());
  EXPECT_EQ(two_keys.error().reason, "bad_value");
  auto unknown =
      decode_router_event_json(R"({"worker_id":1,"event":{"event_id":1,"data":"evicted"}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().reason, "bad_value");
  auto bad_tier = decode_router_event_json(
      R"({"worker_id":1,"storage_tier":"gpu","event":{"event_id":1,"data":"cleared"}})");
  ASSERT_FALSE(bad_tier.ok());
  EXPECT_EQ(bad_tier.error().reason, "bad_value");
}

TEST(RouterEventCodec, DpRankAboveU32IsRejected) {
  auto decoded = decode_router_event_json(
      R"({"worker_id":1,"event":{"event_id":1,"data":"cleared","dp_rank":4294967296}})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().reason, "bad_value");
  EXPECT_EQ(decoded.error().message, "event.dp_rank: expected u32, value too large");
}

}  // namespace
}  // namespace kvmock
