#include "core/common/blake3.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace kvmock {
namespace {

struct Vector {
  size_t input_len = 0;
  std::string hash;
  std::string keyed_hash;
};

std::vector<Vector> official_vectors() {
  std::ifstream in(std::string(KVMOCK_TEST_DATA_DIR) + "/blake3_vectors.txt");
  std::vector<Vector> vectors;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Vector v;
    fields >> v.input_len >> v.hash >> v.keyed_hash;
    vectors.push_back(v);
  }
  return vectors;
}

std::vector<uint8_t> pattern_input(size_t length) {
  std::vector<uint8_t> input(length);
  for (size_t i = 0; i < length; ++i) input[i] = static_cast<uint8_t>(i % 251);
  return input;
}

std::array<uint8_t, Blake3::kKeyBytes> test_key() {
  const std::string text = "whats the Elvish word for friend";
  std::array<uint8_t, Blake3::kKeyBytes> key;
  std::copy(text.begin(), text.end(), key.begin());
  return key;
}

TEST(Blake3, MatchesEveryOfficialVectorInPlainAndKeyedMode) {
  const auto vectors = official_vectors();
  ASSERT_EQ(vectors.size(), 21u);
  for (const Vector& v : vectors) {
    const auto input = pattern_input(v.input_len);
    Blake3 plain;
    plain.update(input);
    EXPECT_EQ(to_hex(plain.digest()), v.hash) << "input_len " << v.input_len;
    Blake3 keyed(test_key());
    keyed.update(input);
    EXPECT_EQ(to_hex(keyed.digest()), v.keyed_hash) << "input_len " << v.input_len;
  }
}

TEST(Blake3, FeedingTheInputInPiecesOfAnySizeGivesTheSameDigest) {
  const auto input = pattern_input(102400);
  Blake3 whole;
  whole.update(input);
  std::mt19937 random(7);
  for (int trial = 0; trial < 20; ++trial) {
    Blake3 pieces;
    size_t offset = 0;
    while (offset < input.size()) {
      const size_t take = std::min<size_t>(random() % 3000, input.size() - offset);
      pieces.update(std::span(input).subspan(offset, take));
      offset += take;
    }
    EXPECT_EQ(pieces.digest(), whole.digest()) << "trial " << trial;
  }
}

TEST(Blake3, DigestDoesNotConsumeTheState) {
  Blake3 hasher;
  hasher.update("abc");
  const auto first = hasher.digest();
  EXPECT_EQ(hasher.digest(), first);
  hasher.update("def");
  Blake3 direct;
  direct.update("abcdef");
  EXPECT_EQ(hasher.digest(), direct.digest());
}

// Debian's b3sum (the BLAKE3 team's Rust implementation) is the reference for files of
// arbitrary content, as a model card's checksums are computed over real files.
std::string b3sum_of(const std::filesystem::path& path) {
  const std::string command = "b3sum --no-names " + path.string();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char buffer[128] = {};
  std::string out;
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

TEST(Blake3, ChecksumEqualsDebiansB3sumOnRandomFiles) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("kvmock-b3-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::mt19937_64 random(11);
  for (size_t length : {0u, 63u, 64u, 65u, 1024u, 1025u, 9999u, 65536u, 300001u}) {
    std::vector<uint8_t> content(length);
    for (auto& byte : content) byte = static_cast<uint8_t>(random());
    const auto path = dir / ("f" + std::to_string(length));
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(content.data()),
               static_cast<std::streamsize>(content.size()));
    const std::string reference = b3sum_of(path);
    ASSERT_EQ(reference.size(), 64u)
        << "b3sum (deploy/install-deps.sh installs it) printed '" << reference << "'";
    EXPECT_EQ(blake3_checksum(content), "blake3:" + reference) << "length " << length;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvmock
