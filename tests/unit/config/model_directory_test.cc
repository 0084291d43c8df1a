#include "config/model_directory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace kvmock {
namespace {

namespace fs = std::filesystem;

const fs::path kModelDirs = fs::path(KVMOCK_TEST_DATA_DIR) / "model_dirs";

// Debian's b3sum, the reference implementation, on one file ("" when it cannot run).
std::string b3sum_of(const fs::path& path) {
  const std::string command = "b3sum --no-names '" + path.string() + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char buffer[128] = {};
  std::string out;
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// A scratch copy of a fixture directory, removed with the object, so a test can delete or
// break one file.
class ScratchModelDir {
 public:
  explicit ScratchModelDir(const std::string& fixture)
      : path_(fs::temp_directory_path() /
              ("kvmock-model-dir-" + std::to_string(getpid()) + "-" + fixture)) {
    fs::remove_all(path_);
    fs::copy(kModelDirs / fixture, path_, fs::copy_options::recursive);
  }
  ~ScratchModelDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
  }

 private:
  fs::path path_;
};

TEST(ModelDirectory, ReadsEveryFileWithB3sumChecksums) {
  const auto dir = read_model_directory((kModelDirs / "tiny_chat").string());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(dir->path, fs::canonical(kModelDirs / "tiny_chat").string());
  ASSERT_TRUE(dir->generation_config_json.has_value());
  EXPECT_FALSE(dir->chat_template_jinja.has_value());
  const std::vector<const dynamo::ModelFile*> files = {&dir->config_json, &dir->tokenizer_json,
                                                       &dir->tokenizer_config_json,
                                                       &*dir->generation_config_json};
  const std::vector<std::string> names = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                          "generation_config.json"};
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(files[i]->name, names[i]);
    const std::string reference = b3sum_of(kModelDirs / "tiny_chat" / names[i]);
    ASSERT_EQ(reference.size(), 64u)
        << "b3sum (deploy/install-deps.sh installs it) printed '" << reference << "'";
    EXPECT_EQ(files[i]->checksum, "blake3:" + reference) << names[i];
  }
}

TEST(ModelDirectory, FactsComeFromConfigAndGenerationConfig) {
  const auto dir = read_model_directory((kModelDirs / "tiny_chat").string());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  // max_position_embeddings wins over tokenizer_config's "no limit" model_max_length.
  EXPECT_EQ(dir->context_length, 2048u);
  EXPECT_EQ(dir->vocab_size, 1000u);
  // generation_config.json's list wins over config.json's single id (2).
  EXPECT_EQ(dir->eos_token_ids, (std::vector<uint64_t>{2, 4}));
  EXPECT_TRUE(dir->has_chat_template);  // tokenizer_config.json carries one
}

TEST(ModelDirectory, FallsBackToModelMaxLengthAndConfigEos) {
  const auto dir = read_model_directory((kModelDirs / "completions_only").string());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(dir->context_length, 512u);
  EXPECT_EQ(dir->eos_token_ids, (std::vector<uint64_t>{2}));
  EXPECT_FALSE(dir->has_chat_template);
  EXPECT_FALSE(dir->generation_config_json.has_value());
}

TEST(ModelDirectory, ChatTemplateFileCountsAsAChatTemplate) {
  const auto dir = read_model_directory((kModelDirs / "jinja_template").string());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  ASSERT_TRUE(dir->chat_template_jinja.has_value());
  EXPECT_EQ(dir->chat_template_jinja->name, "chat_template.jinja");
  EXPECT_EQ(dir->chat_template_jinja->checksum,
            "blake3:" + b3sum_of(kModelDirs / "jinja_template" / "chat_template.jinja"));
  EXPECT_TRUE(dir->has_chat_template);
  EXPECT_TRUE(dir->eos_token_ids.empty());  // no eos_token_id anywhere
}

TEST(ModelDirectory, EachMissingRequiredFileIsNamed) {
  for (const std::string name : {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
    ScratchModelDir scratch("completions_only");
    fs::remove(scratch.path() / name);
    const auto dir = read_model_directory(scratch.path().string());
    ASSERT_FALSE(dir.ok()) << name;
    EXPECT_EQ(dir.error().reason, "model_directory_missing_file");
    EXPECT_NE(dir.error().message.find("model directory " + fs::canonical(scratch.path()).string() +
                                       " lacks " + name + ", which the Dynamo frontend needs"),
              std::string::npos)
        << dir.error().message;
  }
}

TEST(ModelDirectory, MissingTokenizerSaysTheFrontendNeedsItToTokenize) {
  ScratchModelDir scratch("completions_only");
  fs::remove(scratch.path() / "tokenizer.json");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().message, "model directory " + fs::canonical(scratch.path()).string() +
                                     " lacks tokenizer.json, which the Dynamo frontend needs "
                                     "to tokenize");
}

