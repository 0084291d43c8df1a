// Block content hashes and prefix-chained sequence hashes, bit-compatible with
// Dynamo's router (docs/wire-formats.md#block-hashing).
//
//   tokens_hash(block) = XXH3-64(token ids as u32 little-endian, seed)
//   seq[0] = tokens_hash[0];  seq[i] = XXH3-64(le64(seq[i-1]) || le64(tokens_hash[i]), 1337)
//
// The seed is 1337, salted by a LoRA adapter name and a cache namespace (salt) when
// the request carries them. Only full blocks are hashed; a trailing partial block is
// ignored.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kvmock {

using TokenId = uint32_t;

inline constexpr uint64_t kBlockHashSeed = 1337;

// Seed for a request: 1337, plus XXH3-64(lora_name, 0) when lora_name is non-empty,
// plus XXH3-64(cache_salt, 1) when cache_salt is non-empty (wrapping adds).
uint64_t block_hash_seed(std::string_view lora_name = {}, std::string_view cache_salt = {});

// XXH3-64 of raw bytes with a seed.
uint64_t xxh3_64(std::span<const uint8_t> bytes, uint64_t seed);
uint64_t xxh3_64(std::string_view bytes, uint64_t seed);

// Content hash of one block of tokens. `mm_hashes` are the multimodal object hashes
// that overlap the block; they are hashed after the tokens, sorted ascending, as u64
// little-endian (the order given does not matter).
uint64_t tokens_hash(std::span<const TokenId> block, uint64_t seed = kBlockHashSeed,
                     std::span<const uint64_t> mm_hashes = {});

// Content hashes of every full block of `tokens`, in order. block_size 0 gives none.
std::vector<uint64_t> tokens_hashes(std::span<const TokenId> tokens, uint32_t block_size,
                                    uint64_t seed = kBlockHashSeed);

// The chain step: the sequence hash of a block whose parent has `parent_sequence_hash`.
uint64_t next_sequence_hash(uint64_t parent_sequence_hash, uint64_t block_tokens_hash);

// Sequence hashes for a run of content hashes; seq[0] = tokens_hashes[0].
std::vector<uint64_t> sequence_hashes(std::span<const uint64_t> block_tokens_hashes);

// Turns an engine's multimodal identifier into a u64: a 64-hex-digit string yields its
// first 16 hex digits, anything else XXH3-64(identifier, seed 0).
uint64_t hash_mm_identifier(std::string_view identifier);

}  // namespace kvmock
