#include "core/events/engine_payload_codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <msgpack.hpp>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "core/events/msgpack_writer.h"
#include "core/tokens/block_hash.h"

namespace kvmock {
namespace {

// ---------------------------------------------------------------------------------------
// Helpers

std::vector<uint8_t> from_hex(std::string_view hex) {
  std::vector<uint8_t> out;
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    return static_cast<uint8_t>(c - 'a' + 10);
  };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

std::string to_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

// Hand-written msgpack, for shapes the encoder never produces.
class Mp {
 public:
  Mp& arr(uint32_t n) {
    pk_.pack_array(n);
    return *this;
  }
  Mp& map(uint32_t n) {
    pk_.pack_map(n);
    return *this;
  }
  Mp& str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Mp& u(uint64_t v) {
    pk_.pack_uint64(v);
    return *this;
  }
  Mp& i(int64_t v) {
    pk_.pack_int64(v);
    return *this;
  }
  Mp& nil() {
    pk_.pack_nil();
    return *this;
  }
  // Raw float forms: packer::pack_double/pack_float write integral values as ints.
  Mp& f64(double v) {
    const auto bits = std::bit_cast<uint64_t>(v);
    buf_.write("\xcb", 1);
    for (int i = 7; i >= 0; --i) {
      const char c = static_cast<char>(bits >> (8 * i));
      buf_.write(&c, 1);
    }
    return *this;
  }
  Mp& f32(float v) {
    const auto bits = std::bit_cast<uint32_t>(v);
    buf_.write("\xca", 1);
    for (int i = 3; i >= 0; --i) {
      const char c = static_cast<char>(bits >> (8 * i));
      buf_.write(&c, 1);
    }
    return *this;
  }
  Mp& boolean(bool v) {
    if (v) {
      pk_.pack_true();
    } else {
      pk_.pack_false();
    }
    return *this;
  }
  Mp& bin(const std::vector<uint8_t>& b) {
    pk_.pack_bin(static_cast<uint32_t>(b.size()));
    pk_.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
    return *this;
  }
  Mp& hex(std::string_view h) {
    const auto b = from_hex(h);
    buf_.write(reinterpret_cast<const char*>(b.data()), b.size());
    return *this;
  }
  Mp& raw(const std::vector<uint8_t>& b) {
    buf_.write(reinterpret_cast<const char*>(b.data()), b.size());
    return *this;
  }
  // `[1.5, [` with n events follows; finish with .nil() (the rank) or .u(rank).
  Mp& batch(uint32_t events) { return arr(3).f64(1.5).arr(events); }
  std::vector<uint8_t> bytes() const {
    return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(buf_.data()),
                                reinterpret_cast<const uint8_t*>(buf_.data()) + buf_.size());
  }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_{buf_};
};

EngineBatch decode_ok(const std::vector<uint8_t>& bytes) {
  auto r = decode_engine_payload(bytes);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : std::string(r.error().reason) + ": " + r.error().message)
                      << "\n  input " << to_hex(bytes);
  return r.ok() ? std::move(r).value() : EngineBatch{};
}

const EngineBlockStored& stored_at(const EngineBatch& b, size_t i) {
  return std::get<EngineBlockStored>(b.events.at(i));
}
const EngineBlockRemoved& removed_at(const EngineBatch& b, size_t i) {
  return std::get<EngineBlockRemoved>(b.events.at(i));
}

