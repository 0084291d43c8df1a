// `kvmockd run` with mock workers, as a router under test sees them: requests arrive over
// the OpenAI HTTP API, the NATS generate subject, and the engine-format ZMQ output is read
// back by kvmock's own relay; KV events and load are checked on a real nats-server.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/events/active_load_codec.h"
#include "core/events/envelope_codec.h"
#include "core/tokens/block_hash.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/engine_requests.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"

namespace kvmock {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::http_request;
using testing::http_stream;
using testing::NatsServer;

constexpr uint32_t kBlockSize = 16;
constexpr WorkerId kFirstWorker = 1000;
constexpr WorkerId kRelayWorker = 9000;

// A prompt of `length` token ids: the first `shared` come from `shared_seed`, the rest from
// `own_seed`, so two prompts with the same shared seed share exactly that prefix.
std::vector<TokenId> make_prompt(uint32_t shared_seed, uint32_t shared, uint32_t own_seed,
                                 uint32_t length) {
  std::vector<TokenId> prompt = testing::seeded_prompt(shared_seed, std::min(shared, length));
  const std::vector<TokenId> own = testing::seeded_prompt(own_seed, length);
  prompt.insert(prompt.end(), own.begin() + static_cast<long>(prompt.size()), own.end());
  return prompt;
}

// What the router must hold for `prompt`: sequence hash → (tokens_hash, parent).
struct ExpectedBlock {
  uint64_t tokens_hash = 0;
  std::optional<BlockHash> parent;
};
std::map<BlockHash, ExpectedBlock> expected_blocks(const std::vector<TokenId>& prompt) {
  const auto content = tokens_hashes(prompt, kBlockSize);
  const auto sequence = sequence_hashes(content);
  std::map<BlockHash, ExpectedBlock> blocks;
  for (size_t i = 0; i < sequence.size(); ++i) {
    blocks[sequence[i]] = {content[i], i == 0 ? std::nullopt : std::optional(sequence[i - 1])};
  }
  return blocks;
}

// Everything the daemon publishes on the NATS event plane, decoded as it arrives.
class EventPlane {
 public:
  explicit EventPlane(const std::string& url) {
    client_ = testing::connect_test_client(url);
    if (!client_) {
      ADD_FAILURE() << "no NATS connection to " << url;
      return;
    }
    natsConnection_Subscribe(&event_sub_, client_->connection(),
                             "namespace.dynamo.component.backend.kv-events", &on_event, this);
    natsConnection_Subscribe(&load_sub_, client_->connection(), "namespace.dynamo.kv_metrics",
                             &on_load, this);
    natsSubscription_SetPendingLimits(event_sub_, -1, -1);
    natsConnection_Flush(client_->connection());
  }
  ~EventPlane() {
    natsSubscription_Destroy(event_sub_);
    natsSubscription_Destroy(load_sub_);
  }

  std::vector<RouterEvent> events_of(WorkerId worker) {
    std::lock_guard lock(mutex_);
    std::vector<RouterEvent> out;
    for (const RouterEvent& event : events_) {
      if (event.worker_id == worker) out.push_back(event);
    }
    return out;
  }
  std::vector<ActiveLoad> loads_of(WorkerId worker) {
    std::lock_guard lock(mutex_);
    std::vector<ActiveLoad> out;
    for (const ActiveLoad& load : loads_) {
      if (load.worker_id == worker) out.push_back(load);
    }
    return out;
  }
  // Waits until `worker` has stored every block of `blocks` (bounded).
  bool wait_stored(WorkerId worker, const std::map<BlockHash, ExpectedBlock>& blocks,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, timeout, [&] {
      std::set<BlockHash> stored;
      for (const RouterEvent& event : events_) {
        if (event.worker_id != worker) continue;
        if (const auto* store = std::get_if<StoreData>(&event.event.data)) {
          for (const StoredBlock& block : store->blocks) stored.insert(block.block_hash);
        }
      }
      return std::all_of(blocks.begin(), blocks.end(),
                         [&](const auto& entry) { return stored.count(entry.first) > 0; });
    });
  }
  size_t malformed() {
    std::lock_guard lock(mutex_);
    return malformed_;
  }
  NatsClient& client() { return *client_; }

