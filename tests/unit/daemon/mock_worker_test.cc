#include "daemon/mock_worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "tests/support/capturing_event_sink.h"
#include "tests/support/manual_clock.h"
#include "tests/support/manual_pass_timers.h"
#include "tests/support/recorded_generation.h"

namespace kvmock {
namespace {

using std::chrono::microseconds;

Config worker_config() {
  Config config;
  config.workers.worker_id_base = 1000;
  EngineArgs& engine = config.workers.engine;
  engine.block_size = 4;
  engine.num_gpu_blocks = 16;
  engine.timing.model = TimingModelKind::kFixed;
  engine.timing.fixed_prefill_ms = 1.0;
  engine.timing.fixed_decode_ms = 1.0;
  return config;
}

GenerationRequest request_of(uint32_t prompt_tokens, uint32_t max_tokens) {
  GenerationRequest request;
  for (uint32_t i = 0; i < prompt_tokens; ++i) request.prompt.push_back(100 + i);
  request.max_tokens = max_tokens;
  return request;
}

// The value of the series whose line starts with `series` (name and labels), if present.
std::optional<std::string> series_value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series, 0) == 0 && line.size() > series.size() && line[series.size()] == ' ') {
      return line.substr(series.size() + 1);
    }
  }
  return std::nullopt;
}

// Worker 3 (id 1003) with one engine on an io_context the test polls (the engine
// threads are never started), a manual clock and manual pass timers.
class MockWorkerTest : public ::testing::Test {
 protected:
  MockWorker& worker(size_t max_waiting = MockWorker::kMaxWaitingPerEngine) {
    if (!worker_) {
      MockWorkerIdentity identity = served_model_identity(config_, nullptr);
      identity.worker_id = 1003;
      identity.output_vocab_end = vocab_end_;
      worker_ = std::make_unique<MockWorker>(
          threads_, config_, std::move(identity), "", sink_, metrics_, nullptr,
          EngineTime{clock_, timers_, clock_.steady_now()}, max_waiting);
    }
    return *worker_;
  }
  void poll() {
    boost::asio::io_context& io = threads_.next();  // the only engine thread
    io.restart();
    io.poll();
  }
  void advance_until_idle() {
    for (int i = 0; i < 1000 && worker().in_flight() > 0; ++i) {
      clock_.advance(microseconds(100));
      timers_.fire_due();
      poll();
    }
  }

  Config config_ = worker_config();
  TokenId vocab_end_ = 0;  // the worker's output vocabulary; 0: the engine's default
  test::ManualClock clock_;
  test::ManualPassTimers timers_{clock_};
  EngineThreads threads_{1};
  test::CapturingEventSink sink_;
  MetricsRegistry metrics_;
  std::unique_ptr<MockWorker> worker_;
};

TEST_F(MockWorkerTest, AWorkerWhoseWaitingQueueIsFullRefusesNewRequestsWithQueueFull) {
  // One request runs at a time, and one may wait: the worker holds two.
  config_.workers.engine.max_num_seqs = 1;
  MockWorker& w = worker(1);
  ASSERT_TRUE(w.submit(request_of(8, 3), {}).ok());
  poll();  // the first request runs
  ASSERT_TRUE(w.submit(request_of(8, 3), {}).ok());
  poll();  // the second waits for the pass to end

  auto refused = w.submit(request_of(8, 3), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "queue_full");
  EXPECT_EQ(w.in_flight(), 2u);
}

// A Dynamo frontend detokenizes with the model's vocabulary and ends a stream at an EOS id:
// generated ids stay below the model's vocabulary size and never hit the request's EOS ids.
TEST_F(MockWorkerTest, OutputStaysInTheModelsVocabularyAndNeverContainsEosIds) {
  vocab_end_ = 8;
  MockWorker& w = worker();
  GenerationRequest request = request_of(8, 40);
  request.eos_token_ids = {0, 1, 2, 3, 4, 5};  // leaves ids 6 and 7
  std::vector<TokenId> produced;
  GenerationCallbacks callbacks;
  callbacks.on_tokens = [&](const std::vector<TokenId>& tokens) {
    produced.insert(produced.end(), tokens.begin(), tokens.end());
  };
  ASSERT_TRUE(w.submit(std::move(request), std::move(callbacks)).ok());
  poll();
  advance_until_idle();
  ASSERT_EQ(produced.size(), 40u);
  std::set<TokenId> distinct(produced.begin(), produced.end());
  EXPECT_EQ(distinct, (std::set<TokenId>{6, 7}));
}