std::vector<TokenId> iota_tokens(uint32_t n, TokenId first = 1) {
  std::vector<TokenId> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

// Golden vectors: tests/data/README.md.
constexpr std::string_view kVllmPositionalInt =
    "93cb41da39de002000009297ab426c6f636b53746f7265649221222092010210c0a347505593ac426c6f636b52"
    "656d6f7665649122a753544f52414745c0";
constexpr std::string_view kSglangPositionalSigned =
    "93cb405edd2f1a9fbe779397ab426c6f636b53746f72656492cf0000011f71fb04cbd2c521974f2a940a141e28"
    "0407a347505593ac426c6f636b52656d6f7665649264ccc8a44449534b91b0416c6c426c6f636b73436c656172"
    "656402";
constexpr std::string_view kVllmPositionalFull =
    "93cb41da39de002000009398ab426c6f636b53746f72656491cf1111111111111111c0dc001001020304050607"
    "08090a0b0c0d0e0f1010c0a3475055c093ac426c6f636b52656d6f76656491cf1111111111111111a347505591"
    "b0416c6c426c6f636b73436c656172656400";
constexpr std::string_view kVllmMap =
    "93cb41da39de00200000938ba474797065ab426c6f636b53746f726564ac626c6f636b5f68617368657391cf11"
    "11111111111111b1706172656e745f626c6f636b5f68617368c0a9746f6b656e5f696473dc0010010203040506"
    "0708090a0b0c0d0e0f10aa626c6f636b5f73697a6510a76c6f72615f6964c0a66d656469756da3475055a96c6f"
    "72615f6e616d65c0aa65787472615f6b65797391c0a967726f75705f69647800b26b765f63616368655f737065"
    "635f6b696e64ae66756c6c5f617474656e74696f6e84a474797065ac426c6f636b52656d6f766564ac626c6f63"
    "6b5f68617368657391cf1111111111111111a66d656469756da3475055a967726f75705f6964780081a4747970"
    "65b0416c6c426c6f636b73436c656172656400";

constexpr uint64_t kH = 0x1111111111111111ull;

// ---------------------------------------------------------------------------------------
// Golden vectors

TEST(EnginePayloadCodec, GoldenVectorsHaveTheDocumentedSizes) {
  EXPECT_EQ(from_hex(kVllmPositionalInt).size(), 62u);
  EXPECT_EQ(from_hex(kSglangPositionalSigned).size(), 93u);
  EXPECT_EQ(from_hex(kVllmPositionalFull).size(), 108u);
  EXPECT_EQ(from_hex(kVllmMap).size(), 289u);
}

TEST(EnginePayloadCodec, VllmPositionalIntGoldenDecodesEveryField) {
  const EngineBatch b = decode_ok(from_hex(kVllmPositionalInt));
  EXPECT_EQ(b.ts, 1760000000.5);
  EXPECT_FALSE(b.dp_rank.has_value());
  EXPECT_EQ(b.encoding, EngineEventEncoding::kPositional);
  EXPECT_EQ(b.hash_encoding, EngineHashEncoding::kUint64);
  EXPECT_EQ(b.unknown_events, 0u);
  ASSERT_EQ(b.events.size(), 2u);
  EngineBlockStored want;
  want.block_hashes = {33, 34};
  want.parent_block_hash = 32;
  want.token_ids = {1, 2};
  want.block_size = 16;
  want.medium = "GPU";
  want.positional_fields = 6;
  EXPECT_EQ(stored_at(b, 0), want);
  EngineBlockRemoved removed;
  removed.block_hashes = {34};
  removed.medium = "STORAGE";
  removed.positional_fields = 2;
  EXPECT_EQ(removed_at(b, 1), removed);
}

TEST(EnginePayloadCodec, SglangSignedGoldenReadsNegativeHashesAsTheSameBits) {
  const EngineBatch b = decode_ok(from_hex(kSglangPositionalSigned));
  EXPECT_EQ(b.ts, 123.456);
  EXPECT_EQ(b.dp_rank, 2);
  EXPECT_EQ(b.encoding, EngineEventEncoding::kPositional);
  EXPECT_EQ(b.hash_encoding, EngineHashEncoding::kInt64);
  ASSERT_EQ(b.events.size(), 3u);
  EngineBlockStored want;
  want.block_hashes = {1234567890123ull, 18446744072721897295ull};
  want.parent_block_hash = 42;
  want.token_ids = {10, 20, 30, 40};
  want.block_size = 4;
  want.lora_id = 7;
  want.medium = "GPU";
  want.positional_fields = 6;
  EXPECT_EQ(stored_at(b, 0), want);
  EngineBlockRemoved removed;
  removed.block_hashes = {100, 200};
  removed.medium = "DISK";
  removed.positional_fields = 2;
  EXPECT_EQ(removed_at(b, 1), removed);
  EXPECT_TRUE(std::holds_alternative<EngineAllBlocksCleared>(b.events[2]));
}

TEST(EnginePayloadCodec, VllmPositionalFullGoldenDecodesEveryField) {
  const EngineBatch b = decode_ok(from_hex(kVllmPositionalFull));
  EXPECT_EQ(b.ts, 1760000000.5);
  EXPECT_EQ(b.dp_rank, 0);
  EXPECT_EQ(b.encoding, EngineEventEncoding::kPositional);
  ASSERT_EQ(b.events.size(), 3u);
  EngineBlockStored want;
  want.block_hashes = {kH};
  want.token_ids = iota_tokens(16);
  want.block_size = 16;
  want.medium = "GPU";
  want.positional_fields = 7;
  EXPECT_EQ(stored_at(b, 0), want);
  EngineBlockRemoved removed;
  removed.block_hashes = {kH};
  removed.medium = "GPU";
  removed.positional_fields = 2;
  EXPECT_EQ(removed_at(b, 1), removed);
  EXPECT_TRUE(std::holds_alternative<EngineAllBlocksCleared>(b.events[2]));
}

TEST(EnginePayloadCodec, VllmMapGoldenDecodesEveryField) {
  const EngineBatch b = decode_ok(from_hex(kVllmMap));
  EXPECT_EQ(b.ts, 1760000000.5);
  EXPECT_EQ(b.dp_rank, 0);
  EXPECT_EQ(b.encoding, EngineEventEncoding::kMap);
  EXPECT_EQ(b.hash_encoding, EngineHashEncoding::kUint64);
  ASSERT_EQ(b.events.size(), 3u);
  EngineBlockStored want;
  want.block_hashes = {kH};
  want.token_ids = iota_tokens(16);
  want.block_size = 16;
  want.medium = "GPU";
  want.extra_keys_msgpack = std::vector<uint8_t>{0x91, 0xc0};
  want.group_idx = 0;
  want.kv_cache_spec_kind = "full_attention";
  EXPECT_EQ(stored_at(b, 0), want);
  EXPECT_TRUE(stored_at(b, 0).mm_hashes.empty());
  EngineBlockRemoved removed;
  removed.block_hashes = {kH};
  removed.medium = "GPU";
  removed.group_idx = 0;
  EXPECT_EQ(removed_at(b, 1), removed);
  EXPECT_TRUE(std::holds_alternative<EngineAllBlocksCleared>(b.events[2]));
}

TEST(EnginePayloadCodec, EveryGoldenVectorReencodesByteForByte) {
  for (std::string_view hex :
       {kVllmPositionalInt, kSglangPositionalSigned, kVllmPositionalFull, kVllmMap}) {
    const EngineBatch b = decode_ok(from_hex(hex));
    EXPECT_EQ(to_hex(reencode_engine_payload(b)), hex);
  }
}

TEST(EnginePayloadCodec, EveryPrefixOfEveryGoldenVectorIsTruncated) {
  for (std::string_view hex :
       {kVllmPositionalInt, kSglangPositionalSigned, kVllmPositionalFull, kVllmMap}) {
    const auto full = from_hex(hex);
    for (size_t len = 0; len < full.size(); ++len) {
      const std::vector<uint8_t> prefix(full.begin(), full.begin() + len);
      const auto r = decode_engine_payload(prefix);
      ASSERT_FALSE(r.ok()) << "prefix of " << len << " bytes";
      EXPECT_EQ(r.error().reason, "truncated") << "prefix of " << len << " bytes";
    }
  }
}

TEST(EnginePayloadCodec, GoldenVectorsConvertBetweenEncodings) {
  // The positional-full vector's events in map form must decode to the same values.
  EngineBatch b = decode_ok(from_hex(kVllmPositionalFull));
  const auto as_map = encode_engine_payload(b, {EngineEventEncoding::kMap, {}});
  EngineBatch back = decode_ok(as_map);
  for (auto& ev : b.events) {
    if (auto* s = std::get_if<EngineBlockStored>(&ev)) s->positional_fields = 0;
    if (auto* r = std::get_if<EngineBlockRemoved>(&ev)) r->positional_fields = 0;
  }
  EXPECT_EQ(back.events, b.events);
  EXPECT_EQ(back.encoding, EngineEventEncoding::kMap);
}

// ---------------------------------------------------------------------------------------
// Field eras (reference §1.6 table)

TEST(EnginePayloadCodec, PositionalStoredOfEveryFieldEraDecodes) {
  // Slots after the tag, in order, as each era added them.
  for (uint32_t fields = 4; fields <= 13; ++fields) {
    Mp m;
    m.batch(1).arr(1 + fields).str("BlockStored");
    m.arr(2).u(5).u(6);  // block_hashes
    m.u(4);              // parent
    m.arr(4).u(1).u(2).u(3).u(4);
    m.u(2);  // block_size
    if (fields >= 5) m.i(3);
    if (fields >= 6) m.str("CPU");
    if (fields >= 7) m.str("adapter-a");
    if (fields >= 8) m.arr(2).nil().nil();
    if (fields >= 9) m.u(1);
    if (fields >= 10) m.str("sliding_window");
    if (fields >= 11) m.i(-4096);
    for (uint32_t extra = 12; extra <= fields; ++extra) m.map(1).str("future").arr(1).u(extra);
    m.nil();
    const EngineBatch b = decode_ok(m.bytes());
    ASSERT_EQ(b.events.size(), 1u) << fields;
    const auto& s = stored_at(b, 0);
    EXPECT_EQ(s.block_hashes, (std::vector<uint64_t>{5, 6}));
    EXPECT_EQ(s.parent_block_hash, 4u);
    EXPECT_EQ(s.token_ids, (std::vector<TokenId>{1, 2, 3, 4}));
    EXPECT_EQ(s.block_size, 2u);
    EXPECT_EQ(s.lora_id, fields >= 5 ? std::optional<int64_t>(3) : std::nullopt);
    EXPECT_EQ(s.medium, fields >= 6 ? std::optional<std::string>("CPU") : std::nullopt);
    EXPECT_EQ(s.lora_name, fields >= 7 ? std::optional<std::string>("adapter-a") : std::nullopt);
    EXPECT_EQ(s.extra_keys_msgpack.has_value(), fields >= 8);
    EXPECT_EQ(s.group_idx, fields >= 9 ? std::optional<int64_t>(1) : std::nullopt);
    EXPECT_EQ(s.kv_cache_spec_kind,
              fields >= 10 ? std::optional<std::string>("sliding_window") : std::nullopt);
    EXPECT_EQ(s.kv_cache_spec_sliding_window,
              fields >= 11 ? std::optional<int64_t>(-4096) : std::nullopt);
    EXPECT_EQ(s.positional_fields, std::min<uint32_t>(fields, 11));
    // Up to the known slots, a decoded event comes back byte for byte.
    if (fields <= 11) {
      EXPECT_EQ(to_hex(reencode_engine_payload(b)), to_hex(m.bytes()));
    }
  }
}

TEST(EnginePayloadCodec, PositionalRemovedOfEveryFieldEraDecodes) {
  for (uint32_t fields = 1; fields <= 5; ++fields) {
    Mp m;
    m.batch(1).arr(1 + fields).str("BlockRemoved").arr(1).u(9);
    if (fields >= 2) m.str("CPU");
    if (fields >= 3) m.u(2);
    if (fields >= 4) m.arr(1).u(1);  // a proposed remaining_copy_counts
    if (fields >= 5) m.nil();
    m.u(0);
    const EngineBatch b = decode_ok(m.bytes());
    const auto& r = removed_at(b, 0);
    EXPECT_EQ(r.block_hashes, std::vector<uint64_t>{9});
    EXPECT_EQ(r.medium, fields >= 2 ? std::optional<std::string>("CPU") : std::nullopt);
    EXPECT_EQ(r.group_idx, fields >= 3 ? std::optional<int64_t>(2) : std::nullopt);
    EXPECT_EQ(r.positional_fields, std::min<uint32_t>(fields, 3));
    if (fields <= 3) {
      EXPECT_EQ(to_hex(reencode_engine_payload(b)), to_hex(m.bytes()));
    }
  }
}

TEST(EnginePayloadCodec, EncoderWritesEachEraThatTheDecoderReadsBack) {
  for (int era = 0; era <= 6; ++era) {
    EngineBlockStored s;
    s.block_hashes = {1ull << 63, 7};
    s.parent_block_hash = 3;
    s.token_ids = iota_tokens(8, 100000);
    s.block_size = 4;
    if (era >= 1) s.lora_id = 12;
    if (era >= 2) s.medium = "CPU_PINNED";
    if (era >= 3) s.lora_name = "adapter-a";
    if (era >= 4) s.extra_keys_msgpack = std::vector<uint8_t>{0x92, 0xc0, 0xc0};
    if (era >= 5) s.group_idx = 2;
    if (era >= 6) {
      s.kv_cache_spec_kind = "sliding_window";
      s.kv_cache_spec_sliding_window = 4096;
    }
    EngineBatch batch;
    batch.ts = 17.25;
    batch.dp_rank = 3;
    batch.events = {s};
    for (auto encoding : {EngineEventEncoding::kPositional, EngineEventEncoding::kMap}) {
      const auto bytes = encode_engine_payload(batch, {encoding, EngineHashEncoding::kUint64});
      const EngineBatch back = decode_ok(bytes);
      EngineBlockStored want = s;
      want.positional_fields = 0;
      if (encoding == EngineEventEncoding::kPositional) {
        // Seven fields through lora_name unless a later slot is set.
        const uint8_t slots[] = {7, 7, 7, 7, 8, 9, 11};
        want.positional_fields = slots[era];
        EXPECT_EQ(bytes[11], 0x90 + 1 + slots[era]) << "era " << era;
      }
      EXPECT_EQ(back.encoding, encoding);
      EXPECT_EQ(back.ts, 17.25);
      EXPECT_EQ(back.dp_rank, 3);
      ASSERT_EQ(back.events.size(), 1u);
      EXPECT_EQ(stored_at(back, 0), want) << "era " << era;
    }
  }
}

// The encoder gathers its writes in a small stage (codec::StagedVectorSink): a batch many
// stages long, where raw extra-key bytes and 9-byte floats are written between packed
// values, must decode back to what was encoded, in both forms.
TEST(EnginePayloadCodec, ABatchLongerThanTheEncodersStageRoundTrips) {
  EngineBatch batch;
  batch.ts = 1760000000.125;
  batch.dp_rank = 1;
  for (uint32_t e = 0; e < 40; ++e) {
    EngineBlockStored s;
    s.block_hashes = {1000 + e, 2000 + e};
    s.parent_block_hash = e == 0 ? std::nullopt : std::optional<uint64_t>(999 + e);
    s.token_ids = iota_tokens(32, 70000 * e);
    s.block_size = 16;
    s.medium = "GPU";
    if (e % 3 == 0) s.extra_keys_msgpack = std::vector<uint8_t>{0x92, 0xc0, 0x90};
    batch.events.push_back(s);
  }
  for (auto encoding : {EngineEventEncoding::kPositional, EngineEventEncoding::kMap}) {
    const auto bytes = encode_engine_payload(batch, {encoding, EngineHashEncoding::kUint64});
    ASSERT_GT(bytes.size(), 10 * codec::StagedVectorSink::kStageBytes);
    const EngineBatch back = decode_ok(bytes);
    EXPECT_EQ(back.ts, batch.ts);
    EXPECT_EQ(back.dp_rank, batch.dp_rank);
    ASSERT_EQ(back.events.size(), batch.events.size());
    for (size_t e = 0; e < batch.events.size(); ++e) {
      EngineBlockStored got = stored_at(back, e);
      got.positional_fields = 0;
      EXPECT_EQ(got, std::get<EngineBlockStored>(batch.events[e])) << "event " << e;
    }
  }
}

TEST(EnginePayloadCodec, PositionalEncoderPadsUnsetEarlierSlotsWithNil) {
  EngineBlockStored s;
  s.block_hashes = {1};
  s.token_ids = {1, 2};
  s.block_size = 2;
  s.group_idx = 5;
  EngineBatch batch;
  batch.events = {s, EngineBlockRemoved{{2}, std::nullopt, 1, 0}, EngineAllBlocksCleared{}};
  const auto bytes = encode_engine_payload(batch, {EngineEventEncoding::kPositional, {}});
  const auto want = Mp().arr(3)
                        .f64(0.0)
                        .arr(3)
                        .arr(10)
                        .str("BlockStored")
                        .arr(1)
                        .u(1)
                        .nil()
                        .arr(2)
                        .u(1)
                        .u(2)
                        .u(2)
                        .nil()
                        .nil()
                        .nil()
                        .nil()
                        .u(5)
                        .arr(4)
                        .str("BlockRemoved")
                        .arr(1)
                        .u(2)
                        .nil()
                        .u(1)
                        .arr(1)
                        .str("AllBlocksCleared")
                        .nil()
                        .bytes();
  EXPECT_EQ(to_hex(bytes), to_hex(want));
}

TEST(EnginePayloadCodec, FreshRemovedGetsTwoPositionalFields) {
  EngineBatch batch;
  batch.events = {EngineBlockRemoved{{2}, std::nullopt, std::nullopt, 0}};
  const auto bytes = encode_engine_payload(batch, {EngineEventEncoding::kPositional, {}});
  const auto want =
      Mp().arr(3).f64(0.0).arr(1).arr(3).str("BlockRemoved").arr(1).u(2).nil().nil().bytes();
  EXPECT_EQ(to_hex(bytes), to_hex(want));
}

TEST(EnginePayloadCodec, MapEncoderWritesAlwaysPresentFieldsAndOmitsDefaults) {
  EngineBlockStored s;
  s.block_hashes = {1};
  s.token_ids = {7};
  s.block_size = 1;
  EngineBatch batch;
  batch.events = {s, EngineBlockRemoved{{1}, std::nullopt, std::nullopt, 0}};
  const auto bytes = encode_engine_payload(batch, {EngineEventEncoding::kMap, {}});
  const auto want = Mp().arr(3)
                        .f64(0.0)
                        .arr(2)
                        .map(8)
                        .str("type")
                        .str("BlockStored")
                        .str("block_hashes")
                        .arr(1)
                        .u(1)
                        .str("parent_block_hash")
                        .nil()
                        .str("token_ids")
                        .arr(1)
                        .u(7)
                        .str("block_size")
                        .u(1)
                        .str("lora_id")
                        .nil()
                        .str("medium")
                        .nil()
                        .str("lora_name")
                        .nil()
                        .map(3)
                        .str("type")
                        .str("BlockRemoved")
                        .str("block_hashes")
                        .arr(1)
                        .u(1)
                        .str("medium")
                        .nil()
                        .nil()
                        .bytes();
  EXPECT_EQ(to_hex(bytes), to_hex(want));
}

TEST(EnginePayloadCodec, MapEventsIgnoreUnknownKeysAndKeyOrder) {
  Mp m;
  m.batch(3);
  m.map(10)
      .str("token_ids")
      .arr(2)
      .u(1)
      .u(2)
      .str("locality")
      .str("REMOTE")
      .str("block_size")
      .u(2)
      .str("ownership")
      .map(1)
      .str("tier")
      .arr(2)
      .u(1)
      .nil()
      .str("block_hashes")
      .arr(1)
      .u(77)
      .str("session_id")
      .str("s-1")
      .u(42)  // a non-string key
      .str("ignored")
      .str("medium")
      .str("CPU")
      .str("kv_cache_spec_sliding_window")
      .u(128)
      .str("type")
      .str("BlockStored");
  m.map(3)
      .str("locality")
      .str("LOCAL")
      .str("block_hashes")
      .arr(1)
      .u(77)
      .str("type")
      .str("BlockRemoved");
  m.map(2).str("reason").str("reset").str("type").str("AllBlocksCleared");
  m.nil();
  const EngineBatch b = decode_ok(m.bytes());
  EXPECT_EQ(b.encoding, EngineEventEncoding::kMap);
  ASSERT_EQ(b.events.size(), 3u);
  const auto& s = stored_at(b, 0);
  EXPECT_EQ(s.block_hashes, std::vector<uint64_t>{77});
  EXPECT_EQ(s.token_ids, (std::vector<TokenId>{1, 2}));
  EXPECT_EQ(s.block_size, 2u);
  EXPECT_EQ(s.medium, "CPU");
  EXPECT_EQ(s.kv_cache_spec_sliding_window, 128);
  EXPECT_FALSE(s.parent_block_hash.has_value());
  EXPECT_EQ(s.positional_fields, 0);
  EXPECT_EQ(removed_at(b, 1).block_hashes, std::vector<uint64_t>{77});
  EXPECT_TRUE(std::holds_alternative<EngineAllBlocksCleared>(b.events[2]));
}

TEST(EnginePayloadCodec, MapEventsWithTheTypeFirstReadKeysInAnyOrderAndRepeats) {
  // "type" first, as msgspec writes it, then the fields out of msgspec's order, a
  // repeated "type" and a repeated field (the last value wins, as in a dict).
  Mp m;
  m.batch(2);
  m.map(8)
      .str("type")
      .str("BlockStored")
      .str("block_size")
      .u(2)
      .str("medium")
      .str("GPU")
      .str("type")
      .str("BlockStored")
      .str("block_hashes")
      .arr(1)
      .u(5)
      .str("token_ids")
      .arr(2)
      .u(3)
      .u(4)
      .str("medium")
      .str("CPU")
      .str("parent_block_hash")
      .u(9);
  m.map(2).str("type").str("BlockRemoved").str("block_hashes").arr(2).u(5).u(6);
  m.nil();
  const EngineBatch b = decode_ok(m.bytes());
  ASSERT_EQ(b.events.size(), 2u);
  const auto& s = stored_at(b, 0);
  EXPECT_EQ(s.block_hashes, std::vector<uint64_t>{5});
  EXPECT_EQ(s.parent_block_hash, std::optional<uint64_t>(9));
  EXPECT_EQ(s.token_ids, (std::vector<TokenId>{3, 4}));
  EXPECT_EQ(s.block_size, 2u);
  EXPECT_EQ(s.medium, "CPU");
  EXPECT_EQ(removed_at(b, 1).block_hashes, (std::vector<uint64_t>{5, 6}));
}

TEST(EnginePayloadCodec, AMapKeyCutShortIsTruncatedAndNamesTheKey) {
  Mp m;
  m.batch(1);
  m.map(2).str("type").str("BlockRemoved").hex("ac626c6f");  // "blo" of a 12-byte key
  const auto r = decode_engine_payload(m.bytes());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "truncated");
  EXPECT_EQ(r.error().message, "event 0 (BlockRemoved): input ends inside key (at byte 30)");
}