 private:
  static void on_event(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    auto* plane = static_cast<EventPlane*>(self);
    auto published = testing::decode_published_event(msg);
    natsMsg_Destroy(msg);
    std::lock_guard lock(plane->mutex_);
    if (published) {
      plane->events_.push_back(std::move(published->event));
    } else {
      ++plane->malformed_;
    }
    plane->arrived_.notify_all();
  }
  static void on_load(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    auto* plane = static_cast<EventPlane*>(self);
    auto envelope = decode_event_envelope_msgpack(
        std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                  static_cast<size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
    auto load = envelope ? decode_active_load_msgpack(envelope->payload)
                         : Result<ActiveLoad>(envelope.error());
    std::lock_guard lock(plane->mutex_);
    if (load) {
      plane->loads_.push_back(*load);
    } else {
      ++plane->malformed_;
    }
  }

  std::unique_ptr<NatsClient> client_;
  natsSubscription* event_sub_ = nullptr;
  natsSubscription* load_sub_ = nullptr;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<RouterEvent> events_;
  std::vector<ActiveLoad> loads_;
  size_t malformed_ = 0;
};

// Every event of `worker` carries the next id, from 1.
void expect_gap_free_ids(const std::vector<RouterEvent>& events, WorkerId worker) {
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].event.event_id, i + 1) << "worker " << worker << " event " << i;
  }
}

// Each stored block of `events` that `expected` knows has the right content hash and
// parent, and every expected block was stored.
void expect_stored_as(const std::vector<RouterEvent>& events,
                      const std::map<BlockHash, ExpectedBlock>& expected) {
  std::set<BlockHash> seen;
  for (const RouterEvent& event : events) {
    const auto* store = std::get_if<StoreData>(&event.event.data);
    if (!store) continue;
    std::optional<BlockHash> parent = store->parent_hash;
    for (const StoredBlock& block : store->blocks) {
      if (auto it = expected.find(block.block_hash); it != expected.end()) {
        EXPECT_EQ(block.tokens_hash, it->second.tokens_hash) << block.block_hash;
        EXPECT_EQ(parent, it->second.parent) << block.block_hash;
        seen.insert(block.block_hash);
      }
      parent = block.block_hash;
    }
  }
  EXPECT_EQ(seen.size(), expected.size());
}

json completion_body(const std::vector<TokenId>& prompt, uint32_t max_tokens, bool stream) {
  json body{{"model", "kvmock-model"}, {"prompt", prompt}, {"max_tokens", max_tokens}};
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

// One streamed completion as a client sees it.
struct StreamedAnswer {
  int status = 0;
  std::chrono::duration<double, std::milli> ttft{0};
  uint64_t completion_tokens = 0;
  uint64_t cached_tokens = 0;
  bool done = false;
};

StreamedAnswer stream_completion(uint16_t port, const std::vector<TokenId>& prompt,
                                 uint32_t max_tokens) {
  StreamedAnswer answer;
  std::string pending;
  const auto start = std::chrono::steady_clock::now();
  bool first_text = false;
  const auto result = http_stream(
      port, "POST", "/v1/completions", completion_body(prompt, max_tokens, true).dump(),
      [&](const std::string& piece) {
        pending += piece;
        size_t end;
        while ((end = pending.find("\n\n")) != std::string::npos) {
          const std::string event = pending.substr(0, end);
          pending.erase(0, end + 2);
          if (event == "data: [DONE]") {
            answer.done = true;
            continue;
          }
          const json chunk = json::parse(event.substr(6), nullptr, false);
          if (chunk.is_discarded()) continue;
          if (!first_text && !chunk["choices"].empty() &&
              !chunk["choices"][0]["text"].get<std::string>().empty()) {
            first_text = true;
            answer.ttft = std::chrono::steady_clock::now() - start;
          }
          if (chunk.contains("usage") && chunk["usage"].is_object()) {
            answer.completion_tokens = chunk["usage"]["completion_tokens"];
            answer.cached_tokens = chunk["usage"]["prompt_tokens_details"]["cached_tokens"];
          }
        }
        return true;
      });
  answer.status = result.status;
  return answer;
}

// The value of `metric{...worker_id="id"...}` in Prometheus text, or -1.
double metric_value(const std::string& text, const std::string& metric, WorkerId worker) {
  std::istringstream lines(text);
  std::string line;
  const std::string label = "worker_id=\"" + std::to_string(worker) + "\"";
  while (std::getline(lines, line)) {
    if (line.rfind(metric + "{", 0) == 0 && line.find(label) != std::string::npos) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

class RunWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start());
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    http_base_ = testing::free_loopback_port_range(4);
    ASSERT_NE(http_base_, 0);
    plane_ = std::make_unique<EventPlane>(server_.url());
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(std::chrono::seconds(15)), 0) << daemon_->output();
    }
    if (!config_path_.empty()) ::unlink(config_path_.c_str());
  }

  // Starts kvmockd with `workers` workers plus `extra` YAML under the top level.
  void start_daemon(uint32_t workers, uint32_t gpu_blocks, const std::string& extra = {}) {
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + server_.url() + "\nadmin:\n  listen: 127.0.0.1:" +
        std::to_string(admin_port_) + "\nload_metrics:\n  debounce_ms: 1\n" + "workers:\n" +
        "  count: " + std::to_string(workers) + "\n  http_base_port: " +
        std::to_string(http_base_) + "\n  engine:\n    block_size: " + std::to_string(kBlockSize) +
        "\n    num_gpu_blocks: " + std::to_string(gpu_blocks) + "\n" + extra);
    daemon_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::kvmockd_path(), "run", "--config", config_path_});
    if (testing::wait_for_status(admin_port_, "/ready", 200, std::chrono::seconds(10))) return;
    FAIL() << "daemon not ready: " << daemon_->output();
  }

  uint16_t worker_port(uint32_t index) const { return static_cast<uint16_t>(http_base_ + index); }

  NatsServer server_;
  uint16_t admin_port_ = 0;
  int http_base_ = 0;
  std::unique_ptr<EventPlane> plane_;
  std::unique_ptr<ChildProcess> daemon_;
  std::string config_path_;
};

