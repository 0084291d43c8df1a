// HfTokenizer against goldens made by the reference Rust library (tests/data/tokenizers/
// goldens/<model>.json) on the real tokenizer.json of each model, fetched by the
// setup.tokenizer_models fixture into KVMOCK_TEST_MODELS_DIR. Every case must match.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/tokenizer/hf_tokenizer.h"

namespace kvmock {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ids_text(const std::vector<TokenId>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

class HfTokenizerGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfTokenizerGoldenTest, EncodeAndDecodeMatchTheReferenceLibrary) {
  const std::string model = GetParam();
  const std::string json =
      read_file(std::string(KVMOCK_TEST_MODELS_DIR) + "/" + model + "/tokenizer.json");
  ASSERT_FALSE(json.empty()) << "missing tokenizer.json of " << model << " (run the fixture)";
  auto tokenizer = HfTokenizer::from_json(json);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().reason << ": " << tokenizer.error().message;
  const auto golden = nlohmann::json::parse(
      read_file(std::string(KVMOCK_TEST_DATA_DIR) + "/tokenizers/goldens/" + model + ".json"),
      nullptr, false);
  ASSERT_FALSE(golden.is_discarded());
  size_t encode_cases = 0;
  for (const auto& item : golden["encode"]) {
    const std::string text = item["text"].get<std::string>();
    const auto plain = (*tokenizer)->encode(text, false);
    const auto special = (*tokenizer)->encode(text, true);
    ASSERT_TRUE(plain.ok()) << text;
    ASSERT_TRUE(special.ok()) << text;
    const auto want = item["ids"].get<std::vector<TokenId>>();
    const auto want_special = item["ids_with_special"].get<std::vector<TokenId>>();
    EXPECT_EQ(*plain, want) << "text: " << nlohmann::json(text).dump() << "\nexpected "
                            << ids_text(want) << "\nactual   " << ids_text(*plain);
    EXPECT_EQ(*special, want_special) << "with special, text: " << nlohmann::json(text).dump();
    ++encode_cases;
  }
  size_t decode_cases = 0;
  for (const auto& item : golden["decode"]) {
    const auto ids = item["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ((*tokenizer)->decode(ids, false), item["text"].get<std::string>()) << ids_text(ids);
    EXPECT_EQ((*tokenizer)->decode(ids, true), item["text_skip_special"].get<std::string>())
        << "skip special " << ids_text(ids);
    ++decode_cases;
  }
  EXPECT_GT(encode_cases, 0u);
  std::cout << model << ": " << encode_cases << " encode cases, " << decode_cases
            << " decode cases\n";
}

INSTANTIATE_TEST_SUITE_P(Models, HfTokenizerGoldenTest,
                         ::testing::Values("qwen3", "llama3_1", "llama2"));

}  // namespace
}  // namespace kvmock
