#include "core/dynamo/model_card.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kvmock::dynamo {
namespace {

std::string checksum_of(char digit) { return "blake3:" + std::string(64, digit); }

// The card of a local model directory /models/tiny served as "tiny", with every file.
ModelCardSpec tiny_card() {
  ModelCardSpec spec;
  spec.display_name = "tiny";
  spec.slug = "tiny";
  spec.directory = "/models/tiny";
  spec.config_json = {"config.json", checksum_of('1')};
  spec.tokenizer_json = {"tokenizer.json", checksum_of('2')};
  spec.tokenizer_config_json = {"tokenizer_config.json", checksum_of('3')};
  spec.generation_config_json = ModelFile{"generation_config.json", checksum_of('4')};
  spec.context_length = 4096;
  spec.kv_cache_block_size = 64;
  spec.chat = true;
  spec.runtime_config.total_kv_blocks = 16384;
  spec.runtime_config.data_parallel_size = 1;
  return spec;
}

TEST(DynamoModelCard, CardMatchesTheMockersFieldOrderByteForByte) {
  const std::string c1 = checksum_of('1'), c2 = checksum_of('2'), c3 = checksum_of('3'),
                    c4 = checksum_of('4');
  const std::string expected =
      R"({"display_name":"tiny","slug":"tiny",)"
      R"("model_info":{"hf_config_json":{"path":"/models/tiny/config.json","checksum":")" +
      c1 +
      R"("}},)"
      R"("tokenizer":{"hf_tokenizer_json":{"path":"/models/tiny/tokenizer.json","checksum":")" +
      c2 +
      R"("}},)"
      R"("prompt_formatter":{"hf_tokenizer_config_json":{"path":"/models/tiny/tokenizer_config.json","checksum":")" +
      c3 +
      R"("}},)"
      R"("gen_config":{"hf_generation_config_json":{"path":"/models/tiny/generation_config.json","checksum":")" +
      c4 +
      R"("}},)"
      R"("context_length":4096,"kv_cache_block_size":64,"migration_limit":0,)"
      R"("model_type":"Chat | Completions","model_input":"Tokens",)"
      R"("runtime_config":{"total_kv_blocks":16384,"max_num_seqs":null,"max_num_batched_tokens":null,)"
      R"("tool_call_parser":null,"reasoning_parser":null,"data_parallel_start_rank":0,)"
      R"("data_parallel_size":1,"enable_local_indexer":true},)"
      R"("media_decoder":null,"media_fetcher":null})";
  EXPECT_EQ(model_card_json(tiny_card()), expected);
}

TEST(DynamoModelCard, CardCarriesEveryFieldTheFrontendRequires) {
  const nlohmann::json card = nlohmann::json::parse(model_card_json(tiny_card()));
  for (const char* field :
       {"display_name", "slug", "model_info", "tokenizer", "context_length", "kv_cache_block_size",
        "migration_limit", "model_type", "model_input"}) {
    EXPECT_TRUE(card.contains(field)) << field;
  }
  // The optional fields Dynamo leaves out when unset stay out.
  for (const char* field : {"source_path", "prompt_context", "lora", "user_data"}) {
    EXPECT_FALSE(card.contains(field)) << field;
  }
}

TEST(DynamoModelCard, CompletionsOnlyWithoutAChatTemplate) {
  ModelCardSpec spec = tiny_card();
  spec.chat = false;
  const nlohmann::json card = nlohmann::json::parse(model_card_json(spec));
  EXPECT_EQ(card["model_type"], "Completions");
}

TEST(DynamoModelCard, OptionalFilesAreLeftOutWhenAbsent) {
  ModelCardSpec spec = tiny_card();
  spec.generation_config_json.reset();
  const nlohmann::json card = nlohmann::json::parse(model_card_json(spec));
  EXPECT_FALSE(card.contains("gen_config"));
  EXPECT_FALSE(card.contains("chat_template_file"));
}