TEST_F(RunWorkersTest, StreamingRequestsPublishTheirBlocksAndReuseSharedPrefixes) {
  start_daemon(4, 4096);
  // Each worker gets a 1,024-token prompt (the first 512 tokens shared by all workers),
  // then a second one sharing its first 960 tokens; the four run concurrently.
  struct PerWorker {
    std::vector<TokenId> first, second;
    StreamedAnswer first_answer, second_answer;
  };
  std::vector<PerWorker> runs(4);
  std::vector<std::thread> clients;
  for (uint32_t w = 0; w < 4; ++w) {
    runs[w].first = make_prompt(1, 512, 10 + w, 1024);
    runs[w].second = runs[w].first;
    const auto tail = make_prompt(0, 0, 100 + w, 1024);
    std::copy(tail.begin() + 960, tail.end(), runs[w].second.begin() + 960);
    clients.emplace_back([&, w] {
      runs[w].first_answer = stream_completion(worker_port(w), runs[w].first, 8);
      runs[w].second_answer = stream_completion(worker_port(w), runs[w].second, 8);
    });
  }
  for (auto& client : clients) client.join();

  for (uint32_t w = 0; w < 4; ++w) {
    SCOPED_TRACE("worker " + std::to_string(w));
    const PerWorker& run = runs[w];
    ASSERT_EQ(run.first_answer.status, 200);
    EXPECT_TRUE(run.first_answer.done && run.second_answer.done);
    EXPECT_EQ(run.first_answer.completion_tokens, 8u);
    EXPECT_EQ(run.first_answer.cached_tokens, 0u);
    EXPECT_EQ(run.second_answer.cached_tokens, 960u);
    EXPECT_LT(run.second_answer.ttft, run.first_answer.ttft);

    const WorkerId id = kFirstWorker + w;
    auto expected = expected_blocks(run.first);
    expected.merge(expected_blocks(run.second));
    ASSERT_TRUE(plane_->wait_stored(id, expected)) << daemon_->output();
    const auto events = plane_->events_of(id);
    expect_gap_free_ids(events, id);
    expect_stored_as(events, expected);
    // Event 1 is the Cleared that opens every channel at start
    // (docs/wire-formats.md#event-ids). Nothing was evicted from a 4,096-block cache, so
    // after it nothing may be removed.
    ASSERT_FALSE(events.empty());
    EXPECT_TRUE(is_clear(events.front().event.data));
    for (size_t i = 1; i < events.size(); ++i) {
      const RouterEvent& event = events[i];
      EXPECT_TRUE(is_store(event.event.data)) << "event " << event.event.event_id;
      EXPECT_EQ(event.storage_tier, StorageTier::kDevice);
    }
  }
  EXPECT_EQ(plane_->malformed(), 0u);

  // Load went up while the requests ran and back to no decode blocks after.
  for (uint32_t w = 0; w < 4; ++w) {
    const auto loads = plane_->loads_of(kFirstWorker + w);
    ASSERT_GE(loads.size(), 2u) << "worker " << w;
    EXPECT_TRUE(std::any_of(loads.begin(), loads.end(), [](const ActiveLoad& load) {
      return load.kv_used_blocks.value_or(0) > 0;
    }));
    EXPECT_EQ(loads.back().active_decode_blocks, std::optional<uint64_t>(0));
  }
}

