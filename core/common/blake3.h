// BLAKE3 (the portable, single-threaded form of the specification), for the `blake3:`
// file checksums a Dynamo model card carries (docs/wire-formats.md). Debian 12 packages no
// C library for it, so it is written here against the official test vectors
// (tests/data/blake3_vectors.txt) and checked against Debian's `b3sum`.
//
// Incremental: update() any number of times, then digest() (which does not consume the
// state). Plain hashing and keyed hashing; 32-byte output. Not for secrets: there is no
// constant-time guarantee beyond what the plain arithmetic gives.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvmock {

class Blake3 {
 public:
  static constexpr size_t kDigestBytes = 32;
  static constexpr size_t kKeyBytes = 32;
  using Digest = std::array<uint8_t, kDigestBytes>;

  // Plain hashing.
  Blake3();
  // Keyed hashing with a 32-byte key.
  explicit Blake3(const std::array<uint8_t, kKeyBytes>& key);

  void update(std::span<const uint8_t> bytes);
  void update(std::string_view text);
  Digest digest() const;

 private:
  using Words = std::array<uint32_t, 8>;
  static constexpr size_t kBlockBytes = 64;
  static constexpr size_t kChunkBytes = 1024;

  // The state of the chunk being filled: its chaining value and its not-yet-compressed
  // last block (a block is compressed only once more input proves it is not the last).
  struct ChunkState {
    Words chaining{};
    uint64_t counter = 0;
    std::array<uint8_t, kBlockBytes> block{};
    size_t block_len = 0;
    size_t blocks_compressed = 0;
    size_t bytes() const { return blocks_compressed * kBlockBytes + block_len; }
  };
  // The inputs of a compression not yet run: enough to produce the chaining value of a
  // node or, for the root, its output.
  struct Node {
    Words input_chaining{};
    std::array<uint32_t, 16> block_words{};
    uint64_t counter = 0;
    uint32_t block_len = 0;
    uint32_t flags = 0;
    Words chaining_value() const;
    Digest root_output() const;
  };

  void start_chunk(uint64_t counter);
  void update_chunk(std::span<const uint8_t> bytes);
  Node chunk_node() const;
  Node parent_node(const Words& left, const Words& right) const;
  void push_chunk_chaining(Words chaining, uint64_t total_chunks);

  Words key_;
  uint32_t flags_;
  ChunkState chunk_;
  // Chaining values of completed subtrees, at most one per level (54 levels cover 2^64
  // bytes).
  std::vector<Words> stack_;
};

// "blake3:" followed by the lowercase hex digest, as a model card writes a file checksum.
std::string blake3_checksum(std::span<const uint8_t> bytes);

// Lowercase hex of a digest.
std::string to_hex(const Blake3::Digest& digest);

}  // namespace kvmock