TEST(EnginePayloadCodec, BatchOfTwoElementsHasNoRankAndExtraElementsAreIgnored) {
  const EngineBatch two =
      decode_ok(Mp().arr(2).f64(2.5).arr(1).arr(1).str("AllBlocksCleared").bytes());
  EXPECT_FALSE(two.dp_rank.has_value());
  EXPECT_EQ(two.events.size(), 1u);
  // Re-encoding always writes three elements.
  EXPECT_EQ(reencode_engine_payload(two)[0], 0x93);

  const EngineBatch five = decode_ok(
      Mp().arr(5).f64(2.5).arr(0).i(-1).map(1).str("x").arr(1).nil().str("future").bytes());
  EXPECT_EQ(five.dp_rank, -1);
  EXPECT_TRUE(five.events.empty());
}

TEST(EnginePayloadCodec, TimestampMayBeAnyIntOrFloat32) {
  EXPECT_EQ(decode_ok(Mp().arr(3).u(7).arr(0).nil().bytes()).ts, 7.0);
  EXPECT_EQ(decode_ok(Mp().arr(3).u(1760000000).arr(0).nil().bytes()).ts, 1760000000.0);
  EXPECT_EQ(decode_ok(Mp().arr(3).i(-3).arr(0).nil().bytes()).ts, -3.0);
  EXPECT_EQ(decode_ok(Mp().arr(3).hex("d3000000000000000a").arr(0).nil().bytes()).ts, 10.0);
  EXPECT_EQ(decode_ok(Mp().arr(3).f32(0.5f).arr(0).nil().bytes()).ts, 0.5);
  // ts is always written back as float64.
  const auto bytes = reencode_engine_payload(decode_ok(Mp().arr(3).u(7).arr(0).nil().bytes()));
  EXPECT_EQ(to_hex(bytes), "93cb401c00000000000090c0");
}

