// `kvmockd run` serving a real model (workers.model.path) as a router that tokenizes text
// sees it: /tokenize, /detokenize, usage.prompt_tokens and the Stored events all follow the
// reference tokenizer's ids (goldens in tests/data/tokenizers/goldens, made by the Rust
// `tokenizers` library), chat prompts follow the reference template renderer
// (tests/data/chat_templates/goldens), the worker answers to its served names only, and the
// generated text is readable words of the model's vocabulary.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/tokens/block_hash.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

namespace fs = std::filesystem;
// Ordered: a template printing `tools | tojson` prints keys in the order the request has them,
// and the goldens were rendered with the order their files have.
using json = nlohmann::ordered_json;
using testing::http_request;

constexpr uint32_t kBlockSize = 16;
constexpr uint64_t kWorker = 1000;
constexpr const char* kEventSubject = "namespace.dynamo.component.backend.kv-events";

json read_json(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

struct Model {
  std::string name;        // directory under KVMOCK_TEST_MODELS_DIR and golden file name
  uint64_t vocab_size;     // config.json vocab_size of the real model
  bool has_chat_template;  // llama2's tokenizer_config.json carries none
};

void PrintTo(const Model& model, std::ostream* out) { *out << model.name; }

// A model directory as a user has it: the fetched tokenizer files beside a config.json.
fs::path make_model_dir(const Model& model) {
  const fs::path dir =
      fs::temp_directory_path() / ("kvmock-model-" + model.name + "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path source = fs::path(KVMOCK_TEST_MODELS_DIR) / model.name;
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(source / file, dir / file, fs::copy_options::overwrite_existing);
  }
  std::ofstream(dir / "config.json")
      << json{{"vocab_size", model.vocab_size}, {"max_position_embeddings", 8192}}.dump();
  return dir;
}

// Every Stored block the worker publishes: sequence hash -> content (tokens) hash.
class StoredBlocks {
 public:
  explicit StoredBlocks(const std::string& url) : client_(testing::connect_test_client(url)) {
    if (client_) {
      subscription_ = testing::subscribe_async(client_->connection(), kEventSubject, &on_event,
                                               this, completed_);
    }
  }
  ~StoredBlocks() { testing::unsubscribe_and_wait(subscription_, completed_); }
  bool subscribed() const { return subscription_ != nullptr; }

  // Waits (bounded) until every block of `expected` (sequence -> tokens hash) was stored,
  // then checks the content hashes.
  void expect_stored(const std::map<BlockHash, uint64_t>& expected) {
    std::unique_lock lock(mutex_);
    const bool all = arrived_.wait_for(lock, std::chrono::seconds(10), [&] {
      for (const auto& entry : expected) {
        if (!stored_.contains(entry.first)) return false;
      }
      return true;
    });
    ASSERT_TRUE(all) << stored_.size() << " blocks stored, " << expected.size() << " expected";
    for (const auto& [sequence, tokens] : expected) EXPECT_EQ(stored_[sequence], tokens);
  }

 private:
  static void on_event(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    auto* blocks = static_cast<StoredBlocks*>(self);
    auto published = testing::decode_published_event(msg);
    natsMsg_Destroy(msg);
    if (!published) return;
    std::lock_guard lock(blocks->mutex_);
    if (const auto* store = std::get_if<StoreData>(&published->event.event.data)) {
      for (const StoredBlock& block : store->blocks) {
        blocks->stored_[block.block_hash] = block.tokens_hash;
      }
    }
    blocks->arrived_.notify_all();
  }

  std::unique_ptr<NatsClient> client_;
  natsSubscription* subscription_ = nullptr;
  std::atomic<bool> completed_{false};
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<BlockHash, uint64_t> stored_;
};

// The blocks a router predicts for `ids`: sequence hash -> tokens hash of each full block.
std::map<BlockHash, uint64_t> expected_blocks(const std::vector<TokenId>& ids) {
  const auto content = tokens_hashes(ids, kBlockSize);
  const auto sequence = sequence_hashes(content);
  std::map<BlockHash, uint64_t> blocks;
  for (size_t i = 0; i < sequence.size(); ++i) blocks[sequence[i]] = content[i];
  return blocks;
}

class ModelWorkerTest : public ::testing::TestWithParam<Model> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.start());
    model_dir_ = make_model_dir(GetParam());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    config_path_ = testing::write_temp_file(
        "nats: { url: \"" + nats_.url() + "\" }\n" +                                      //
        "admin: { listen: \"127.0.0.1:" + std::to_string(admin_port_) + "\" }\n" +        //
        "workers:\n  count: 1\n  http_base_port: " + std::to_string(http_port_) + "\n" +  //
        "  engine: { block_size: " + std::to_string(kBlockSize) + ", num_gpu_blocks: 4096 }\n" +
        "  model: { name: served-" + GetParam().name + ", aliases: \"alias-a, alias-b\", path: \"" +
        model_dir_.string() + "\" }\n");
    blocks_ = std::make_unique<StoredBlocks>(nats_.url());
    ASSERT_TRUE(blocks_->subscribed());
    daemon_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    ASSERT_TRUE(testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(30)))
        << daemon_->output();
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(15)), 0) << daemon_->output();
    }
    blocks_.reset();
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
    std::error_code ignored;
    fs::remove_all(model_dir_, ignored);
  }

  json post(const std::string& path, const json& body, int expected_status = 200) {
    const auto result = http_request(http_port_, "POST", path, body.dump());
    EXPECT_EQ(result.status, expected_status)
        << path << " " << body.dump() << " -> " << result.body;
    return json::parse(result.body, nullptr, false);
  }

  json tokenizer_goldens() const {
    return read_json(fs::path(KVMOCK_TEST_DATA_DIR) / "tokenizers/goldens" /
                     (GetParam().name + ".json"));
  }

  testing::NatsServer nats_;
  fs::path model_dir_;
  uint16_t admin_port_ = 0;
  uint16_t http_port_ = 0;
  std::string config_path_;
  std::unique_ptr<StoredBlocks> blocks_;
  std::unique_ptr<testing::ChildProcess> daemon_;
};

