// Real models' chat templates (tokenizer_config.json "chat_template", fetched by the
// setup.tokenizer_models fixture) render exactly the text the reference renderer
// (@huggingface/jinja) produced for each golden context in
// tests/data/chat_templates/goldens/<model>.json. llama2's config carries no template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/chat/chat_template.h"

namespace kvmock {
namespace {

nlohmann::ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::ordered_json::parse(buffer.str(), nullptr, false);
}

class ChatTemplateGolden : public testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateGolden, RendersEveryGoldenContextExactly) {
  const std::string model = GetParam();
  const std::string golden_path =
      std::string(KVMOCK_TEST_DATA_DIR "/chat_templates/goldens/") + model + ".json";
  if (!std::filesystem::exists(golden_path)) GTEST_SKIP() << "no goldens for " << model;
  const auto config =
      read_json(std::string(KVMOCK_TEST_MODELS_DIR "/") + model + "/tokenizer_config.json");
  ASSERT_FALSE(config.is_discarded());
  ASSERT_TRUE(config.contains("chat_template") && config["chat_template"].is_string());
  auto parsed = ChatTemplate::parse(config["chat_template"].get<std::string>());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto golden = read_json(golden_path);
  ASSERT_FALSE(golden.is_discarded());
  ASSERT_FALSE(golden["renders"].empty());
  for (const auto& render : golden["renders"]) {
    auto text = (*parsed)->render(render["context"]);
    ASSERT_TRUE(text.ok()) << text.error().message;
    EXPECT_EQ(*text, render["text"].get<std::string>()) << render["context"].dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ChatTemplateGolden, testing::Values("qwen3", "llama3_1"));

}  // namespace
}  // namespace kvmock