// A client that hangs up leaves an idle engine: no pass follows to report it, yet a
// scraper must see nothing running and no block in use.
TEST_F(MockWorkerTest, ACancelledRequestLeavesTheGaugesAtZeroWithoutAnotherPass) {
  MockWorker& w = worker();
  auto id = w.submit(request_of(16, 30), {});
  ASSERT_TRUE(id.ok());
  poll();  // the prefill pass runs
  const std::string labels = "{model_name=\"kvmock-model\",worker_id=\"1003\"}";
  ASSERT_EQ(series_value(w.render_metrics(), "vllm:num_requests_running" + labels), "1");
  w.cancel(*id);
  advance_until_idle();
  const std::string text = w.render_metrics();
  EXPECT_EQ(series_value(text, "vllm:num_requests_running" + labels), "0") << text;
  EXPECT_EQ(series_value(text, "vllm:kv_cache_usage_perc" + labels), "0") << text;
}

TEST_F(MockWorkerTest, RequestIdsOfAWorkerAreDistinct) {
  MockWorker& w = worker();
  auto first = w.submit(request_of(8, 3), {});
  auto second = w.submit(request_of(8, 3), {});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*first, *second);
  EXPECT_EQ(w.worker_id(), 1003u);
}

using Seen = testing::RecordedGeneration;

TEST_F(MockWorkerTest, StopEndsTheRequestOnItsRankWithStop) {
  config_.workers.engine.dp_size = 2;
  MockWorker& w = worker();
  Seen seen;
  GenerationRequest request = request_of(8, 40);
  request.dp_rank = 1;  // stop() must find the request on rank 1
  auto id = w.submit(std::move(request), seen.callbacks());
  ASSERT_TRUE(id.ok());
  poll();
  for (int i = 0; i < 50 && seen.tokens.size() < 3; ++i) {
    clock_.advance(microseconds(100));
    timers_.fire_due();
    poll();
  }
  w.stop(*id);
  advance_until_idle();
  ASSERT_TRUE(seen.finish.has_value());
  EXPECT_EQ(seen.finish->finish_reason, "stop");
  EXPECT_LT(seen.finish->completion_tokens, 40u);
  EXPECT_EQ(w.engine(1).stats().engine.active_blocks, 0u);
}

TEST_F(MockWorkerTest, CancelEndsTheRequestWithAbort) {
  MockWorker& w = worker();
  Seen seen;
  auto id = w.submit(request_of(8, 40), seen.callbacks());
  ASSERT_TRUE(id.ok());
  poll();
  w.cancel(*id);
  advance_until_idle();
  ASSERT_TRUE(seen.finish.has_value());
  EXPECT_EQ(seen.finish->finish_reason, "abort");
}

// The same prompt and seed give the same ids on any rank of any worker (vLLM's seed).
TEST_F(MockWorkerTest, ASeededRequestGivesTheSameOutputOnEveryRank) {
  config_.workers.engine.dp_size = 2;
  MockWorker& w = worker();
  Seen on_0, on_1;
  for (auto [rank, seen] : {std::pair<uint32_t, Seen*>{0, &on_0}, {1, &on_1}}) {
    GenerationRequest request = request_of(8, 12);
    request.seed = 2024;
    request.dp_rank = rank;
    ASSERT_TRUE(w.submit(std::move(request), seen->callbacks()).ok());
  }
  poll();
  advance_until_idle();
  ASSERT_EQ(on_0.tokens.size(), 12u);
  EXPECT_EQ(on_0.tokens, on_1.tokens);
}

