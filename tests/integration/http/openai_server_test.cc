#include "transport/http/openai_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <condition_variable>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/tokenizer/mock_tokenizer.h"
#include "tests/support/http_client.h"
#include "tests/support/loopback_http_server.h"

namespace kvmock {
namespace {

using nlohmann::json;
using testing::http_request;
using testing::http_stream;

// Output token i of every request is kFirstOutputToken + i (+ output_offset() when the
// fake varies its output).
constexpr TokenId kFirstOutputToken = 2000;

// With vary_output, like the engine: a seed fixes the output, else the request id varies it.
TokenId output_offset(std::optional<uint64_t> seed, uint64_t request_id) {
  return static_cast<TokenId>(100 * ((seed ? *seed : request_id) % 50));
}

// A worker that emits one token per `delay` on its own thread per request, honours
// cancel(), and can be told to refuse or fail requests.
class FakeBackend : public WorkerBackend {
 public:
  ~FakeBackend() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  Result<uint64_t> submit(GenerationRequest request, GenerationCallbacks callbacks) override {
    if (!refuse_with.empty()) return make_error(refuse_with, "refused by the fake backend");
    std::lock_guard lock(mutex_);
    if (refuse_after >= 0 && next_id_ > static_cast<uint64_t>(refuse_after.load())) {
      return make_error("queue_full", "the fake backend's queue is full");
    }
    const uint64_t id = next_id_++;
    const TokenId first = kFirstOutputToken + (vary_output ? output_offset(request.seed, id) : 0);
    requests_.push_back(request);
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    flags_[id] = cancelled;
    threads_.emplace_back(
        [this, request = std::move(request), callbacks = std::move(callbacks), cancelled, first] {
          GenerationFinish finish;
          finish.prompt_tokens = static_cast<uint32_t>(request.prompt.size());
          finish.cached_tokens = cached_tokens.load();
          for (uint32_t i = 0; i < request.max_tokens; ++i) {
            std::this_thread::sleep_for(delay);
            if (cancelled->load()) break;
            if (fail_after >= 0 && i == static_cast<uint32_t>(fail_after)) {
              finish.finish_reason = "error";
              finish.error = "simulated failure";
              callbacks.on_finish(finish);
              return;
            }
            callbacks.on_tokens({first + i});
            ++finish.completion_tokens;
          }
          finish.finish_reason = cancelled->load() ? "abort" : "length";
          callbacks.on_finish(finish);
        });
    return id;
  }

  // Like the worker: a stop ends the request with "stop" at the next token.
  void stop(uint64_t request_id) override {
    std::lock_guard lock(mutex_);
    stops_.insert(request_id);
    if (auto it = flags_.find(request_id); it != flags_.end()) *it->second = true;
  }
  void cancel(uint64_t request_id) override {
    std::lock_guard lock(mutex_);
    cancels_.insert(request_id);
    if (auto it = flags_.find(request_id); it != flags_.end()) *it->second = true;
  }
  bool ready() const override { return is_ready.load(); }
  uint64_t worker_id() const override { return 7; }
  const std::string& model_name() const override { return model_; }
  std::span<const std::string> served_model_names() const override { return names_; }
  uint64_t max_model_len() const override { return 4096; }
  std::string render_metrics() const override { return "vllm:num_requests_running 0\n"; }

  std::vector<GenerationRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::set<uint64_t> cancels() const {
    std::lock_guard lock(mutex_);
    return cancels_;
  }
  std::set<uint64_t> stops() const {
    std::lock_guard lock(mutex_);
    return stops_;
  }

  std::string refuse_with;            // an Error reason submit() returns; set before requests
  std::atomic<int> refuse_after{-1};  // when set, submits past this many get "queue_full"
  std::atomic<bool> vary_output{false};
  std::atomic<int> fail_after{-1};
  std::atomic<uint32_t> cached_tokens{0};
  std::atomic<bool> is_ready{true};
  std::chrono::milliseconds delay{1};

 private:
  const std::string model_ = "mock-model";
  const std::vector<std::string> names_ = {model_, "alias"};
  mutable std::mutex mutex_;
  uint64_t next_id_ = 1;
  std::vector<GenerationRequest> requests_;
  std::map<uint64_t, std::shared_ptr<std::atomic<bool>>> flags_;
  std::set<uint64_t> cancels_;
  std::set<uint64_t> stops_;
  std::vector<std::thread> threads_;
};

std::string expected_text(uint32_t tokens, TokenId offset = 0) {
  std::vector<TokenId> ids;
  for (uint32_t i = 0; i < tokens; ++i) ids.push_back(kFirstOutputToken + offset + i);
  return mock_decode(ids);
}

// The JSON payloads of an SSE body, in order; "[DONE]" is kept as a string.
std::vector<json> sse_events(const std::string& body) {
  std::vector<json> events;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    event = event.substr(6);
    events.push_back(event == "[DONE]" ? json("[DONE]") : json::parse(event));
  }
  EXPECT_EQ(pos, body.size()) << "trailing bytes after the last event";
  return events;
}

class OpenAiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = *server_.start([this](std::shared_ptr<HttpExchange> e) { openai_.handle(e); });
  }
  void TearDown() override { server_.stop(); }

  testing::HttpResult post(const std::string& path, const std::string& body) {
    return http_request(port_, "POST", path, body);
  }

  // Waits until the backend has seen cancels for `count` requests.
  bool wait_for_cancel(size_t count = 1) {
    for (int i = 0; i < 500; ++i) {
      if (backend_.cancels().size() >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // First, so it is destroyed last: the backend's threads may still hold exchanges whose
  // sockets belong to its io_context.
  testing::LoopbackHttpServer server_;
  FakeBackend backend_;
  OpenAiServer openai_{backend_};
  uint16_t port_ = 0;
};

void expect_error(const testing::HttpResult& result, int status, const std::string& code) {
  EXPECT_EQ(result.status, status) << result.body;
  const json body = json::parse(result.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << result.body;
  ASSERT_TRUE(body.contains("error")) << result.body;
  const json& error = body["error"];
  EXPECT_TRUE(error["message"].is_string() && !error["message"].get<std::string>().empty());
  EXPECT_TRUE(error["type"].is_string());
  EXPECT_TRUE(error.contains("param"));
  EXPECT_EQ(error["code"], code) << result.body;
}

TEST_F(OpenAiServerTest, CompletionAnswersWithEveryOpenAiField) {
  backend_.cached_tokens = 2;
  const auto result = post("/v1/completions",
                           R"({"model":"mock-model","prompt":"hello big world","max_tokens":3})");
  ASSERT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(result.headers.at("content-type"), "application/json");
  EXPECT_EQ(result.headers.at("x-kvmock-worker-id"), "7");
  const json body = json::parse(result.body);
  EXPECT_EQ(body["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_GT(body["created"].get<int64_t>(), 1700000000);
  EXPECT_EQ(body["model"], "mock-model");
  ASSERT_EQ(body["choices"].size(), 1u);
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["text"], expected_text(3));
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(body["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(body["usage"]["completion_tokens"], 3);
  EXPECT_EQ(body["usage"]["total_tokens"], 6);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 2);

  const auto requests = backend_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].prompt, mock_tokenize("hello big world"));
  EXPECT_EQ(requests[0].max_tokens, 3u);
}

TEST_F(OpenAiServerTest, ChatAnswersWithAnAssistantMessage) {
  const auto result = post("/v1/chat/completions",
                           R"({"messages":[{"role":"system","content":"be brief"},
                               {"role":"user","content":[{"type":"text","text":"hi"}]}],
                               "max_completion_tokens":2})");
  ASSERT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(result.headers.at("x-kvmock-worker-id"), "7");
  const json body = json::parse(result.body);
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "mock-model");
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], expected_text(2));
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_TRUE(choice["logprobs"].is_null());
  const std::vector<ChatMessage> messages = {{"system", "be brief"}, {"user", "hi"}};
  const auto prompt = mock_tokenize_chat(messages);
  EXPECT_EQ(body["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(backend_.requests().at(0).prompt, prompt);
}

TEST_F(OpenAiServerTest, ChatAcceptsTheDeprecatedMaxTokensName) {
  const auto result = post("/v1/chat/completions",
                           R"({"messages":[{"role":"user","content":"x"}],"max_tokens":4})");
  ASSERT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(backend_.requests().at(0).max_tokens, 4u);
}

TEST_F(OpenAiServerTest, CompletionMaxTokensDefaultsToSixteen) {
  ASSERT_EQ(post("/v1/completions", R"({"prompt":"a b"})").status, 200);
  EXPECT_EQ(backend_.requests().at(0).max_tokens, kDefaultMaxTokens);
  EXPECT_EQ(kDefaultMaxTokens, 16u);
}

// Parity note M7: vLLM lets a chat request without max_tokens use the rest of the context
// (the fake's max_model_len is 4096), so a prompt near the limit is not refused.
TEST_F(OpenAiServerTest, ChatMaxTokensDefaultsToTheRestOfTheContext) {
  backend_.delay = std::chrono::milliseconds(0);
  const auto result =
      post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"a b c"}]})");
  ASSERT_EQ(result.status, 200) << result.body;
  const GenerationRequest request = backend_.requests().at(0);
  EXPECT_EQ(request.max_tokens, 4096 - request.prompt.size());
}