TEST(DynamoModelCard, ChatTemplateFileSitsBetweenPromptFormatterAndGenConfig) {
  ModelCardSpec spec = tiny_card();
  spec.chat_template_jinja = ModelFile{"chat_template.jinja", checksum_of('5')};
  const std::string json = model_card_json(spec);
  const std::string chat_template =
      R"("chat_template_file":{"hf_chat_template":{"is_custom":false,)"
      R"("file":{"path":"/models/tiny/chat_template.jinja","checksum":")" +
      checksum_of('5') + R"("}}},)";
  const size_t at = json.find(chat_template);
  ASSERT_NE(at, std::string::npos) << json;
  EXPECT_LT(json.find("\"prompt_formatter\""), at);
  EXPECT_EQ(json.find("\"gen_config\""), at + chat_template.size());
}

TEST(DynamoModelCard, RuntimeConfigPrintsLargeCountsExactly) {
  ModelCardSpec spec = tiny_card();
  spec.runtime_config.total_kv_blocks = 18446744073709551615ULL;
  spec.runtime_config.max_num_seqs = 256;
  spec.runtime_config.max_num_batched_tokens = 8192;
  spec.runtime_config.data_parallel_size = 4;
  const std::string json = model_card_json(spec);
  EXPECT_NE(json.find(R"("runtime_config":{"total_kv_blocks":18446744073709551615,)"
                      R"("max_num_seqs":256,"max_num_batched_tokens":8192,)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("data_parallel_size":4,"enable_local_indexer":true})"), std::string::npos)
      << json;
}

TEST(DynamoModelCard, NamesAndPathsAreEscapedAsJson) {
  ModelCardSpec spec = tiny_card();
  spec.display_name = "say \"hi\"";
  spec.directory = "/models/back\\slash";
  const nlohmann::json card = nlohmann::json::parse(model_card_json(spec));
  EXPECT_EQ(card["display_name"], "say \"hi\"");
  EXPECT_EQ(card["model_info"]["hf_config_json"]["path"], "/models/back\\slash/config.json");
}

TEST(DynamoModelCard, FilesInTheRootDirectoryGetOneSlash) {
  ModelCardSpec spec = tiny_card();
  spec.directory = "/";
  const nlohmann::json card = nlohmann::json::parse(model_card_json(spec));
  EXPECT_EQ(card["tokenizer"]["hf_tokenizer_json"]["path"], "/tokenizer.json");
}

TEST(DynamoSlug, LowerCasesAndReplacesEverythingOutsideTheSlugAlphabet) {
  EXPECT_EQ(slugify("Qwen/Qwen3-0.6B"), "qwen_qwen3-0_6b");
  EXPECT_EQ(slugify("Llama 3.1 8B Instruct"), "llama_3_1_8b_instruct");
  EXPECT_EQ(slugify("tiny"), "tiny");
}

TEST(DynamoSlug, LeadingUnderscoresAreRemoved) {
  EXPECT_EQ(slugify("/models/tiny"), "models_tiny");
  EXPECT_EQ(slugify("__x_"), "x_");
  EXPECT_EQ(slugify("///"), "");
  EXPECT_EQ(slugify(""), "");
}

TEST(DynamoSlug, OneUnderscorePerCharacterNotPerByte) {
  EXPECT_EQ(slugify("caf\xc3\xa9"), "caf_");  // é, two bytes
  EXPECT_EQ(slugify("a\xe2\x82\xac"
                    "b"),
            "a_b");  // €, three bytes
  EXPECT_EQ(slugify("a\xf0\x9f\x98\x80"
                    "b"),
            "a_b");  // an emoji, four bytes
  EXPECT_EQ(slugify("a\xff"
                    "b"),
            "a_b");  // not UTF-8: one per byte
}

TEST(DynamoSlug, UnicodeLowerCasingThatLandsOnAscii) {
  EXPECT_EQ(slugify("\xe2\x84\xaa"
                    "v"),
            "kv");  // KELVIN SIGN lower-cases to 'k'
  EXPECT_EQ(slugify("\xc4\xb0"
                    "x"),
            "i_x");  // İ lower-cases to 'i' + a combining dot
}

}  // namespace
}  // namespace kvmock::dynamo