TEST_F(MockWorkerTest, TheConfiguredOutputLengthDistributionEndsRequestsAtAnEos) {
  config_.workers.engine.output_length.distribution = OutputLengthDistribution::kExponential;
  config_.workers.engine.output_length.mean = 2;
  MockWorker& w = worker();
  std::vector<Seen> seen(8);
  for (Seen& s : seen) ASSERT_TRUE(w.submit(request_of(8, 30), s.callbacks()).ok());
  poll();
  advance_until_idle();
  for (const Seen& s : seen) {
    ASSERT_TRUE(s.finish.has_value());
    EXPECT_EQ(s.finish->finish_reason, "stop");
    EXPECT_LT(s.finish->completion_tokens, 30u);
    EXPECT_EQ(s.finish->completion_tokens, s.tokens.size());
  }
}

// vLLM's request_success_total by finished_reason and the per-request histograms, after a
// request that ran to max_tokens, one stopped (a stop string) and one aborted: each series
// counts each request once, so the counter and the e2e histogram agree.
TEST_F(MockWorkerTest, FinishedRequestsAreCountedByReasonWithTheirHistograms) {
  MockWorker& w = worker();
  Seen length, stopped, aborted;
  ASSERT_TRUE(w.submit(request_of(8, 3), length.callbacks()).ok());
  auto stop_id = w.submit(request_of(12, 40), stopped.callbacks());
  auto abort_id = w.submit(request_of(16, 40), aborted.callbacks());
  ASSERT_TRUE(stop_id.ok() && abort_id.ok());
  poll();
  for (int i = 0; i < 100 && !length.finish; ++i) {
    clock_.advance(microseconds(100));
    timers_.fire_due();
    poll();
  }
  w.stop(*stop_id);
  w.cancel(*abort_id);
  advance_until_idle();
  ASSERT_EQ(w.in_flight(), 0u);

  const std::string text = w.render_metrics();
  const std::string labels = "model_name=\"kvmock-model\",worker_id=\"1003\"";
  auto value = [&](const std::string& series) {
    return series_value(text, series).value_or("missing");
  };
  EXPECT_EQ(value("vllm:request_success_total{" + labels + ",finished_reason=\"length\"}"), "1")
      << text;
  EXPECT_EQ(value("vllm:request_success_total{" + labels + ",finished_reason=\"stop\"}"), "1");
  EXPECT_EQ(value("vllm:request_success_total{" + labels + ",finished_reason=\"abort\"}"), "1");
  for (const char* histogram :
       {"vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
        "vllm:request_inference_time_seconds", "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens", "vllm:request_params_max_tokens"}) {
    EXPECT_EQ(value(std::string(histogram) + "_count{" + labels + "}"), "3") << histogram;
  }
  EXPECT_EQ(value("vllm:request_prompt_tokens_sum{" + labels + "}"), "36");
  EXPECT_EQ(value("vllm:request_params_max_tokens_sum{" + labels + "}"), "83");
  // Token-count buckets are vLLM's 1-2-5 series up to the context length (16 blocks of 4).
  EXPECT_EQ(value("vllm:request_prompt_tokens_bucket{" + labels + ",le=\"10\"}"), "1");
  EXPECT_EQ(value("vllm:request_prompt_tokens_bucket{" + labels + ",le=\"50\"}"), "3");
  EXPECT_FALSE(series_value(text, "vllm:request_prompt_tokens_bucket{" + labels + ",le=\"100\"}"));
  EXPECT_EQ(value("vllm:request_generation_tokens_sum{" + labels + "}"),
            std::to_string(3 + stopped.tokens.size() + aborted.tokens.size()));
  EXPECT_TRUE(series_value(text, "vllm:time_per_output_token_seconds_count{" + labels + "}"));
}

TEST_F(MockWorkerTest, CacheConfigAndLoraInfoGaugesCarryVllmsLabels) {
  config_.workers.engine.dp_size = 2;
  config_.workers.engine.enable_prefix_caching = false;
  const std::string text = worker().render_metrics();
  for (const char* engine : {"0", "1"}) {
    EXPECT_EQ(series_value(text, std::string("vllm:cache_config_info{block_size=\"4\",cache_dtype="
                                             "\"auto\",enable_prefix_caching=\"False\",engine=\"") +
                                     engine +
                                     "\",gpu_memory_utilization=\"0.9\",num_cpu_blocks=\"None\","
                                     "num_gpu_blocks=\"16\",worker_id=\"1003\"}"),
              "1")
        << text;
  }
  const std::string lora =
      "vllm:lora_requests_info{max_lora=\"1\",running_lora_adapters=\"\",waiting_lora_adapters="
      "\"\",worker_id=\"1003\"}";
  const auto updated = series_value(text, lora);
  ASSERT_TRUE(updated.has_value()) << text;
  const double expected =
      std::chrono::duration<double>(clock_.system_now().time_since_epoch()).count();
  EXPECT_NEAR(std::stod(*updated), expected, 1.0);
}