TEST_F(OpenAiServerTest, TokenIdPromptsReachTheWorkerUnchanged) {
  ASSERT_EQ(post("/v1/completions", R"({"prompt":[5,6,4294967295],"max_tokens":1})").status, 200);
  ASSERT_EQ(post("/v1/completions", R"({"prompt":[[8,9]],"max_tokens":1})").status, 200);
  ASSERT_EQ(post("/v1/completions", R"({"prompt":["one two"],"max_tokens":1})").status, 200);
  const auto requests = backend_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].prompt, (std::vector<TokenId>{5, 6, 4294967295u}));
  EXPECT_EQ(requests[1].prompt, (std::vector<TokenId>{8, 9}));
  EXPECT_EQ(requests[2].prompt, mock_tokenize("one two"));
}

TEST_F(OpenAiServerTest, CompletionStreamSendsOneChunkPerTokenThenTheFinishThenDone) {
  const auto result = http_stream(port_, "POST", "/v1/completions",
                                  R"({"prompt":"p","max_tokens":4,"stream":true})",
                                  [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  EXPECT_EQ(result.headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(result.headers.at("x-kvmock-worker-id"), "7");
  const auto events = sse_events(result.body);
  ASSERT_EQ(events.size(), 6u) << result.body;  // 4 tokens, finish, [DONE]
  std::string text;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(events[i]["object"], "text_completion");
    EXPECT_EQ(events[i]["id"], events[0]["id"]);
    EXPECT_TRUE(events[i]["choices"][0]["finish_reason"].is_null());
    EXPECT_FALSE(events[i].contains("usage"));
    text += events[i]["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, expected_text(4));
  EXPECT_EQ(events[4]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(events[4]["choices"][0]["text"], "");
  EXPECT_EQ(events[5], "[DONE]");
}

TEST_F(OpenAiServerTest, ChatStreamStartsWithTheAssistantRole) {
  const auto result =
      http_stream(port_, "POST", "/v1/chat/completions",
                  R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true})",
                  [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  const auto events = sse_events(result.body);
  ASSERT_EQ(events.size(), 6u) << result.body;  // role, 3 tokens, finish, [DONE]
  EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (int i = 1; i < 4; ++i)
    text += events[i]["choices"][0]["delta"]["content"].get<std::string>();
  EXPECT_EQ(text, expected_text(3));
  EXPECT_EQ(events[4]["choices"][0]["delta"], json::object());
  EXPECT_EQ(events[4]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(events[5], "[DONE]");
}

TEST_F(OpenAiServerTest, IncludeUsageAddsAUsageChunkBeforeDone) {
  backend_.cached_tokens = 1;
  const auto result = http_stream(
      port_, "POST", "/v1/completions",
      R"({"prompt":"a b c d","max_tokens":2,"stream":true,"stream_options":{"include_usage":true}})",
      [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  const auto events = sse_events(result.body);
  ASSERT_EQ(events.size(), 5u) << result.body;  // 2 tokens, finish, usage, [DONE]
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(events[i]["usage"].is_null()) << events[i];
  const json& usage_chunk = events[3];
  EXPECT_EQ(usage_chunk["choices"], json::array());
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 2);
  EXPECT_EQ(usage_chunk["usage"]["total_tokens"], 6);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
  EXPECT_EQ(events[4], "[DONE]");
}

TEST_F(OpenAiServerTest, HangingUpMidStreamCancelsTheRequest) {
  backend_.delay = std::chrono::milliseconds(5);
  http_stream(port_, "POST", "/v1/completions",
              R"({"prompt":"p","max_tokens":100000,"stream":true})",
              [](const std::string& data) { return data.find("data: ") == std::string::npos; });
  ASSERT_TRUE(wait_for_cancel());
  EXPECT_EQ(backend_.cancels(), (std::set<uint64_t>{1}));
}

TEST_F(OpenAiServerTest, HangingUpBeforeANonStreamingAnswerCancelsTheRequest) {
  backend_.delay = std::chrono::milliseconds(5);
  const auto result =
      http_request(port_, "POST", "/v1/completions", R"({"prompt":"p","max_tokens":100000})",
                   std::chrono::milliseconds(100));
  EXPECT_EQ(result.status, 0);
  ASSERT_TRUE(wait_for_cancel());
  EXPECT_EQ(backend_.cancels(), (std::set<uint64_t>{1}));
}

TEST_F(OpenAiServerTest, FinishedRequestsAreNotCancelled) {
  ASSERT_EQ(post("/v1/completions", R"({"prompt":"p","max_tokens":2})").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(backend_.cancels().empty());
}

TEST_F(OpenAiServerTest, BackendRefusalsMapToOpenAiStatuses) {
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"not_ready", 503, "not_ready"},
      {"queue_full", 429, "queue_full"},
      {"prompt_too_long", 400, "context_length_exceeded"},
      {"bad_request", 400, "bad_request"},
      {"something_else", 500, "something_else"},
  };
  for (const auto& [reason, status, code] : cases) {
    backend_.refuse_with = reason;
    SCOPED_TRACE(reason);
    const auto result = post("/v1/completions", R"({"prompt":"p"})");
    expect_error(result, status, code);
    EXPECT_EQ(result.headers.at("x-kvmock-worker-id"), "7");
    expect_error(post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}]})"),
                 status, code);
  }
}

TEST_F(OpenAiServerTest, AFailedGenerationIsA500OrAnErrorEvent) {
  backend_.fail_after = 1;
  expect_error(post("/v1/completions", R"({"prompt":"p","max_tokens":5})"), 500,
               "generation_failed");
  const auto result = http_stream(port_, "POST", "/v1/completions",
                                  R"({"prompt":"p","max_tokens":5,"stream":true})",
                                  [](const std::string&) { return true; });
  const auto events = sse_events(result.body);
  ASSERT_EQ(events.size(), 3u) << result.body;  // 1 token, error, [DONE]
  EXPECT_EQ(events[1]["error"]["code"], "generation_failed");
  EXPECT_EQ(events[2], "[DONE]");
}

TEST_F(OpenAiServerTest, AnotherModelNameIsNotFound) {
  const auto result = post("/v1/completions", R"({"model":"gpt-4","prompt":"p"})");
  expect_error(result, 404, "model_not_found");
  EXPECT_EQ(json::parse(result.body)["error"]["param"], "model");
  expect_error(
      post("/v1/chat/completions", R"({"model":"x","messages":[{"role":"user","content":"x"}]})"),
      404, "model_not_found");
  EXPECT_TRUE(backend_.requests().empty());
}

TEST_F(OpenAiServerTest, BatchesAreRefused) {
  const auto batch = post("/v1/completions", R"({"prompt":["a","b"]})");
  expect_error(batch, 400, "batch_prompt");
  EXPECT_EQ(json::parse(batch.body)["error"]["message"],
            "only one prompt per request is supported");
  expect_error(post("/v1/completions", R"({"prompt":[[1],[2]]})"), 400, "batch_prompt");
  EXPECT_EQ(post("/v1/completions", R"({"prompt":"a","n":1,"max_tokens":1})").status, 200);
}

TEST_F(OpenAiServerTest, EveryBadBodyIsA400WithAnErrorObject) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::vector<std::pair<std::string, std::string>> completions = {
      {"", "bad_json"},
      {"{", "bad_json"},
      {"not json", "bad_json"},
      {"[1,2,3]", "bad_json"},
      {"\"prompt\"", "bad_json"},
      {R"({"prompt":"a"} trailing)", "bad_json"},
      {"{\"prompt\":" + deep + "}", "bad_json"},
      {R"({})", "bad_prompt"},
      {R"({"prompt":null})", "bad_prompt"},
      {R"({"prompt":42})", "bad_prompt"},
      {R"({"prompt":""})", "bad_prompt"},
      {R"({"prompt":"   "})", "bad_prompt"},
      {R"({"prompt":[]})", "bad_prompt"},
      {R"({"prompt":[[]]})", "bad_prompt"},
      {R"({"prompt":[-1]})", "bad_prompt"},
      {R"({"prompt":[4294967296]})", "bad_prompt"},
      {R"({"prompt":[1.5]})", "bad_prompt"},
      {R"({"prompt":[1,"a"]})", "bad_prompt"},
      {R"({"prompt":[{"a":1}]})", "bad_prompt"},
      {R"({"prompt":"a","max_tokens":-1})", "bad_max_tokens"},
      {R"({"prompt":"a","max_tokens":0})", "bad_max_tokens"},
      {R"({"prompt":"a","max_tokens":"16"})", "bad_max_tokens"},
      {R"({"prompt":"a","max_tokens":2.5})", "bad_max_tokens"},
      {R"({"prompt":"a","max_tokens":99999999999})", "bad_max_tokens"},
      {R"({"prompt":"a","stream":"yes"})", "bad_stream"},
      {R"({"prompt":"a","stream_options":[]})", "bad_stream_options"},
      {R"({"prompt":"a","stream_options":{"include_usage":1}})", "bad_stream_options"},
      {R"({"prompt":"a","model":5})", "bad_model"},
      {R"({"prompt":"a","n":"2"})", "bad_n"},
      {R"({"prompt":"a","n":0})", "bad_n"},
      {R"({"prompt":"a","n":-2})", "bad_n"},
      {R"({"prompt":"a","best_of":0})", "bad_best_of"},
      {R"({"prompt":"a","best_of":"3"})", "bad_best_of"},
      {R"({"prompt":"a","ignore_eos":"true"})", "bad_ignore_eos"},
  };
  for (const auto& [body, code] : completions) {
    SCOPED_TRACE(body.substr(0, 80));
    expect_error(post("/v1/completions", body), 400, code);
  }
  const std::vector<std::pair<std::string, std::string>> chats = {
      {R"({})", "bad_messages"},
      {R"({"messages":"hi"})", "bad_messages"},
      {R"({"messages":{}})", "bad_messages"},
      {R"({"messages":["hi"]})", "bad_messages"},
      {R"({"messages":[{"content":"hi"}]})", "bad_messages"},
      {R"({"messages":[{"role":3,"content":"hi"}]})", "bad_messages"},
      {R"({"messages":[{"role":"user","content":7}]})", "bad_messages"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "bad_messages"},
      {R"({"messages":[{"role":"user","content":[{"type":"text","text":1}]}]})", "bad_messages"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":-5})",
       "bad_max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"a"})", "bad_max_tokens"},
      {"{\"messages\":" + deep + "}", "bad_json"},
  };
  for (const auto& [body, code] : chats) {
    SCOPED_TRACE(body.substr(0, 80));
    expect_error(post("/v1/chat/completions", body), 400, code);
  }
  EXPECT_TRUE(backend_.requests().empty());
}

TEST_F(OpenAiServerTest, ModelsListsEveryServedNameWithTheContextLength) {
  const auto result = http_request(port_, "GET", "/v1/models");
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(result.headers.at("x-kvmock-worker-id"), "7");
  const json body = json::parse(result.body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 2u);
  EXPECT_EQ(body["data"][0]["id"], "mock-model");
  EXPECT_EQ(body["data"][1]["id"], "alias");
  for (const json& model : body["data"]) {
    EXPECT_EQ(model["object"], "model");
    EXPECT_EQ(model["owned_by"], "kvmock");
    EXPECT_EQ(model["root"], "mock-model");
    EXPECT_EQ(model["max_model_len"], 4096);
  }
}

TEST_F(OpenAiServerTest, AnAliasIsServedAndAnswersUnderTheFirstName) {
  const auto result = post("/v1/completions", R"({"model":"alias","prompt":"a b","max_tokens":1})");
  ASSERT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(json::parse(result.body)["model"], "mock-model");
}

TEST_F(OpenAiServerTest, TokenizeAndDetokenizeAnswerAsVllmDoes) {
  const auto text = post("/tokenize", R"({"prompt":"hello big world","return_token_strs":true})");
  ASSERT_EQ(text.status, 200) << text.body;
  const json tokens = json::parse(text.body);
  EXPECT_EQ(tokens["tokens"], json(mock_tokenize("hello big world")));
  EXPECT_EQ(tokens["count"], 3);
  EXPECT_EQ(tokens["max_model_len"], 4096);
  const auto ids = mock_tokenize("hello big world");
  // The mock vocabulary names each id with its own word.
  EXPECT_EQ(tokens["token_strs"],
            json({mock_token_text(ids[0]), mock_token_text(ids[1]), mock_token_text(ids[2])}));
  EXPECT_TRUE(json::parse(post("/tokenize", R"({"prompt":""})").body)["tokens"].empty());
  EXPECT_TRUE(json::parse(post("/tokenize", R"({"prompt":"x"})").body)["token_strs"].is_null());

  // Chat: the same ids as the chat endpoint's prompt.
  const std::string messages = R"("messages":[{"role":"user","content":"hi there"}])";
  const json chat = json::parse(post("/tokenize", "{" + messages + "}").body);
  ASSERT_EQ(post("/v1/chat/completions", "{" + messages + ",\"max_tokens\":1}").status, 200);
  EXPECT_EQ(chat["tokens"], json(backend_.requests().back().prompt));

  const auto back = post("/detokenize", "{\"tokens\":" + tokens["tokens"].dump() + "}");
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(json::parse(back.body)["prompt"], mock_decode(ids));

  expect_error(post("/detokenize", R"({"tokens":"1"})"), 400, "bad_tokens");
  expect_error(post("/detokenize", R"({"tokens":[-1]})"), 400, "bad_tokens");
  expect_error(post("/tokenize", R"({"prompt":5})"), 400, "bad_prompt");
  expect_error(post("/tokenize", R"({"prompt":"a","add_special_tokens":1})"), 400,
               "bad_add_special_tokens");
  expect_error(post("/tokenize", R"({"prompt":"a","model":"nope"})"), 404, "model_not_found");
  expect_error(post("/detokenize", R"({"tokens":[1],"model":"nope"})"), 404, "model_not_found");
  expect_error(post("/tokenize", R"({"messages":[{"role":"user","content":"x"}],
      "continue_final_message":true})"),
               400, "bad_chat_options");
  EXPECT_EQ(http_request(port_, "GET", "/tokenize").status, 405);
}