TEST_F(RunWorkersTest, EvictionIsWhatRemovesBlocks) {
  start_daemon(1, 80);  // room for one 64-block prompt, not two
  const auto first = make_prompt(1, 0, 1, 1024);
  const auto second = make_prompt(2, 0, 2, 1024);
  ASSERT_EQ(stream_completion(worker_port(0), first, 4).status, 200);
  ASSERT_TRUE(plane_->wait_stored(kFirstWorker, expected_blocks(first)));
  // The start's Cleared, then one pass stored the prompt.
  EXPECT_EQ(plane_->events_of(kFirstWorker).size(), 2u);
  ASSERT_EQ(stream_completion(worker_port(0), second, 4).status, 200);
  ASSERT_TRUE(plane_->wait_stored(kFirstWorker, expected_blocks(second)));

  const auto events = plane_->events_of(kFirstWorker);
  expect_gap_free_ids(events, kFirstWorker);
  const auto first_blocks = expected_blocks(first);
  std::set<BlockHash> stored, removed;
  for (const RouterEvent& event : events) {
    if (const auto* store = std::get_if<StoreData>(&event.event.data)) {
      for (const StoredBlock& block : store->blocks) stored.insert(block.block_hash);
    } else if (const auto* remove = std::get_if<RemoveData>(&event.event.data)) {
      for (BlockHash hash : remove->block_hashes) {
        EXPECT_TRUE(stored.count(hash)) << "removed before stored: " << hash;
        EXPECT_TRUE(first_blocks.count(hash)) << "removed a block of the running request";
        removed.insert(hash);
      }
    }
  }
  // The second prompt needed 64 blocks of 80, so at least 48 of the first were evicted.
  EXPECT_GE(removed.size(), 48u);
}