TEST_F(MockWorkerTest, LoraInfoNamesTheRunningAndTheWaitingAdapters) {
  config_.workers.engine.max_loras = 1;
  MockWorker& w = worker();
  GenerationRequest first = request_of(8, 50);
  first.lora_name = "sql";
  first.lora_id = 1;
  GenerationRequest second = request_of(8, 3);
  second.lora_name = "chat";  // one adapter too many for max_loras 1: it waits
  second.lora_id = 2;
  ASSERT_TRUE(w.submit(std::move(first), {}).ok());
  ASSERT_TRUE(w.submit(std::move(second), {}).ok());
  // The figures are the engine's as of its last pass end.
  const std::string both =
      "vllm:lora_requests_info{max_lora=\"1\",running_lora_adapters=\"sql\","
      "waiting_lora_adapters=\"chat\",worker_id=\"1003\"}";
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    poll();
    seen = series_value(w.render_metrics(), both).has_value();
    clock_.advance(microseconds(100));
    timers_.fire_due();
  }
  EXPECT_TRUE(seen) << w.render_metrics();
  advance_until_idle();
  EXPECT_EQ(w.in_flight(), 0u);
  EXPECT_TRUE(series_value(w.render_metrics(),
                           "vllm:lora_requests_info{max_lora=\"1\",running_lora_adapters=\"\","
                           "waiting_lora_adapters=\"\",worker_id=\"1003\"}"));
}

TEST_F(MockWorkerTest, VllmMetricsShowTheFiguresOfTheLastPass) {
  MockWorker& w = worker();
  ASSERT_TRUE(w.submit(request_of(8, 3), {}).ok());
  ASSERT_TRUE(w.submit(request_of(12, 2), {}).ok());
  poll();
  advance_until_idle();
  ASSERT_EQ(w.in_flight(), 0u);

  const std::string text = w.render_metrics();
  const std::string labels = "{model_name=\"kvmock-model\",worker_id=\"1003\"}";
  const std::string length_labels =
      "{model_name=\"kvmock-model\",worker_id=\"1003\",finished_reason=\"length\"}";
  EXPECT_EQ(series_value(text, "vllm:request_success_total" + length_labels), "2") << text;
  EXPECT_EQ(series_value(text, "vllm:prompt_tokens_total" + labels), "20") << text;
  EXPECT_EQ(series_value(text, "vllm:generation_tokens_total" + labels), "5") << text;
  EXPECT_EQ(series_value(text, "vllm:num_requests_running" + labels), "0") << text;
  EXPECT_EQ(series_value(text, "vllm:num_requests_waiting" + labels), "0") << text;
  EXPECT_EQ(text.find("kvmock_g2_"), std::string::npos) << "no G2 tier, no G2 series";
}

TEST_F(MockWorkerTest, AWorkerWithAG2TierAlsoExposesTheG2SeriesPerLink) {
  config_.workers.engine.g2.num_blocks = 8;
  config_.workers.engine.g2.kv_bytes_per_token = 16;
  const std::string text = worker().render_metrics();
  EXPECT_EQ(series_value(text, "kvmock_g2_blocks_capacity{worker_id=\"1003\"}"), "8") << text;
  EXPECT_TRUE(
      series_value(text, "kvmock_g2_transfers_in_flight{worker_id=\"1003\",link=\"offload\"}"))
      << text;
  EXPECT_TRUE(
      series_value(text, "kvmock_g2_transfers_in_flight{worker_id=\"1003\",link=\"onboard\"}"))
      << text;
}

}  // namespace
}  // namespace kvmock