TEST_F(OpenAiServerTest, HealthFollowsTheWorkersReadiness) {
  EXPECT_EQ(http_request(port_, "GET", "/health").status, 200);
  backend_.is_ready = false;
  expect_error(http_request(port_, "GET", "/health"), 503, "not_ready");
}

TEST_F(OpenAiServerTest, MetricsAreTheWorkersPrometheusText) {
  const auto result = http_request(port_, "GET", "/metrics");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(result.body, "vllm:num_requests_running 0\n");
}

TEST_F(OpenAiServerTest, UnknownPathsAndWrongMethodsAreRejected) {
  expect_error(http_request(port_, "GET", "/v1/embeddings"), 404, "not_found");
  expect_error(http_request(port_, "GET", "/v1/completions"), 405, "method_not_allowed");
  expect_error(http_request(port_, "POST", "/v1/models", "{}"), 405, "method_not_allowed");
  expect_error(http_request(port_, "DELETE", "/health"), 405, "method_not_allowed");
}

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// Parity note M1: the output ends at the first stop string (not included by default), the
// worker is told to stop, and vLLM's finish_reason/stop_reason say why.
TEST_F(OpenAiServerTest, AStopStringEndsTheOutputAndStopsTheWorker) {
  const std::string full = expected_text(8);
  const std::string stop = words_of(full).at(2);
  const std::string body =
      R"({"prompt":"hello world","max_tokens":8,"stop":["zzzz",")" + stop + R"("]})";
  const auto result = post("/v1/completions", body);
  ASSERT_EQ(result.status, 200) << result.body;
  const json choice = json::parse(result.body)["choices"][0];
  EXPECT_EQ(choice["text"], full.substr(0, full.find(stop))) << full;
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(choice["stop_reason"], stop);
  EXPECT_EQ(backend_.stops().size(), 1u);

  const auto kept = post("/v1/completions", R"({"prompt":"hello world","max_tokens":8,"stop":")" +
                                                stop + R"(","include_stop_str_in_output":true})");
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(json::parse(kept.body)["choices"][0]["text"],
            full.substr(0, full.find(stop) + stop.size()));
}