TEST_P(ModelWorkerTest, TokenizeAndPromptTokensMatchTheReferenceIdsOfEveryGoldenText) {
  const json goldens = tokenizer_goldens();
  ASSERT_GT(goldens["encode"].size(), 300u);
  size_t completions = 0;
  for (const json& golden : goldens["encode"]) {
    const std::string text = golden["text"];
    const json with_special = post("/tokenize", {{"prompt", text}});
    EXPECT_EQ(with_special["tokens"], golden["ids_with_special"]) << text;
    EXPECT_EQ(with_special["count"], golden["ids_with_special"].size());
    EXPECT_EQ(with_special["max_model_len"], 8192);
    const json plain = post("/tokenize", {{"prompt", text}, {"add_special_tokens", false}});
    EXPECT_EQ(plain["tokens"], golden["ids"]) << text;
    // Every few texts also as a completion: usage counts the same ids.
    if (golden["ids_with_special"].empty() || completions++ % 8 != 0) continue;
    const json answer = post("/v1/completions", {{"prompt", text}, {"max_tokens", 1}});
    EXPECT_EQ(answer["usage"]["prompt_tokens"], golden["ids_with_special"].size()) << text;
  }
}

TEST_P(ModelWorkerTest, DetokenizeGivesTheReferenceDecodeAndRefusesWhatIsNotAnIdList) {
  const json goldens = tokenizer_goldens();
  ASSERT_GT(goldens["decode"].size(), 100u);
  for (const json& golden : goldens["decode"]) {
    const json answer = post("/detokenize", {{"tokens", golden["ids"]}});
    EXPECT_EQ(answer["prompt"], golden["text"]) << golden["ids"].dump();
  }
  for (const json& bad : {json{{"tokens", {1, -2}}}, json{{"tokens", "1 2"}}, json::object(),
                          json{{"tokens", {1, 4294967296}}}}) {
    const json refused = post("/detokenize", bad, 400);
    EXPECT_EQ(refused["error"]["code"], "bad_tokens") << bad.dump();
    EXPECT_EQ(refused["error"]["param"], "tokens");
  }
}

TEST_P(ModelWorkerTest, ATextPromptStoresTheReferenceBlocksAndASharedTextPrefixIsCached) {
  // The longest golden text: its reference ids (with special tokens, as completions add
  // them) are what a router hashes.
  const json goldens = tokenizer_goldens();
  const json* longest = nullptr;
  for (const json& golden : goldens["encode"]) {
    if (longest == nullptr ||
        golden["ids_with_special"].size() > (*longest)["ids_with_special"].size()) {
      longest = &golden;
    }
  }
  ASSERT_NE(longest, nullptr);
  const std::string text = (*longest)["text"];
  const auto ids = (*longest)["ids_with_special"].get<std::vector<TokenId>>();
  ASSERT_GE(ids.size(), 4 * kBlockSize);

  const json first = post("/v1/completions", {{"prompt", text}, {"max_tokens", 4}});
  EXPECT_EQ(first["usage"]["prompt_tokens"], ids.size());
  EXPECT_EQ(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  blocks_->expect_stored(expected_blocks(ids));

  // The same text with more after it: the cached tokens are the full blocks of the ids the
  // two prompts share, as a router computes them from the two tokenizations.
  const std::string longer = text + "\n\nAnd then some more words.";
  const auto longer_ids =
      post("/tokenize", {{"prompt", longer}})["tokens"].get<std::vector<TokenId>>();
  size_t shared = 0;
  while (shared < ids.size() && shared < longer_ids.size() && ids[shared] == longer_ids[shared]) {
    ++shared;
  }
  const json second = post("/v1/completions", {{"prompt", longer}, {"max_tokens", 4}});
  EXPECT_EQ(second["usage"]["prompt_tokens"], longer_ids.size());
  EXPECT_EQ(second["usage"]["prompt_tokens_details"]["cached_tokens"],
            shared / kBlockSize * kBlockSize);
  blocks_->expect_stored(expected_blocks(longer_ids));
}

TEST_P(ModelWorkerTest, ChatPromptsAreTheReferenceRenderingsIds) {
  if (!GetParam().has_chat_template) {
    const json refused =
        post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, 400);
    EXPECT_EQ(refused["error"]["code"], "no_chat_template");
    return;
  }
  const json goldens = read_json(fs::path(KVMOCK_TEST_DATA_DIR) / "chat_templates/goldens" /
                                 (GetParam().name + ".json"));
  ASSERT_FALSE(goldens["renders"].empty());
  for (const json& render : goldens["renders"]) {
    const json& context = render["context"];
    // The request's own fields; the template's other variables go in chat_template_kwargs
    // (bos_token/eos_token come from the model's tokenizer_config.json).
    json request{{"messages", context["messages"]},
                 {"add_generation_prompt", context.value("add_generation_prompt", false)}};
    json kwargs = json::object();
    for (const auto& [key, value] : context.items()) {
      if (key == "messages" || key == "add_generation_prompt" || key == "bos_token" ||
          key == "eos_token") {
        continue;
      }
      if (key == "tools") {
        request["tools"] = value;
      } else {
        kwargs[key] = value;
      }
    }
    request["chat_template_kwargs"] = kwargs;
    const json tokens = post("/tokenize", request);
    EXPECT_EQ(tokens["tokens"], render["ids"]) << context.dump();
    request["max_tokens"] = 2;
    const json answer = post("/v1/chat/completions", request);
    EXPECT_EQ(answer["usage"]["prompt_tokens"], render["ids"].size()) << context.dump();
  }
}