// The names of the daemon's threads (/proc/PID/task/*/comm).
std::multiset<std::string> thread_names(int pid) {
  std::multiset<std::string> names;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

TEST_F(RunWorkersTest, EnginesShareTheConfiguredNumberOfThreads) {
  start_daemon(4, 1024, "  threads: 3\n");
  const auto names = thread_names(daemon_->pid());
  for (const char* name : {"kvmock-eng-0", "kvmock-eng-1", "kvmock-eng-2"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  EXPECT_EQ(names.count("kvmock-eng-3"), 0u);
  // Four workers on three threads: one thread runs two engines, and all four answer.
  std::vector<std::thread> clients;
  std::vector<StreamedAnswer> answers(4);
  for (uint32_t i = 0; i < 4; ++i) {
    clients.emplace_back(
        [&, i] { answers[i] = stream_completion(worker_port(i), make_prompt(i, 0, i, 256), 8); });
  }
  for (auto& client : clients) client.join();
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(answers[i].status, 200) << "worker " << i;
    EXPECT_TRUE(answers[i].done) << "worker " << i;
    EXPECT_EQ(answers[i].completion_tokens, 8u) << "worker " << i;
  }
}

TEST_F(RunWorkersTest, CancellingMidStreamFreesTheBlocks) {
  start_daemon(1, 4096);
  const auto usage = [&] {
    return metric_value(http_request(worker_port(0), "GET", "/metrics").body,
                        "vllm:kv_cache_usage_perc", kFirstWorker);
  };
  const double before = usage();
  ASSERT_EQ(before, 0.0);
  double during = -1;
  int chunks = 0;
  http_stream(worker_port(0), "POST", "/v1/completions",
              completion_body(make_prompt(3, 0, 3, 512), 4000, true).dump(),
              [&](const std::string&) {
                if (++chunks < 5) return true;
                during = usage();
                return false;  // hang up mid-stream
              });
  EXPECT_GT(during, 0.0);
  double after = during;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (after != before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = usage();
  }
  EXPECT_EQ(after, before);
  const std::string metrics = http_request(worker_port(0), "GET", "/metrics").body;
  EXPECT_EQ(metric_value(metrics, "vllm:num_requests_running", kFirstWorker), 0.0);
  // Fewer than the 4,000 tokens asked for were generated.
  EXPECT_LT(metric_value(metrics, "vllm:generation_tokens_total", kFirstWorker), 4000.0);
}

TEST_F(RunWorkersTest, TheNatsGenerateSubjectServesTheSameWorkers) {
  start_daemon(2, 4096);
  const WorkerId worker = kFirstWorker + 1;
  const auto prompt = make_prompt(4, 0, 4, 256);
  natsConnection* nc = plane_->client().connection();
  char inbox[64];
  std::snprintf(inbox, sizeof inbox, "_INBOX.kvmock-test-%d", ::getpid());
  natsSubscription* replies = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&replies, nc, inbox), NATS_OK);
  const json request{{"token_ids", prompt},
                     {"stop_conditions", {{"max_tokens", 12}}},
                     {"routing", {{"dp_rank", 0}}},
                     {"sampling_options", json::object()}};
  const std::string body = request.dump();
  const std::string subject =
      "namespace.dynamo.component.backend.generate." + std::to_string(worker);
  ASSERT_EQ(natsConnection_PublishRequest(nc, subject.c_str(), inbox, body.data(),
                                          static_cast<int>(body.size())),
            NATS_OK);
  size_t tokens = 0;
  json last;
  for (int i = 0; i < 100 && last.is_null(); ++i) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(natsSubscription_NextMsg(&msg, replies, 5000), NATS_OK);
    const json output = json::parse(
        std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))),
        nullptr, false);
    natsMsg_Destroy(msg);
    ASSERT_FALSE(output.is_discarded());
    tokens += output["token_ids"].size();
    if (!output["finish_reason"].is_null()) last = output;
  }
  natsSubscription_Destroy(replies);
  ASSERT_FALSE(last.is_null());
  EXPECT_EQ(last["finish_reason"], "length");
  EXPECT_EQ(tokens, 12u);
  EXPECT_EQ(last["completion_usage"]["prompt_tokens"], 256);
  EXPECT_EQ(last["completion_usage"]["completion_tokens"], 12);

  const auto expected = expected_blocks(prompt);
  ASSERT_TRUE(plane_->wait_stored(worker, expected));
  expect_stored_as(plane_->events_of(worker), expected);
  EXPECT_TRUE(plane_->events_of(kFirstWorker).empty());  // the request went to worker 1001
}

TEST_F(RunWorkersTest, TheEngineFormatOutputIsRelayedByKvmocksOwnRelay) {
  const int pub_port = testing::free_loopback_port();
  const int replay_port = testing::free_loopback_port();
  start_daemon(1, 4096,
               "  zmq_events:\n    enabled: true\n    base_port: " + std::to_string(pub_port) +
                   "\n    replay_base_port: " + std::to_string(replay_port) +
                   "\nrelays:\n  - endpoint: tcp://127.0.0.1:" + std::to_string(pub_port) +
                   "\n    replay_endpoint: tcp://127.0.0.1:" + std::to_string(replay_port) +
                   "\n    worker_id: " + std::to_string(kRelayWorker) +
                   "\n    block_size: " + std::to_string(kBlockSize) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the relay's SUB joins
  const auto first = make_prompt(5, 0, 5, 640);
  auto second = first;
  second.resize(320);
  const auto tail = make_prompt(6, 0, 6, 640);
  second.insert(second.end(), tail.begin() + 320, tail.end());
  ASSERT_EQ(stream_completion(worker_port(0), first, 4).status, 200);
  ASSERT_EQ(stream_completion(worker_port(0), second, 4).status, 200);

  auto expected = expected_blocks(first);
  expected.merge(expected_blocks(second));
  ASSERT_TRUE(plane_->wait_stored(kFirstWorker, expected));
  ASSERT_TRUE(plane_->wait_stored(kRelayWorker, expected)) << daemon_->output();
  const auto direct = plane_->events_of(kFirstWorker);
  const auto relayed = plane_->events_of(kRelayWorker);
  expect_gap_free_ids(relayed, kRelayWorker);
  expect_stored_as(relayed, expected);
  // The relay turns each engine batch back into the same router events.
  ASSERT_EQ(relayed.size(), direct.size());
  for (size_t i = 0; i < direct.size(); ++i) {
    EXPECT_EQ(relayed[i].event.data, direct[i].event.data) << "event " << i;
  }
}

}  // namespace
}  // namespace kvmock