TEST_F(OpenAiServerTest, AStreamNeverSendsTextPastAStopString) {
  const std::string full = expected_text(8);
  const std::string stop = words_of(full).at(3);
  const auto result = http_stream(
      port_, "POST", "/v1/chat/completions",
      R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":8,"stream":true,"stop":")" +
          stop + R"("})",
      [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  std::string text;
  json last;
  for (const json& event : sse_events(result.body)) {
    if (!event.is_object()) continue;
    const json& choice = event["choices"][0];
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) last = choice;
  }
  EXPECT_EQ(text, full.substr(0, full.find(stop)));
  EXPECT_EQ(last["finish_reason"], "stop");
  EXPECT_EQ(last["stop_reason"], stop);
}

// Parity note M1/M4/M6: wrongly typed or out-of-range fields are refused as vLLM refuses
// them, naming the field.
TEST_F(OpenAiServerTest, InvalidSamplingFieldsGet400NamingTheField) {
  struct Case {
    const char* body;
    const char* param;
    const char* message_part;
  };
  const Case cases[] = {
      {R"({"prompt":"x","stop":123})", "stop", "valid string"},
      {R"({"prompt":"x","stop":["a",1]})", "stop", "valid string"},
      {R"({"prompt":"x","temperature":"hot"})", "temperature", "valid number"},
      {R"({"prompt":"x","temperature":-1})", "temperature", "non-negative"},
      {R"({"prompt":"x","top_p":0})", "top_p", "(0, 1]"},
      {R"({"prompt":"x","top_k":-2})", "top_k", "top_k"},
      {R"({"prompt":"x","presence_penalty":3})", "presence_penalty", "[-2, 2]"},
      {R"({"prompt":"x","seed":"7"})", "seed", "valid integer"},
      {R"({"prompt":"x","max_tokens":3,"min_tokens":10})", "min_tokens",
       "min_tokens must be less than or equal to max_tokens=3, got 10."},
      {R"({"prompt":"x","stream_options":{"include_usage":true}})", "stream_options",
       "Stream options can only be defined when `stream=True`."},
      {R"({"prompt":"x","logprobs":25})", "logprobs", "greater than max allowed: 20"},
      {R"({"prompt":"x","echo":"yes"})", "echo", "boolean"},
      {R"({"prompt":"x","stop_token_ids":[-1]})", "stop_token_ids", "token ids"},
      {R"({"prompt":"x","data_parallel_rank":-1})", "data_parallel_rank", "data_parallel_rank"},
  };
  for (const Case& c : cases) {
    const auto result = post("/v1/completions", c.body);
    expect_error(result, 400, std::string("bad_") + c.param);
    const json error = json::parse(result.body)["error"];
    EXPECT_EQ(error["param"], c.param) << c.body;
    EXPECT_NE(error["message"].get<std::string>().find(c.message_part), std::string::npos)
        << c.body << " -> " << result.body;
  }
  expect_error(post("/v1/chat/completions",
                    R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})"),
               400, "bad_top_logprobs");
  EXPECT_TRUE(backend_.requests().empty());
}