TEST(EnginePayloadCodec, AllBlocksClearedIgnoresExtraFields) {
  const EngineBatch b =
      decode_ok(Mp().batch(1).arr(3).str("AllBlocksCleared").str("GPU").arr(1).u(1).nil().bytes());
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<EngineAllBlocksCleared>(b.events[0]));
}

TEST(EnginePayloadCodec, EncodeAppendsToTheGivenBuffer) {
  EngineBatch batch;
  std::vector<uint8_t> out{0xaa, 0xbb};
  encode_engine_payload(batch, {}, out);
  EXPECT_EQ(to_hex(out), "aabb93cb000000000000000090c0");
}

// ---------------------------------------------------------------------------------------
// Hashes

TEST(EnginePayloadCodec, HashesDecodeFromEveryWireForm) {
  std::vector<uint8_t> bin32(32, 0);
  for (int i = 0; i < 8; ++i) bin32[24 + i] = static_cast<uint8_t>(0xa0 + i);
  std::vector<uint8_t> bin32_noisy = bin32;
  bin32_noisy[0] = 0xff;  // only the last 8 bytes count
  const std::vector<uint8_t> bin8{1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<uint8_t> short_bin{0xab, 0xcd, 0xef};
  const uint64_t want[] = {18446744073709551615ull,
                           1ull << 63,
                           18446744072721897295ull,  // -987654321
                           18446744073709551615ull,  // -1 (negative fixint)
                           18446744073709551488ull,  // -128 (int8)
                           5,                        // a positive int64 form
                           0xa0a1a2a3a4a5a6a7ull,
                           0xa0a1a2a3a4a5a6a7ull,
                           0x0102030405060708ull,
                           0xabcdefull};
  for (bool map : {false, true}) {
    Mp m;
    m.batch(1);
    if (map) {
      m.map(5).str("type").str("BlockStored").str("block_hashes");
    } else {
      m.arr(6).str("BlockStored");
    }
    m.arr(10)
        .u(18446744073709551615ull)
        .u(1ull << 63)
        .i(-987654321)
        .hex("ff")
        .hex("d080")
        .hex("d30000000000000005")
        .bin(bin32)
        .bin(bin32_noisy)
        .bin(bin8)
        .bin(short_bin);
    if (map) m.str("parent_block_hash");
    m.i(-2);
    if (map) m.str("token_ids");
    m.arr(0);
    if (map) m.str("block_size");
    m.u(0);
    if (!map) m.nil();
    m.nil();
    const EngineBatch b = decode_ok(m.bytes());
    const auto& s = stored_at(b, 0);
    EXPECT_EQ(s.block_hashes, std::vector<uint64_t>(std::begin(want), std::end(want)));
    EXPECT_EQ(s.parent_block_hash, 18446744073709551614ull);
    EXPECT_EQ(b.hash_encoding, EngineHashEncoding::kBytes32);  // a bin wins
  }
}

TEST(EnginePayloadCodec, HashEncodingRecordsTheEngineForm) {
  auto stored_with = [](auto write_hash) {
    Mp m;
    m.batch(1).arr(6).str("BlockStored").arr(1);
    write_hash(m);
    m.nil().arr(0).u(0).nil().nil();
    return decode_ok(m.bytes()).hash_encoding;
  };
  EXPECT_EQ(stored_with([](Mp& m) { m.u(1ull << 63); }), EngineHashEncoding::kUint64);
  EXPECT_EQ(stored_with([](Mp& m) { m.i(-5); }), EngineHashEncoding::kInt64);
  EXPECT_EQ(stored_with([](Mp& m) { m.hex("d30000000000000005"); }),
            EngineHashEncoding::kUint64);  // a signed form of a positive value
  EXPECT_EQ(stored_with([](Mp& m) { m.bin(std::vector<uint8_t>(32, 1)); }),
            EngineHashEncoding::kBytes32);
}

// A repeated map key replaces the earlier value, so the form of the replaced hashes is not
// the engine's form of anything the batch holds; recording it made re-encoding write the
// kept hashes in a form the engine never used (found by engine_payload_fuzz).
TEST(EnginePayloadCodec, HashEncodingIgnoresHashesARepeatedKeyReplaced) {
  auto removed_twice = [](auto write_first_hash) {
    Mp m;
    m.batch(1).map(3).str("type").str("BlockRemoved").str("block_hashes").arr(1);
    write_first_hash(m);
    m.str("block_hashes").arr(1).u(7).nil();
    const EngineBatch b = decode_ok(m.bytes());
    EXPECT_EQ(removed_at(b, 0).block_hashes, std::vector<uint64_t>{7});
    return b.hash_encoding;
  };
  EXPECT_EQ(removed_twice([](Mp& m) { m.i(-5); }), EngineHashEncoding::kUint64);
  EXPECT_EQ(removed_twice([](Mp& m) { m.bin(std::vector<uint8_t>(32, 1)); }),
            EngineHashEncoding::kUint64);

  Mp parent;
  parent.batch(1).map(6).str("type").str("BlockStored").str("block_hashes").arr(1).u(1);
  parent.str("parent_block_hash").i(-5).str("token_ids").arr(0).str("block_size").u(0);
  parent.str("parent_block_hash").u(2).nil();
  const EngineBatch b = decode_ok(parent.bytes());
  EXPECT_EQ(stored_at(b, 0).parent_block_hash, std::optional<uint64_t>(2));
  EXPECT_EQ(b.hash_encoding, EngineHashEncoding::kUint64);
  EXPECT_EQ(decode_ok(reencode_engine_payload(b)), b);

  // A hash form kept in the batch still counts, whichever field holds it.
  Mp kept;
  kept.batch(1).map(6).str("type").str("BlockStored").str("block_hashes").arr(1).u(1);
  kept.str("parent_block_hash").u(2).str("token_ids").arr(0).str("block_size").u(0);
  kept.str("parent_block_hash").i(-5).nil();
  EXPECT_EQ(decode_ok(kept.bytes()).hash_encoding, EngineHashEncoding::kInt64);
}

TEST(EnginePayloadCodec, EncoderWritesEachHashForm) {
  EngineBatch batch;
  batch.events = {EngineBlockRemoved{{5, 0x8000000000000001ull}, std::nullopt, std::nullopt, 1}};
  const EngineEncodeOptions positional{EngineEventEncoding::kPositional, {}};
  auto with = [&](EngineHashEncoding h) {
    auto opts = positional;
    opts.hashes = h;
    return to_hex(encode_engine_payload(batch, opts));
  };
  const std::string head = "93cb00000000000000009192ac426c6f636b52656d6f76656492";
  EXPECT_EQ(with(EngineHashEncoding::kUint64), head + "05cf8000000000000001c0");
  EXPECT_EQ(with(EngineHashEncoding::kInt64), head + "05d38000000000000001c0");
  EXPECT_EQ(with(EngineHashEncoding::kBytes32), head + "c420" + std::string(48, '0') +
                                                    "0000000000000005" + "c420" +
                                                    std::string(48, '0') + "8000000000000001c0");
  // Every form decodes to the same values.
  for (auto h :
       {EngineHashEncoding::kUint64, EngineHashEncoding::kInt64, EngineHashEncoding::kBytes32}) {
    auto opts = positional;
    opts.hashes = h;
    const EngineBatch back = decode_ok(encode_engine_payload(batch, opts));
    EXPECT_EQ(removed_at(back, 0).block_hashes, removed_at(batch, 0).block_hashes);
    EXPECT_EQ(back.hash_encoding, h);
  }
}

TEST(EnginePayloadCodec, EmptyBinHashIsRejected) {
  const auto r =
      decode_engine_payload(Mp().batch(1).arr(2).str("BlockRemoved").arr(1).bin({}).nil().bytes());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "bad_hash");
  EXPECT_EQ(r.error().message, "event 0 (BlockRemoved): block_hashes[0] is an empty bin");
}