TEST_P(ModelWorkerTest, TheWorkerAnswersToItsServedNamesOnlyAndWritesReadableText) {
  const auto models = http_request(http_port_, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  const json list = json::parse(models.body);
  std::vector<std::string> ids;
  for (const json& model : list["data"]) {
    ids.push_back(model["id"]);
    EXPECT_EQ(model["max_model_len"], 8192);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"served-" + GetParam().name, "alias-a", "alias-b"}));

  const json by_alias =
      post("/v1/completions", {{"model", "alias-b"}, {"prompt", "Hello"}, {"max_tokens", 12}});
  EXPECT_EQ(by_alias["model"], "served-" + GetParam().name);
  // Twelve generated ids, each a word of the model's vocabulary: the text is twelve words
  // of letters between spaces.
  const std::string text = by_alias["choices"][0]["text"];
  std::istringstream words(text);
  std::vector<std::string> split{std::istream_iterator<std::string>(words), {}};
  EXPECT_EQ(split.size(), 12u) << text;
  for (char c : text) EXPECT_TRUE(std::isalpha(static_cast<unsigned char>(c)) || c == ' ') << text;

  const json unknown = post("/v1/completions", {{"model", "gpt-4"}, {"prompt", "Hello"}}, 404);
  EXPECT_EQ(unknown["error"]["message"], "The model `gpt-4` does not exist.");
  EXPECT_EQ(unknown["error"]["code"], "model_not_found");
  post("/tokenize", {{"model", "gpt-4"}, {"prompt", "Hello"}}, 404);
}

INSTANTIATE_TEST_SUITE_P(RealModels, ModelWorkerTest,
                         ::testing::Values(Model{"qwen3", 151936, true},
                                           Model{"llama3_1", 128256, true},
                                           Model{"llama2", 32000, false}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace kvmock

namespace kvmock {
namespace {

// A model directory whose tokenizer.json the workers cannot use stops the start (exit 2)
// with an error naming the file and the construct, instead of serving wrong ids.
TEST(ModelWorkerStart, AnUnusableTokenizerStopsTheStartNamingTheFileAndTheConstruct) {
  testing::NatsServer nats;
  ASSERT_TRUE(nats.start());
  const fs::path source = fs::path(KVMOCK_TEST_DATA_DIR) / "model_dirs/tiny_chat";
  struct Case {
    std::string tokenizer_json;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})", "model type 'WordPiece'"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "normalizer": {"type": "BertNormalizer"}})",
       "BertNormalizer"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [)", "tokenizer.json"},
  };
  for (const Case& c : cases) {
    const fs::path dir =
        fs::temp_directory_path() / ("kvmock-bad-model-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const char* file : {"config.json", "tokenizer_config.json"}) {
      fs::copy_file(source / file, dir / file, fs::copy_options::overwrite_existing);
    }
    std::ofstream(dir / "tokenizer.json") << c.tokenizer_json;
    const std::string config = testing::write_temp_file(
        "nats: { url: \"" + nats.url() + "\" }\nadmin: { listen: \"\" }\n" +
        "workers:\n  count: 1\n  http_base_port: 0\n  model: { path: \"" + dir.string() + "\" }\n");
    testing::ChildProcess daemon({testing::kvmockd_path(), "run", "--config", config});
    EXPECT_EQ(daemon.wait(std::chrono::seconds(20)), 2) << daemon.output();
    EXPECT_NE(daemon.output().find("tokenizer.json"), std::string::npos) << daemon.output();
    EXPECT_NE(daemon.output().find(c.expected), std::string::npos) << daemon.output();
    ::unlink(config.c_str());
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace kvmock