TEST_F(OpenAiServerTest, StopConditionsSeedAndRankReachTheWorker) {
  const auto result = post("/v1/completions",
                           R"({"prompt":"x","max_tokens":5,"min_tokens":2,"ignore_eos":true,
                               "stop_token_ids":[9,10],"seed":-3,"data_parallel_rank":1})");
  ASSERT_EQ(result.status, 200) << result.body;
  const GenerationRequest request = backend_.requests().at(0);
  EXPECT_EQ(request.min_tokens, 2u);
  EXPECT_TRUE(request.ignore_eos);
  EXPECT_EQ(request.stop_token_ids, (std::vector<TokenId>{9, 10}));
  EXPECT_EQ(request.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(request.dp_rank, 1u);
  EXPECT_EQ(json::parse(result.body)["choices"][0]["stop_reason"], nullptr);
}

// Parity note M11: vLLM's X-data-parallel-rank header pins the rank and wins over the body.
TEST_F(OpenAiServerTest, TheDataParallelRankHeaderPinsTheRequest) {
  ASSERT_EQ(post("/v1/completions", R"({"prompt":"x","max_tokens":1})").status, 200);
  const auto pinned = http_request(port_, "POST", "/v1/completions",
                                   R"({"prompt":"x","max_tokens":1,"data_parallel_rank":0})",
                                   {{"X-data-parallel-rank", "3"}});
  ASSERT_EQ(pinned.status, 200) << pinned.body;
  const auto requests = backend_.requests();
  EXPECT_FALSE(requests.at(0).dp_rank.has_value());
  EXPECT_EQ(requests.at(1).dp_rank, 3u);
  expect_error(http_request(port_, "POST", "/v1/completions", R"({"prompt":"x"})",
                            {{"X-data-parallel-rank", "one"}}),
               400, "bad_data_parallel_rank");
}

// Parity note M2: logprobs are well formed and name the returned tokens.
TEST_F(OpenAiServerTest, CompletionLogprobsDescribeTheReturnedTokens) {
  const auto result =
      post("/v1/completions", R"({"prompt":"hello world","max_tokens":3,"logprobs":2})");
  ASSERT_EQ(result.status, 200) << result.body;
  const json choice = json::parse(result.body)["choices"][0];
  const json& logprobs = choice["logprobs"];
  ASSERT_EQ(logprobs["tokens"].size(), 3u) << logprobs;
  std::string joined;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(logprobs["text_offset"][i], joined.size());
    const std::string token = logprobs["tokens"][i];
    joined += token;
    const double value = logprobs["token_logprobs"][i];
    EXPECT_LT(value, 0.0);
    const json& top = logprobs["top_logprobs"][i];
    EXPECT_EQ(top.size(), 2u) << top;
    ASSERT_TRUE(top.contains(token)) << top;
    EXPECT_EQ(top[token], value);
    for (const auto& [other, other_value] : top.items())
      EXPECT_LE(other_value.get<double>(), value);
  }
  EXPECT_EQ(joined, choice["text"]);
}

TEST_F(OpenAiServerTest, ChatLogprobsDescribeTheReturnedTokensWhenStreamedToo) {
  for (const bool stream : {false, true}) {
    const std::string body = std::string(R"({"messages":[{"role":"user","content":"hi"}],)") +
                             R"("max_tokens":3,"logprobs":true,"top_logprobs":2,"stream":)" +
                             (stream ? "true" : "false") + "}";
    const auto result = stream ? http_stream(port_, "POST", "/v1/chat/completions", body,
                                             [](const std::string&) { return true; })
                               : post("/v1/chat/completions", body);
    ASSERT_EQ(result.status, 200) << result.body;
    std::string text;
    json entries = json::array();
    const std::vector<json> events =
        stream ? sse_events(result.body) : std::vector<json>{json::parse(result.body)};
    for (const json& event : events) {
      if (!event.is_object()) continue;
      const json& choice = event["choices"][0];
      const json& content = stream ? choice["delta"]["content"] : choice["message"]["content"];
      if (content.is_string()) text += content.get<std::string>();
      if (choice["logprobs"].is_object()) {
        for (const json& entry : choice["logprobs"]["content"]) entries.push_back(entry);
      }
    }
    ASSERT_EQ(entries.size(), 3u) << result.body;
    std::string joined;
    for (const json& entry : entries) {
      joined += entry["token"].get<std::string>();
      EXPECT_EQ(entry["top_logprobs"].size(), 2u);
      EXPECT_EQ(entry["top_logprobs"][0]["token"], entry["token"]);
      EXPECT_EQ(entry["bytes"].size(), entry["token"].get<std::string>().size());
    }
    EXPECT_EQ(joined, text) << stream;
  }
}