// ---------------------------------------------------------------------------------------
// SGLang

TEST(EnginePayloadCodec, SglangMetadataSlotCarriesTheCacheSalt) {
  const auto bytes = Mp().batch(1)
                         .arr(8)
                         .str("BlockStored")
                         .arr(1)
                         .i(-77)
                         .nil()
                         .arr(1)
                         .u(9)
                         .u(1)
                         .nil()
                         .str("GPU")
                         .map(2)
                         .str("priority")
                         .u(3)
                         .str("cache_salt")
                         .str("tenant-a")
                         .u(1)
                         .bytes();
  const EngineBatch b = decode_ok(bytes);
  const auto& s = stored_at(b, 0);
  EXPECT_EQ(s.cache_salt, "tenant-a");
  EXPECT_FALSE(s.lora_name.has_value());
  EXPECT_EQ(s.positional_fields, 7);
  // Re-encoding writes the SGLang metadata form, keeping only the salt.
  const auto again = reencode_engine_payload(b);
  const auto want = Mp().batch(1)
                        .arr(8)
                        .str("BlockStored")
                        .arr(1)
                        .i(-77)
                        .nil()
                        .arr(1)
                        .u(9)
                        .u(1)
                        .nil()
                        .str("GPU")
                        .map(1)
                        .str("cache_salt")
                        .str("tenant-a")
                        .u(1)
                        .bytes();
  EXPECT_EQ(to_hex(again), to_hex(want));
}

