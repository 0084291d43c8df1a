#include "core/tokens/block_hash.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace kvmock {
namespace {

void put_le32(uint8_t* out, uint32_t v) {
  out[0] = static_cast<uint8_t>(v);
  out[1] = static_cast<uint8_t>(v >> 8);
  out[2] = static_cast<uint8_t>(v >> 16);
  out[3] = static_cast<uint8_t>(v >> 24);
}

void put_le64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

uint64_t xxh3_64(std::span<const uint8_t> bytes, uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

uint64_t xxh3_64(std::string_view bytes, uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

uint64_t block_hash_seed(std::string_view lora_name, std::string_view cache_salt) {
  uint64_t seed = kBlockHashSeed;
  if (!lora_name.empty()) seed += xxh3_64(lora_name, 0);
  if (!cache_salt.empty()) seed += xxh3_64(cache_salt, 1);
  return seed;
}

uint64_t tokens_hash(std::span<const TokenId> block, uint64_t seed,
                     std::span<const uint64_t> mm_hashes) {
  // Token ids are hashed as u32 little-endian. On little-endian hosts that is the
  // in-memory layout already, so the common case hashes the vector in place.
  if constexpr (std::endian::native == std::endian::little) {
    if (mm_hashes.empty()) {
      return XXH3_64bits_withSeed(block.data(), block.size_bytes(), seed);
    }
  }
  std::vector<uint8_t> bytes(block.size() * 4 + mm_hashes.size() * 8);
  uint8_t* out = bytes.data();
  for (TokenId t : block) {
    put_le32(out, t);
    out += 4;
  }
  std::vector<uint64_t> sorted(mm_hashes.begin(), mm_hashes.end());
  std::sort(sorted.begin(), sorted.end());
  for (uint64_t h : sorted) {
    put_le64(out, h);
    out += 8;
  }
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

std::vector<uint64_t> tokens_hashes(std::span<const TokenId> tokens, uint32_t block_size,
                                    uint64_t seed) {
  std::vector<uint64_t> hashes;
  if (block_size == 0) return hashes;
  const size_t blocks = tokens.size() / block_size;
  hashes.reserve(blocks);
  for (size_t i = 0; i < blocks; ++i) {
    hashes.push_back(tokens_hash(tokens.subspan(i * block_size, block_size), seed));
  }
  return hashes;
}

uint64_t next_sequence_hash(uint64_t parent_sequence_hash, uint64_t block_tokens_hash) {
  std::array<uint8_t, 16> bytes;
  put_le64(bytes.data(), parent_sequence_hash);
  put_le64(bytes.data() + 8, block_tokens_hash);
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), kBlockHashSeed);
}

std::vector<uint64_t> sequence_hashes(std::span<const uint64_t> block_tokens_hashes) {
  std::vector<uint64_t> seq;
  seq.reserve(block_tokens_hashes.size());
  for (size_t i = 0; i < block_tokens_hashes.size(); ++i) {
    seq.push_back(i == 0 ? block_tokens_hashes[0]
                         : next_sequence_hash(seq.back(), block_tokens_hashes[i]));
  }
  return seq;
}

uint64_t hash_mm_identifier(std::string_view identifier) {
  if (identifier.size() == 64 &&
      std::all_of(identifier.begin(), identifier.end(), [](char c) { return hex_value(c) >= 0; })) {
    uint64_t value = 0;
    for (size_t i = 0; i < 16; ++i)
      value = (value << 4) | static_cast<uint64_t>(hex_value(identifier[i]));
    return value;
  }
  return xxh3_64(identifier, 0);
}

}  // namespace kvmock