// Parity note M3.
TEST_F(OpenAiServerTest, EchoPutsThePromptBeforeTheOutput) {
  const auto result =
      post("/v1/completions", R"({"prompt":"hello world","max_tokens":2,"echo":true})");
  ASSERT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(json::parse(result.body)["choices"][0]["text"], "hello world" + expected_text(2));
  const auto streamed = http_stream(port_, "POST", "/v1/completions",
                                    R"({"prompt":"hi there","max_tokens":2,"echo":true,
                                        "stream":true})",
                                    [](const std::string&) { return true; });
  const auto events = sse_events(streamed.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0]["choices"][0]["text"], "hi there");
}

// vLLM answers echo with logprobs with the prompt's logprobs first: the first prompt token
// has none (null value and alternatives), and the offsets run through prompt and output.
TEST_F(OpenAiServerTest, EchoWithLogprobsListsThePromptTokensFirst) {
  const auto result = post(
      "/v1/completions", R"({"prompt":"hello big world","max_tokens":2,"echo":true,"logprobs":1})");
  ASSERT_EQ(result.status, 200) << result.body;
  const json choice = json::parse(result.body)["choices"][0];
  const json& logprobs = choice["logprobs"];
  ASSERT_EQ(logprobs["tokens"].size(), 5u) << logprobs;  // 3 prompt words, 2 output tokens
  EXPECT_TRUE(logprobs["token_logprobs"][0].is_null());
  EXPECT_TRUE(logprobs["top_logprobs"][0].is_null());
  // Prompt offsets run through the prompt's token strings (the tokenizer's view of the
  // prompt: the mock tokenizer's words are not the client's); the output's start after the
  // echoed text and join to the generated text.
  size_t offset = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(logprobs["text_offset"][i], offset) << i;
    offset += logprobs["tokens"][i].get<std::string>().size();
  }
  const std::string prompt = "hello big world";
  std::string output;
  for (size_t i = 3; i < 5; ++i) {
    EXPECT_EQ(logprobs["text_offset"][i], prompt.size() + output.size()) << i;
    output += logprobs["tokens"][i].get<std::string>();
  }
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_LT(logprobs["token_logprobs"][i].get<double>(), 0.0) << i;
    EXPECT_EQ(logprobs["top_logprobs"][i].size(), 1u) << i;
  }
  EXPECT_EQ(prompt + output, choice["text"]);

  // Streamed: the echoed prompt's chunk carries the prompt's lists.
  const auto streamed = http_stream(port_, "POST", "/v1/completions",
                                    R"({"prompt":"hello big world","max_tokens":2,"echo":true,
                                        "logprobs":1,"stream":true})",
                                    [](const std::string&) { return true; });
  const auto events = sse_events(streamed.body);
  ASSERT_FALSE(events.empty());
  const json& first = events[0]["choices"][0];
  EXPECT_EQ(first["text"], "hello big world");
  ASSERT_EQ(first["logprobs"]["tokens"].size(), 3u) << first;
  EXPECT_TRUE(first["logprobs"]["token_logprobs"][0].is_null());
  EXPECT_EQ(first["logprobs"]["text_offset"][0], 0);
  const json prompt_tokens(logprobs["tokens"].begin(), logprobs["tokens"].begin() + 3);
  EXPECT_EQ(first["logprobs"]["tokens"], prompt_tokens) << first;
}

// Parity note M5: a forced tool call is answered with a call whose arguments fit the schema.
TEST_F(OpenAiServerTest, ARequiredToolChoiceAnswersWithAToolCall) {
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{
          "type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},
          "unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}}])";
  const auto result = post("/v1/chat/completions",
                           R"({"messages":[{"role":"user","content":"weather?"}],"max_tokens":4,)" +
                               tools + R"(,"tool_choice":"required"})");
  ASSERT_EQ(result.status, 200) << result.body;
  const json choice = json::parse(result.body)["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << choice;
  const json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  const json arguments = json::parse(call["function"]["arguments"].get<std::string>());
  EXPECT_TRUE(arguments["city"].is_string());
  EXPECT_TRUE(arguments["days"].is_number_integer());
  EXPECT_EQ(arguments["unit"], "c");

  expect_error(
      post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],)" + tools +
                                       R"(,"tool_choice":{"type":"function",
                                                "function":{"name":"nope"}}})"),
      400, "bad_tool_choice");
  // "auto" leaves the answer to the model: text.
  const auto automatic = post("/v1/chat/completions",
                              R"({"messages":[{"role":"user","content":"x"}],"max_tokens":2,)" +
                                  tools + R"(,"tool_choice":"auto"})");
  EXPECT_EQ(json::parse(automatic.body)["choices"][0]["finish_reason"], "length");
}

TEST_F(OpenAiServerTest, ContinuousUsageStatsCountTokensInEveryChunk) {
  const auto result = http_stream(port_, "POST", "/v1/completions",
                                  R"({"prompt":"p q","max_tokens":3,"stream":true,
                                      "stream_options":{"include_usage":true,
                                                        "continuous_usage_stats":true}})",
                                  [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  std::vector<uint64_t> counts;
  for (const json& event : sse_events(result.body)) {
    if (!event.is_object()) continue;
    ASSERT_TRUE(event["usage"].is_object()) << event;
    EXPECT_EQ(event["usage"]["prompt_tokens"], 2);
    counts.push_back(event["usage"]["completion_tokens"]);
  }
  ASSERT_GE(counts.size(), 4u);
  EXPECT_EQ(counts[0], 1u);
  EXPECT_EQ(counts.back(), 3u);
}

// n > 1: vLLM samples n sequences for one prompt; here each is an engine request of its own.
TEST_F(OpenAiServerTest, NChoicesComeFromNEngineRequestsWithTheirOwnOutput) {
  backend_.vary_output = true;
  const auto result = post("/v1/completions", R"({"prompt":"a b","max_tokens":3,"n":3})");
  ASSERT_EQ(result.status, 200) << result.body;
  const json body = json::parse(result.body);
  ASSERT_EQ(body["choices"].size(), 3u) << body;
  std::set<std::string> texts;
  for (size_t i = 0; i < 3; ++i) {
    const json& choice = body["choices"][i];
    EXPECT_EQ(choice["index"], i);
    // No seed: the request id varies the output, ids 1..3 in submission order.
    EXPECT_EQ(choice["text"], expected_text(3, output_offset(std::nullopt, i + 1)));
    EXPECT_EQ(choice["finish_reason"], "length");
    EXPECT_TRUE(choice["stop_reason"].is_null());
    texts.insert(choice["text"].get<std::string>());
  }
  EXPECT_EQ(texts.size(), 3u);
  EXPECT_EQ(body["usage"]["prompt_tokens"], 2);
  EXPECT_EQ(body["usage"]["completion_tokens"], 9);
  EXPECT_EQ(body["usage"]["total_tokens"], 11);
  const auto requests = backend_.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const GenerationRequest& request : requests) {
    EXPECT_EQ(request.prompt, mock_tokenize("a b"));
    EXPECT_EQ(request.max_tokens, 3u);
    EXPECT_FALSE(request.seed.has_value());
  }
}