TEST(EnginePayloadCodec, SglangMapEventsCarryCacheSaltAndIgnoreSessionId) {
  Mp m;
  m.batch(1)
      .map(9)
      .str("type")
      .str("BlockStored")
      .str("block_hashes")
      .arr(1)
      .i(-2250709314800143512)
      .str("parent_block_hash")
      .nil()
      .str("token_ids")
      .arr(1)
      .u(5)
      .str("block_size")
      .u(1)
      .str("lora_id")
      .nil()
      .str("medium")
      .str("CPU_PINNED")
      .str("cache_salt")
      .str("ns-1")
      .str("session_id")
      .str("abc")
      .u(0);
  const EngineBatch b = decode_ok(m.bytes());
  const auto& s = stored_at(b, 0);
  EXPECT_EQ(s.block_hashes, std::vector<uint64_t>{16196034758909408104ull});
  EXPECT_EQ(s.cache_salt, "ns-1");
  EXPECT_EQ(s.medium, "CPU_PINNED");
  EXPECT_EQ(b.hash_encoding, EngineHashEncoding::kInt64);
  // The map encoder writes the salt right after lora_name.
  const auto again = to_hex(reencode_engine_payload(b));
  const auto tail = to_hex(Mp().str("lora_name").nil().str("cache_salt").str("ns-1").u(0).bytes());
  EXPECT_EQ(again.substr(again.size() - tail.size()), tail);
  EXPECT_EQ(decode_ok(reencode_engine_payload(b)), b);
}

TEST(EnginePayloadCodec, PositionalEncoderDropsSaltWhenLoraNameHoldsSlotSeven) {
  EngineBlockStored s;
  s.block_hashes = {1};
  s.block_size = 0;
  s.lora_name = "adapter-a";
  s.cache_salt = "tenant-a";
  EngineBatch batch;
  batch.events = {s};
  const EngineBatch back =
      decode_ok(encode_engine_payload(batch, {EngineEventEncoding::kPositional, {}}));
  EXPECT_EQ(stored_at(back, 0).lora_name, "adapter-a");
  EXPECT_FALSE(stored_at(back, 0).cache_salt.has_value());
}

// ---------------------------------------------------------------------------------------
// extra_keys and block_mm_infos

TEST(EnginePayloadCodec, ExtraKeysIdentifiersBecomeMultimodalHashes) {
  const std::string hex_id(64, 'c');
  Mp extra;
  extra.arr(3);
  extra.arr(4)
      .str("adapter-a")
      .str(hex_id)
      .arr(2)
      .str("image-7")
      .arr(1)
      .arr(2)
      .u(0)
      .u(3)
      .str("salt-1");
  extra.nil();
  extra.arr(3).u(99).str(hex_id).arr(1).u(5);  // ints and number arrays are not mm
  const auto extra_bytes = extra.bytes();
  Mp m;
  m.batch(1)
      .arr(9)
      .str("BlockStored")
      .arr(3)
      .u(1)
      .u(2)
      .u(3)
      .nil()
      .arr(0)
      .u(0)
      .nil()
      .str("GPU")
      .str("adapter-a");
  m.raw(extra_bytes).u(0);
  const EngineBatch b = decode_ok(m.bytes());
  const auto& s = stored_at(b, 0);
  ASSERT_EQ(s.mm_hashes.size(), 3u);
  EXPECT_EQ(s.mm_hashes[0],
            (std::vector<uint64_t>{hash_mm_identifier(hex_id), hash_mm_identifier("image-7")}));
  EXPECT_TRUE(s.mm_hashes[1].empty());
  EXPECT_EQ(s.mm_hashes[2], std::vector<uint64_t>{hash_mm_identifier(hex_id)});
  EXPECT_EQ(s.cache_salt, "salt-1");  // not the LoRA name
  EXPECT_EQ(s.extra_keys_msgpack, extra_bytes);
  // vLLM's salt lives in extra_keys, so re-encoding adds nothing.
  EXPECT_EQ(to_hex(reencode_engine_payload(b)), to_hex(m.bytes()));
  EngineBatch as_map = b;
  as_map.encoding = EngineEventEncoding::kMap;
  const auto map_bytes = reencode_engine_payload(as_map);
  EXPECT_EQ(to_hex(map_bytes).find(to_hex(Mp().str("cache_salt").bytes())), std::string::npos);
  EXPECT_EQ(stored_at(decode_ok(map_bytes), 0).cache_salt, "salt-1");
}

TEST(EnginePayloadCodec, ExtraKeysStringsLaterThanBlockZeroAreNotSalt) {
  Mp m;
  m.batch(1).arr(9).str("BlockStored").arr(2).u(1).u(2).nil().arr(0).u(0).nil().nil().nil();
  m.arr(2).nil().arr(1).str("tenant-b").u(0);
  const EngineBatch b = decode_ok(m.bytes());
  EXPECT_FALSE(stored_at(b, 0).cache_salt.has_value());
  EXPECT_TRUE(stored_at(b, 0).mm_hashes.empty());
}

TEST(EnginePayloadCodec, ExplicitSaltWinsOverExtraKeys) {
  Mp m;
  m.batch(1).map(6).str("type").str("BlockStored").str("block_hashes").arr(1).u(1);
  m.str("token_ids").arr(0).str("block_size").u(0);
  m.str("extra_keys").arr(1).arr(1).str("from-extra-keys");
  m.str("cache_salt").str("explicit");
  m.nil();
  const EngineBatch b = decode_ok(m.bytes());
  EXPECT_EQ(stored_at(b, 0).cache_salt, "explicit");
  EXPECT_EQ(decode_ok(reencode_engine_payload(b)), b);
}