TEST(ModelDirectory, UnparsableJsonNamesTheFile) {
  for (const std::string name :
       {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    ScratchModelDir scratch("tiny_chat");
    scratch.write(name, "{\"vocab_size\": ");
    const auto dir = read_model_directory(scratch.path().string());
    ASSERT_FALSE(dir.ok()) << name;
    EXPECT_EQ(dir.error().reason, "model_directory_bad_json") << name;
    EXPECT_NE(dir.error().message.find(name + " is not valid JSON"), std::string::npos)
        << dir.error().message;
  }
}

TEST(ModelDirectory, JsonThatIsNotAnObjectIsRejected) {
  ScratchModelDir scratch("tiny_chat");
  scratch.write("config.json", "[1, 2]");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("config.json is not a JSON object"), std::string::npos)
      << dir.error().message;
}

TEST(ModelDirectory, ATokenizerJsonThatIsNotAnObjectIsBadJsonLikeTheOtherFiles) {
  // tokenizer.json is parsed once, by the workers' tokenizer; its verdict keeps the reason
  // every other file of the directory gets.
  ScratchModelDir scratch("tiny_chat");
  scratch.write("tokenizer.json", "[1, 2]");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().reason, "model_directory_bad_json");
  EXPECT_NE(dir.error().message.find("tokenizer.json is not a JSON object"), std::string::npos)
      << dir.error().message;
}

TEST(ModelDirectory, NoUsableContextLengthIsAnError) {
  ScratchModelDir scratch("completions_only");
  // Hugging Face's "no limit" sentinel is not a context length.
  scratch.write("tokenizer_config.json", R"({"model_max_length": 1e30})");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().reason, "model_directory_missing_field");
  EXPECT_NE(dir.error().message.find("max_position_embeddings"), std::string::npos);
  EXPECT_NE(dir.error().message.find("model_max_length"), std::string::npos);
}

TEST(ModelDirectory, BadMaxPositionEmbeddingsIsAnErrorNotAFallback) {
  ScratchModelDir scratch("tiny_chat");
  scratch.write("config.json", R"({"max_position_embeddings": -1, "vocab_size": 10})");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().reason, "model_directory_bad_field");
}

TEST(ModelDirectory, MissingVocabSizeIsNamed) {
  ScratchModelDir scratch("completions_only");
  scratch.write("config.json", R"({"eos_token_id": 2})");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("config.json lacks a positive vocab_size"), std::string::npos)
      << dir.error().message;
}

TEST(ModelDirectory, EosTokenIdOfTheWrongTypeIsNamed) {
  ScratchModelDir scratch("tiny_chat");
  scratch.write("generation_config.json", R"({"eos_token_id": "</s>"})");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("generation_config.json eos_token_id"), std::string::npos)
      << dir.error().message;
}

TEST(ModelDirectory, AMissingDirectoryIsNamed) {
  const auto dir = read_model_directory("/nonexistent/kvmock-model");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().reason, "model_directory_missing");
  EXPECT_NE(dir.error().message.find("/nonexistent/kvmock-model"), std::string::npos);
}

TEST(ModelDirectory, ADirectoryWhereAFileShouldBeIsUnreadable) {
  ScratchModelDir scratch("completions_only");
  fs::remove(scratch.path() / "tokenizer.json");
  fs::create_directory(scratch.path() / "tokenizer.json");
  const auto dir = read_model_directory(scratch.path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().reason, "model_directory_unreadable");
  EXPECT_NE(dir.error().message.find("tokenizer.json"), std::string::npos);
}

TEST(ModelDirectory, ATrailingSlashGivesTheSameCanonicalPath) {
  const auto plain = read_model_directory((kModelDirs / "completions_only").string());
  const auto slashed = read_model_directory((kModelDirs / "completions_only").string() + "/");
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(slashed.ok());
  EXPECT_EQ(plain->path, slashed->path);
  EXPECT_NE(plain->path.back(), '/');
}

TEST(ModelDirectory, CardSpecServesTheDirectoryUnderTheServedName) {
  const auto dir = read_model_directory((kModelDirs / "tiny_chat").string());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  dynamo::ModelRuntimeConfig runtime;
  runtime.total_kv_blocks = 8192;
  runtime.data_parallel_size = 2;
  const dynamo::ModelCardSpec spec = model_card_spec(*dir, "Tiny/Chat-1.0", 16, runtime);
  EXPECT_EQ(spec.display_name, "Tiny/Chat-1.0");
  EXPECT_EQ(spec.slug, "tiny_chat-1_0");
  EXPECT_EQ(spec.directory, dir->path);
  EXPECT_EQ(spec.tokenizer_json.checksum, dir->tokenizer_json.checksum);
  EXPECT_EQ(spec.generation_config_json->name, "generation_config.json");
  EXPECT_EQ(spec.context_length, 2048u);
  EXPECT_EQ(spec.kv_cache_block_size, 16u);
  EXPECT_TRUE(spec.chat);
  EXPECT_EQ(spec.runtime_config.total_kv_blocks, 8192u);
  EXPECT_EQ(spec.runtime_config.data_parallel_size, 2u);
  const auto completions = read_model_directory((kModelDirs / "completions_only").string());
  ASSERT_TRUE(completions.ok());
  EXPECT_FALSE(model_card_spec(*completions, "c", 16, runtime).chat);
}

}  // namespace
}  // namespace kvmock