TEST_F(OpenAiServerTest, ChatWithNAnswersOneMessagePerChoice) {
  backend_.vary_output = true;
  const auto result =
      post("/v1/chat/completions",
           R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"n":2,"logprobs":true})");
  ASSERT_EQ(result.status, 200) << result.body;
  const json body = json::parse(result.body);
  ASSERT_EQ(body["choices"].size(), 2u) << body;
  for (size_t i = 0; i < 2; ++i) {
    const json& choice = body["choices"][i];
    EXPECT_EQ(choice["index"], i);
    EXPECT_EQ(choice["message"]["role"], "assistant");
    const std::string text = choice["message"]["content"];
    EXPECT_EQ(text, expected_text(2, output_offset(std::nullopt, i + 1)));
    // Each choice's logprobs name its own tokens.
    std::string joined;
    for (const json& entry : choice["logprobs"]["content"]) joined += entry["token"];
    EXPECT_EQ(joined, text);
  }
  EXPECT_NE(body["choices"][0]["message"]["content"], body["choices"][1]["message"]["content"]);
  EXPECT_EQ(body["usage"]["completion_tokens"], 4);
}

TEST_F(OpenAiServerTest, AStreamOfNChoicesInterleavesThemAndEndsOnce) {
  backend_.vary_output = true;
  backend_.delay = std::chrono::milliseconds(20);
  const auto result = http_stream(port_, "POST", "/v1/chat/completions",
                                  R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4,
                                      "n":2,"stream":true,"stream_options":{"include_usage":true}})",
                                  [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  const auto events = sse_events(result.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::map<size_t, std::string> texts;
  std::map<size_t, int> roles, finishes;
  std::map<size_t, size_t> first_content_at, finish_at;
  size_t usage_chunks = 0, done = 0, usage_at = 0;
  for (size_t at = 0; at < events.size(); ++at) {
    const json& event = events[at];
    if (!event.is_object()) {
      ++done;
      continue;
    }
    EXPECT_EQ(event["id"], events[0]["id"]);
    if (event["choices"].empty()) {
      ++usage_chunks;
      usage_at = at;
      EXPECT_EQ(event["usage"]["completion_tokens"], 8);
      EXPECT_EQ(event["usage"]["total_tokens"], event["usage"]["prompt_tokens"].get<int>() + 8);
      continue;
    }
    ASSERT_EQ(event["choices"].size(), 1u) << event;
    const json& choice = event["choices"][0];
    const size_t index = choice["index"];
    const json& delta = choice["delta"];
    if (delta.contains("role")) ++roles[index];
    if (delta.contains("content") && !delta["content"].get<std::string>().empty()) {
      first_content_at.emplace(index, at);
      texts[index] += delta["content"].get<std::string>();
    }
    if (!choice["finish_reason"].is_null()) {
      ++finishes[index];
      finish_at[index] = at;
      EXPECT_EQ(choice["finish_reason"], "length");
    }
  }
  EXPECT_EQ(done, 1u);
  EXPECT_EQ(roles, (std::map<size_t, int>{{0, 1}, {1, 1}}));
  EXPECT_EQ(finishes, (std::map<size_t, int>{{0, 1}, {1, 1}}));
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0], expected_text(4, output_offset(std::nullopt, 1)));
  EXPECT_EQ(texts[1], expected_text(4, output_offset(std::nullopt, 2)));
  // Both run at once: each choice's output begins before the other's ends.
  EXPECT_LT(first_content_at.at(1), finish_at.at(0));
  EXPECT_LT(first_content_at.at(0), finish_at.at(1));
  EXPECT_EQ(usage_chunks, 1u);
  EXPECT_GT(usage_at, std::max(finish_at[0], finish_at[1]));
}

// A seed gives each choice the seed plus its index: the same request gives the same set.
TEST_F(OpenAiServerTest, ASeedMakesEveryChoiceReproducible) {
  backend_.vary_output = true;
  const std::string request = R"({"prompt":"a","max_tokens":3,"n":3,"seed":42})";
  const auto first = post("/v1/completions", request);
  const auto second = post("/v1/completions", request);
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(second.status, 200) << second.body;
  const json a = json::parse(first.body)["choices"];
  const json b = json::parse(second.body)["choices"];
  ASSERT_EQ(a.size(), 3u);
  std::set<std::string> texts;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a[i]["text"], b[i]["text"]);
    EXPECT_EQ(a[i]["text"], expected_text(3, output_offset(42 + i, 0)));
    texts.insert(a[i]["text"].get<std::string>());
  }
  EXPECT_EQ(texts.size(), 3u);
  const auto requests = backend_.requests();
  ASSERT_EQ(requests.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(requests[i].seed, 42 + i % 3);
}

// best_of: best_of sequences are generated and the n of highest cumulative logprob returned,
// best first; usage counts only the returned ones.
TEST_F(OpenAiServerTest, BestOfReturnsTheSequencesOfHighestCumulativeLogprob) {
  backend_.vary_output = true;
  const auto all =
      post("/v1/completions", R"({"prompt":"a","max_tokens":4,"n":3,"seed":11,"logprobs":1})");
  ASSERT_EQ(all.status, 200) << all.body;
  std::vector<std::pair<double, std::string>> ranked;
  const json all_body = json::parse(all.body);
  for (const json& choice : all_body["choices"]) {
    double sum = 0;
    for (const json& value : choice["logprobs"]["token_logprobs"]) sum += value.get<double>();
    ranked.emplace_back(sum, choice["text"]);
  }
  ASSERT_EQ(ranked.size(), 3u);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  ASSERT_NE(ranked[0].first, ranked[1].first) << "the ranking needs distinct sums";

  const auto best =
      post("/v1/completions", R"({"prompt":"a","max_tokens":4,"best_of":3,"seed":11})");
  ASSERT_EQ(best.status, 200) << best.body;
  const json body = json::parse(best.body);
  ASSERT_EQ(body["choices"].size(), 1u) << body;
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["text"], ranked[0].second);
  EXPECT_EQ(body["usage"]["completion_tokens"], 4);

  const auto two =
      post("/v1/completions", R"({"prompt":"a","max_tokens":4,"n":2,"best_of":3,"seed":11})");
  ASSERT_EQ(two.status, 200) << two.body;
  const json choices = json::parse(two.body)["choices"];
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0]["index"], 0);
  EXPECT_EQ(choices[0]["text"], ranked[0].second);
  EXPECT_EQ(choices[1]["index"], 1);
  EXPECT_EQ(choices[1]["text"], ranked[1].second);
  EXPECT_EQ(json::parse(two.body)["usage"]["completion_tokens"], 8);
  EXPECT_EQ(backend_.requests().size(), 9u);
}