TEST(EnginePayloadCodec, BlockMmInfosFillMultimodalHashes) {
  Mp extra;
  extra.arr(2);
  extra.map(1).str("mm_objects").arr(2);
  extra.map(2).str("mm_hash").u(123).str("offsets").arr(1).arr(2).u(0).u(4);
  extra.map(2).str("offsets").arr(0).str("mm_hash").u(1ull << 63);
  extra.nil();
  const auto extra_bytes = extra.bytes();
  Mp m;
  m.batch(1).arr(9).str("BlockStored").arr(2).u(1).u(2).nil().arr(0).u(0).nil().str("GPU").nil();
  m.raw(extra_bytes).nil();
  const EngineBatch b = decode_ok(m.bytes());
  const auto& s = stored_at(b, 0);
  ASSERT_EQ(s.mm_hashes.size(), 2u);
  EXPECT_EQ(s.mm_hashes[0], (std::vector<uint64_t>{123, 1ull << 63}));
  EXPECT_TRUE(s.mm_hashes[1].empty());
  EXPECT_FALSE(s.cache_salt.has_value());
  EXPECT_EQ(to_hex(reencode_engine_payload(b)), to_hex(m.bytes()));
}

TEST(EnginePayloadCodec, ExtraKeysWithoutIdentifiersLeaveMultimodalHashesEmpty) {
  const EngineBatch b = decode_ok(from_hex(kVllmMap));
  EXPECT_TRUE(stored_at(b, 0).mm_hashes.empty());
  EXPECT_FALSE(stored_at(b, 0).cache_salt.has_value());
}

// ---------------------------------------------------------------------------------------
// Unknown and malformed input

TEST(EnginePayloadCodec, UnknownTagsAreSkippedAndCounted) {
  Mp m;
  m.batch(4);
  m.arr(3).str("BlockPinned").arr(2).u(1).u(2).map(1).str("deep").arr(1).arr(0);
  m.arr(1).str("AllBlocksCleared");
  m.map(2).str("payload").arr(2).u(1).u(2).str("type").str("SnapshotBarrier");
  m.arr(1).str("");
  m.u(1);
  const EngineBatch b = decode_ok(m.bytes());
  EXPECT_EQ(b.unknown_events, 3u);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<EngineAllBlocksCleared>(b.events[0]));
  EXPECT_EQ(b.encoding, EngineEventEncoding::kPositional);
}

TEST(EnginePayloadCodec, ErrorMessageNamesEventAndField) {
  const auto r = decode_engine_payload(Mp().batch(2)
                                           .arr(1)
                                           .str("AllBlocksCleared")
                                           .arr(6)
                                           .str("BlockStored")
                                           .arr(0)
                                           .nil()
                                           .arr(4)
                                           .u(1)
                                           .u(2)
                                           .u(3)
                                           .str("x")
                                           .u(16)
                                           .nil()
                                           .nil()
                                           .bytes());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "bad_tokens");
  EXPECT_EQ(r.error().message, "event 1 (BlockStored): token_ids[3] is a string, expected uint32");
}

std::vector<uint8_t> nested(size_t depth) { return std::vector<uint8_t>(depth, 0x91); }

std::vector<uint8_t> deep_value(size_t depth) {
  auto v = nested(depth);
  v.push_back(0xc0);
  return v;
}

struct MalformedCase {
  const char* name;
  std::vector<uint8_t> bytes;
  std::string_view reason;
};

