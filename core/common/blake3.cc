#include "core/common/blake3.h"

#include <algorithm>
#include <cstring>

namespace kvmock {
namespace {

constexpr std::array<uint32_t, 8> kIv = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                         0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
constexpr std::array<size_t, 16> kMessagePermutation = {2, 6,  3,  10, 7, 0,  4,  13,
                                                        1, 11, 12, 5,  9, 14, 15, 8};
enum Flag : uint32_t {
  kChunkStart = 1u << 0,
  kChunkEnd = 1u << 1,
  kParent = 1u << 2,
  kRoot = 1u << 3,
  kKeyedHash = 1u << 4,
};
constexpr int kRounds = 7;

uint32_t rotate_right(uint32_t value, int bits) { return (value >> bits) | (value << (32 - bits)); }

void mix(std::array<uint32_t, 16>& s, size_t a, size_t b, size_t c, size_t d, uint32_t x,
         uint32_t y) {
  s[a] = s[a] + s[b] + x;
  s[d] = rotate_right(s[d] ^ s[a], 16);
  s[c] = s[c] + s[d];
  s[b] = rotate_right(s[b] ^ s[c], 12);
  s[a] = s[a] + s[b] + y;
  s[d] = rotate_right(s[d] ^ s[a], 8);
  s[c] = s[c] + s[d];
  s[b] = rotate_right(s[b] ^ s[c], 7);
}

void round_function(std::array<uint32_t, 16>& s, const std::array<uint32_t, 16>& m) {
  mix(s, 0, 4, 8, 12, m[0], m[1]);  // columns
  mix(s, 1, 5, 9, 13, m[2], m[3]);
  mix(s, 2, 6, 10, 14, m[4], m[5]);
  mix(s, 3, 7, 11, 15, m[6], m[7]);
  mix(s, 0, 5, 10, 15, m[8], m[9]);  // diagonals
  mix(s, 1, 6, 11, 12, m[10], m[11]);
  mix(s, 2, 7, 8, 13, m[12], m[13]);
  mix(s, 3, 4, 9, 14, m[14], m[15]);
}

// The compression function: all 16 output words (the first 8 are the chaining value).
std::array<uint32_t, 16> compress(const std::array<uint32_t, 8>& chaining,
                                  std::array<uint32_t, 16> block, uint64_t counter,
                                  uint32_t block_len, uint32_t flags) {
  std::array<uint32_t, 16> s = {chaining[0],
                                chaining[1],
                                chaining[2],
                                chaining[3],
                                chaining[4],
                                chaining[5],
                                chaining[6],
                                chaining[7],
                                kIv[0],
                                kIv[1],
                                kIv[2],
                                kIv[3],
                                static_cast<uint32_t>(counter),
                                static_cast<uint32_t>(counter >> 32),
                                block_len,
                                flags};
  for (int round = 0; round < kRounds; ++round) {
    round_function(s, block);
    if (round + 1 == kRounds) break;
    std::array<uint32_t, 16> permuted;
    for (size_t i = 0; i < 16; ++i) permuted[i] = block[kMessagePermutation[i]];
    block = permuted;
  }
  for (size_t i = 0; i < 8; ++i) {
    s[i] ^= s[i + 8];
    s[i + 8] ^= chaining[i];
  }
  return s;
}

uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

std::array<uint32_t, 16> block_words(const uint8_t* block) {
  std::array<uint32_t, 16> words;
  for (size_t i = 0; i < 16; ++i) words[i] = load_le32(block + 4 * i);
  return words;
}

}  // namespace

Blake3::Blake3() : key_(kIv), flags_(0) { start_chunk(0); }

Blake3::Blake3(const std::array<uint8_t, kKeyBytes>& key) : flags_(kKeyedHash) {
  for (size_t i = 0; i < 8; ++i) key_[i] = load_le32(key.data() + 4 * i);
  start_chunk(0);
}

void Blake3::start_chunk(uint64_t counter) {
  chunk_ = ChunkState{};
  chunk_.chaining = key_;
  chunk_.counter = counter;
}

void Blake3::update(std::string_view text) {
  update(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void Blake3::update(std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    // A full chunk is finished only once more input arrives: the last chunk is the root
    // when the whole input fits in one.
    if (chunk_.bytes() == kChunkBytes) {
      const Words chaining = chunk_node().chaining_value();
      const uint64_t total_chunks = chunk_.counter + 1;
      push_chunk_chaining(chaining, total_chunks);
      start_chunk(total_chunks);
    }
    const size_t take = std::min(kChunkBytes - chunk_.bytes(), bytes.size());
    update_chunk(bytes.first(take));
    bytes = bytes.subspan(take);
  }
}

void Blake3::update_chunk(std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    if (chunk_.block_len == kBlockBytes) {
      const uint32_t flags = flags_ | (chunk_.blocks_compressed == 0 ? kChunkStart : 0u);
      const auto out = compress(chunk_.chaining, block_words(chunk_.block.data()), chunk_.counter,
                                kBlockBytes, flags);
      std::copy_n(out.begin(), 8, chunk_.chaining.begin());
      ++chunk_.blocks_compressed;
      chunk_.block.fill(0);
      chunk_.block_len = 0;
    }
    const size_t take = std::min(kBlockBytes - chunk_.block_len, bytes.size());
    std::memcpy(chunk_.block.data() + chunk_.block_len, bytes.data(), take);
    chunk_.block_len += take;
    bytes = bytes.subspan(take);
  }
}

Blake3::Node Blake3::chunk_node() const {
  Node node;
  node.input_chaining = chunk_.chaining;
  node.block_words = block_words(chunk_.block.data());
  node.counter = chunk_.counter;
  node.block_len = static_cast<uint32_t>(chunk_.block_len);
  node.flags = flags_ | kChunkEnd | (chunk_.blocks_compressed == 0 ? kChunkStart : 0u);
  return node;
}

Blake3::Node Blake3::parent_node(const Words& left, const Words& right) const {
  Node node;
  node.input_chaining = key_;
  std::copy(left.begin(), left.end(), node.block_words.begin());
  std::copy(right.begin(), right.end(), node.block_words.begin() + 8);
  node.counter = 0;
  node.block_len = kBlockBytes;
  node.flags = flags_ | kParent;
  return node;
}

// Merges completed subtrees: after chunk number `total_chunks`, as many merges as that
// count has trailing zero bits (the binary-counter rule of the specification).
void Blake3::push_chunk_chaining(Words chaining, uint64_t total_chunks) {
  while ((total_chunks & 1) == 0) {
    chaining = parent_node(stack_.back(), chaining).chaining_value();
    stack_.pop_back();
    total_chunks >>= 1;
  }
  stack_.push_back(chaining);
}

Blake3::Digest Blake3::digest() const {
  Node node = chunk_node();
  for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
    node = parent_node(*it, node.chaining_value());
  }
  return node.root_output();
}

Blake3::Words Blake3::Node::chaining_value() const {
  const auto out = compress(input_chaining, block_words, counter, block_len, flags);
  Words words;
  std::copy_n(out.begin(), 8, words.begin());
  return words;
}

Blake3::Digest Blake3::Node::root_output() const {
  const auto out = compress(input_chaining, block_words, 0, block_len, flags | kRoot);
  Digest digest;
  for (size_t i = 0; i < 8; ++i) {
    for (size_t b = 0; b < 4; ++b) digest[4 * i + b] = static_cast<uint8_t>(out[i] >> (8 * b));
  }
  return digest;
}

std::string to_hex(const Blake3::Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest.size());
  for (uint8_t byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 0xf]);
  }
  return hex;
}

std::string blake3_checksum(std::span<const uint8_t> bytes) {
  Blake3 hasher;
  hasher.update(bytes);
  return "blake3:" + to_hex(hasher.digest());
}

}  // namespace kvmock