TEST_F(OpenAiServerTest, NAndBestOfAreValidatedAsVllmDoes) {
  const auto below = post("/v1/completions", R"({"prompt":"a","n":3,"best_of":2})");
  expect_error(below, 400, "bad_best_of");
  EXPECT_EQ(json::parse(below.body)["error"]["param"], "best_of");
  EXPECT_NE(below.body.find("best_of must be greater than or equal to n"), std::string::npos);
  const auto streamed = post("/v1/completions", R"({"prompt":"a","best_of":2,"stream":true})");
  expect_error(streamed, 400, "bad_best_of");
  EXPECT_EQ(json::parse(streamed.body)["error"]["param"], "best_of");
  EXPECT_NE(streamed.body.find("best_of != n is not supported with streaming"), std::string::npos);
  const std::string over = std::to_string(kMaxChoices + 1);
  const auto too_many = post("/v1/completions", R"({"prompt":"a","n":)" + over + "}");
  expect_error(too_many, 400, "bad_n");
  EXPECT_EQ(json::parse(too_many.body)["error"]["param"], "n");
  expect_error(post("/v1/completions", R"({"prompt":"a","best_of":)" + over + "}"), 400,
               "bad_best_of");
  expect_error(post("/v1/chat/completions",
                    R"({"messages":[{"role":"user","content":"x"}],"n":)" + over + "}"),
               400, "bad_n");
  EXPECT_TRUE(backend_.requests().empty());

  // best_of equal to n streams; chat ignores best_of (not a chat field), as vLLM does.
  const auto equal = http_stream(port_, "POST", "/v1/completions",
                                 R"({"prompt":"a","max_tokens":1,"n":2,"best_of":2,"stream":true})",
                                 [](const std::string&) { return true; });
  EXPECT_EQ(equal.status, 200) << equal.body;
  const auto chat = post("/v1/chat/completions",
                         R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1,
                             "best_of":5})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(json::parse(chat.body)["choices"].size(), 1u);
  EXPECT_EQ(backend_.requests().size(), 3u);
}

// A stop string ends only the choice whose text it matched.
TEST_F(OpenAiServerTest, AStopStringStopsOnlyItsOwnChoice) {
  backend_.vary_output = true;
  const std::string first = expected_text(8, output_offset(std::nullopt, 1));
  const std::string second = expected_text(8, output_offset(std::nullopt, 2));
  const std::string stop = words_of(first).at(2);
  ASSERT_EQ(second.find(stop), std::string::npos) << stop << " in " << second;
  const auto result =
      post("/v1/completions", R"({"prompt":"a","max_tokens":8,"n":2,"stop":")" + stop + R"("})");
  ASSERT_EQ(result.status, 200) << result.body;
  const json choices = json::parse(result.body)["choices"];
  EXPECT_EQ(choices[0]["text"], first.substr(0, first.find(stop)));
  EXPECT_EQ(choices[0]["finish_reason"], "stop");
  EXPECT_EQ(choices[0]["stop_reason"], stop);
  EXPECT_EQ(choices[1]["text"], second);
  EXPECT_EQ(choices[1]["finish_reason"], "length");
  EXPECT_EQ(backend_.stops(), (std::set<uint64_t>{1}));
  EXPECT_TRUE(backend_.cancels().empty());
}

TEST_F(OpenAiServerTest, HangingUpCancelsEveryChoicesRequest) {
  backend_.delay = std::chrono::milliseconds(5);
  http_stream(port_, "POST", "/v1/completions",
              R"({"prompt":"p","max_tokens":100000,"n":2,"stream":true})",
              [](const std::string& data) { return data.find("data: ") == std::string::npos; });
  ASSERT_TRUE(wait_for_cancel(2));
  EXPECT_EQ(backend_.cancels(), (std::set<uint64_t>{1, 2}));

  const auto whole =
      http_request(port_, "POST", "/v1/completions", R"({"prompt":"p","max_tokens":100000,"n":2})",
                   std::chrono::milliseconds(100));
  EXPECT_EQ(whole.status, 0);
  ASSERT_TRUE(wait_for_cancel(4));
  EXPECT_EQ(backend_.cancels(), (std::set<uint64_t>{1, 2, 3, 4}));
}

// A refusal after some choices were queued cancels them and answers with the refusal.
TEST_F(OpenAiServerTest, ARefusedChoiceCancelsTheChoicesAlreadyQueued) {
  backend_.delay = std::chrono::milliseconds(5);
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream);
    backend_.refuse_after = stream ? 4 : 2;
    const auto result =
        post("/v1/completions", std::string(R"({"prompt":"p","max_tokens":100000,"n":3,)") +
                                    R"("stream":)" + (stream ? "true" : "false") + "}");
    expect_error(result, 429, "queue_full");
    EXPECT_EQ(result.headers.at("content-type"), "application/json");
  }
  ASSERT_TRUE(wait_for_cancel(4));
  EXPECT_EQ(backend_.cancels(), (std::set<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(backend_.requests().size(), 4u);
}

// One failed choice fails the answer: a 500, or one error event and one [DONE].
TEST_F(OpenAiServerTest, AFailedChoiceFailsTheWholeAnswer) {
  backend_.fail_after = 1;
  expect_error(post("/v1/completions", R"({"prompt":"p","max_tokens":5,"n":2})"), 500,
               "generation_failed");
  const auto result = http_stream(port_, "POST", "/v1/completions",
                                  R"({"prompt":"p","max_tokens":5,"n":2,"stream":true})",
                                  [](const std::string&) { return true; });
  ASSERT_EQ(result.status, 200) << result.error;
  const auto events = sse_events(result.body);
  size_t errors = 0, done = 0;
  for (const json& event : events) {
    if (event == "[DONE]") ++done;
    if (event.is_object() && event.contains("error")) ++errors;
    if (event.is_object() && event.contains("choices")) {
      EXPECT_TRUE(event["choices"][0]["finish_reason"].is_null()) << event;
    }
  }
  EXPECT_EQ(errors, 1u) << result.body;
  EXPECT_EQ(done, 1u);
  EXPECT_EQ(events.back(), "[DONE]");
}

}  // namespace
}  // namespace kvmock