std::vector<MalformedCase> malformed_cases() {
  // A valid BlockStored prefix up to (not including) block_size, and the rest.
  // A BlockStored with five fields; the case writes them, then the rank.
  auto stored = [](Mp& m) { return &m.arr(6).str("BlockStored"); };
  std::vector<MalformedCase> cases;
  auto add = [&](const char* name, std::vector<uint8_t> bytes, std::string_view reason) {
    cases.push_back({name, std::move(bytes), reason});
  };
  add("empty input", {}, "truncated");
  add("reserved byte 0xc1", {0xc1}, "msgpack");
  add("an int", {0x01}, "not_array");
  add("a map", Mp().map(0).bytes(), "not_array");
  add("a string", Mp().str("batch").bytes(), "not_array");
  add("batch of one element", Mp().arr(1).f64(1).bytes(), "bad_batch");
  add("empty batch", Mp().arr(0).bytes(), "bad_batch");
  add("ts a string", Mp().arr(3).str("now").arr(0).nil().bytes(), "bad_batch");
  add("ts nil", Mp().arr(3).nil().arr(0).nil().bytes(), "bad_batch");
  add("events not an array", Mp().arr(3).f64(1).u(5).nil().bytes(), "bad_batch");
  add("events a map", Mp().arr(3).f64(1).map(0).nil().bytes(), "bad_batch");
  add("dp_rank a string", Mp().arr(3).f64(1).arr(0).str("0").bytes(), "bad_batch");
  add("dp_rank above int64", Mp().arr(3).f64(1).arr(0).u(1ull << 63).bytes(), "bad_batch");
  add("event an int", Mp().batch(1).u(5).nil().bytes(), "bad_event");
  add("event a string", Mp().batch(1).str("BlockStored").nil().bytes(), "bad_event");
  add("event an empty array", Mp().batch(1).arr(0).nil().bytes(), "bad_event");
  add("tag an int", Mp().batch(1).arr(2).u(1).arr(0).nil().bytes(), "bad_event");
  add("tag nil", Mp().batch(1).arr(1).nil().nil().bytes(), "bad_event");
  add("map without type", Mp().batch(1).map(1).str("block_hashes").arr(0).nil().bytes(),
      "bad_event");
  add("map type an int", Mp().batch(1).map(1).str("type").u(1).nil().bytes(), "bad_event");
  add("BlockStored with 3 fields",
      Mp().batch(1).arr(4).str("BlockStored").arr(0).nil().arr(0).nil().bytes(), "bad_event");
  add("BlockRemoved with no fields", Mp().batch(1).arr(1).str("BlockRemoved").nil().bytes(),
      "bad_event");
  add("map BlockStored missing token_ids",
      Mp().batch(1)
          .map(3)
          .str("type")
          .str("BlockStored")
          .str("block_hashes")
          .arr(0)
          .str("block_size")
          .u(1)
          .nil()
          .bytes(),
      "bad_event");
  add("map BlockRemoved missing block_hashes",
      Mp().batch(1).map(2).str("type").str("BlockRemoved").str("medium").str("GPU").nil().bytes(),
      "bad_event");
  {
    Mp m;
    m.batch(1);
    stored(m)->str("h").nil().arr(0).u(1).nil().nil();
    add("block_hashes a string", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1).map(4).str("type").str("BlockStored").str("block_hashes").nil();
    m.str("token_ids").arr(0).str("block_size").u(1).nil();
    add("map block_hashes nil", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(1).f64(1.0).nil().arr(0).u(1).nil().nil();
    add("hash a float", m.bytes(), "bad_hash");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(1).str("abc").nil().arr(0).u(1).nil().nil();
    add("hash a string", m.bytes(), "bad_hash");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(1).boolean(true).nil().arr(0).u(1).nil().nil();
    add("hash a bool", m.bytes(), "bad_hash");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(1).u(1).arr(0).arr(0).u(1).nil().nil();
    add("parent hash an array", m.bytes(), "bad_hash");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(2).u(1).i(-1).u(1).nil().nil();
    add("token id negative", m.bytes(), "bad_tokens");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(1).u(4294967296ull).u(1).nil().nil();
    add("token id above uint32", m.bytes(), "bad_tokens");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(1).str("7").u(1).nil().nil();
    add("token id a string", m.bytes(), "bad_tokens");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(1).arr(2).u(1).u(2).u(1).nil().nil();
    add("token id a pair", m.bytes(), "bad_tokens");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().str("tokens").u(1).nil().nil();
    add("token_ids a string", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(0).i(-16).nil().nil();
    add("block_size negative", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(0).u(1ull << 32).nil().nil();
    add("block_size above uint32", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(0).f64(16).nil().nil();
    add("block_size a float", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1);
    stored(m)->arr(0).nil().arr(0).u(16).str("lora").nil();
    add("lora_id a string", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1).arr(7).str("BlockStored").arr(0).nil().arr(0).u(16).nil().u(1).nil();
    add("medium an int", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1).arr(9).str("BlockStored").arr(0).nil().arr(0).u(16).nil().nil().nil().str("k");
    m.nil();
    add("extra_keys a string", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1).arr(9).str("BlockStored").arr(0).nil().arr(0).u(16).nil().nil().nil().arr(1).u(3);
    m.nil();
    add("extra_keys entry an int", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1).arr(9).str("BlockStored").arr(0).nil().arr(0).u(16).nil().nil().nil();
    m.arr(1).map(1).str("mm_objects").arr(1).map(1).str("mm_hash").f64(1).nil();
    add("block_mm_infos mm_hash a float", m.bytes(), "bad_event");
  }
  {
    Mp m;
    m.batch(1).arr(4).str("BlockRemoved").arr(0).nil().str("group");
    m.nil();
    add("group_idx a string", m.bytes(), "bad_event");
  }
  add("array header claiming 4 billion elements", Mp().arr(3).f64(1).hex("ddffffffff").bytes(),
      "truncated");
  add("block_hashes claiming 4 billion elements",
      Mp().batch(1).arr(2).str("BlockRemoved").hex("ddffffffff").bytes(), "truncated");
  add("map header claiming 4 billion pairs", Mp().batch(1).hex("dfffffffff").bytes(), "truncated");
  add("str header claiming 4 GB", Mp().batch(1).arr(1).hex("dbffffffff").hex("41").bytes(),
      "truncated");
  add("bin hash claiming 4 GB",
      Mp().batch(1).arr(2).str("BlockRemoved").arr(1).hex("c6ffffffff00").bytes(), "truncated");
  add("batch nested 10000 deep", nested(10000), "bad_batch");
  add("trailing batch element nested 10000 deep",
      Mp().arr(4).f64(1).arr(0).nil().raw(deep_value(10000)).bytes(), "too_deep");
  add("unknown event field nested 10000 deep",
      Mp().batch(1).arr(2).str("Future").raw(deep_value(10000)).nil().bytes(), "too_deep");
  add("unknown map key nested 10000 deep",
      Mp().batch(1)
          .map(2)
          .str("type")
          .str("BlockRemoved")
          .str("x")
          .raw(deep_value(10000))
          .nil()
          .bytes(),
      "too_deep");
  add("extra_keys nested 40 deep",
      Mp().batch(1)
          .arr(9)
          .str("BlockStored")
          .arr(0)
          .nil()
          .arr(0)
          .u(0)
          .nil()
          .nil()
          .nil()
          .raw(deep_value(40))
          .nil()
          .bytes(),
      "too_deep");
  add("trailing bytes", Mp().arr(3).f64(1).arr(0).nil().u(0).bytes(), "trailing_bytes");
  add("reserved byte inside an event", Mp().batch(1).arr(2).str("BlockRemoved").hex("91c1").bytes(),
      "msgpack");
  add("reserved byte in a skipped value", Mp().arr(4).f64(1).arr(0).nil().hex("92c0c1").bytes(),
      "msgpack");
  return cases;
}

TEST(EnginePayloadCodec, MalformedInputsFailWithTheirReason) {
  const auto cases = malformed_cases();
  EXPECT_GE(cases.size(), 25u);
  for (const auto& c : cases) {
    const auto r = decode_engine_payload(c.bytes);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().reason, c.reason) << c.name << ": " << r.error().message;
    EXPECT_FALSE(r.error().message.empty()) << c.name;
  }
}

// A relay decodes every payload of a stream into one batch. Whatever that batch held
// before (events of other kinds, more events, a failed decode, a rank, salts, extra
// keys), the result must be exactly what a fresh decode gives.
TEST(EnginePayloadCodec, DecodingIntoAReusedBatchMatchesAFreshDecode) {
  std::vector<std::vector<uint8_t>> stream = {
      from_hex(kVllmMap),
      from_hex(kSglangPositionalSigned),
      from_hex(kVllmPositionalFull),
      from_hex(kVllmPositionalInt),
      Mp().batch(0).u(3).bytes(),
      from_hex(kVllmMap),
      from_hex(kVllmMap),
  };
  for (const auto& c : malformed_cases()) {
    stream.insert(stream.begin() + static_cast<std::ptrdiff_t>(stream.size() / 2), c.bytes);
  }
  EngineBatch reused;
  size_t decoded = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    const auto fresh = decode_engine_payload(stream[i]);
    const auto into = decode_engine_payload(stream[i], reused);
    ASSERT_EQ(into.ok(), fresh.ok()) << "payload " << i;
    if (!fresh.ok()) {
      EXPECT_EQ(into.error().reason, fresh.error().reason) << "payload " << i;
      EXPECT_EQ(into.error().message, fresh.error().message) << "payload " << i;
      continue;
    }
    ++decoded;
    EXPECT_EQ(reused, *fresh) << "payload " << i;
    EXPECT_EQ(reencode_engine_payload(reused), stream[i]) << "payload " << i;
  }
  EXPECT_EQ(decoded, 7u);
}

TEST(EnginePayloadCodec, AReusedBatchKeepsItsEventsStorage) {
  const auto payload = from_hex(kVllmPositionalFull);
  EngineBatch batch;
  ASSERT_TRUE(decode_engine_payload(payload, batch).ok());
  const EngineEvent* events = batch.events.data();
  const uint64_t* hashes = stored_at(batch, 0).block_hashes.data();
  const TokenId* tokens = stored_at(batch, 0).token_ids.data();
  const uint64_t* removed_hashes = removed_at(batch, 1).block_hashes.data();
  ASSERT_TRUE(decode_engine_payload(payload, batch).ok());
  EXPECT_EQ(batch.events.data(), events);
  EXPECT_EQ(stored_at(batch, 0).block_hashes.data(), hashes);
  EXPECT_EQ(stored_at(batch, 0).token_ids.data(), tokens);
  EXPECT_EQ(removed_at(batch, 1).block_hashes.data(), removed_hashes);
  EXPECT_EQ(stored_at(batch, 0).token_ids, iota_tokens(16));
}

TEST(EnginePayloadCodec, NestingAtTheLimitIsAcceptedInIgnoredValues) {
  // The batch is level 1, so a trailing element may nest 31 more levels.
  EXPECT_TRUE(
      decode_engine_payload(Mp().arr(4).f64(1).arr(0).nil().raw(deep_value(31)).bytes()).ok());
  const auto r = decode_engine_payload(Mp().arr(4).f64(1).arr(0).nil().raw(deep_value(32)).bytes());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "too_deep");
}

}  // namespace
}  // namespace kvmock
