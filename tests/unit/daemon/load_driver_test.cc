#include "daemon/load_driver.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/support/manual_clock.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;

// A worker that records what it is given and answers on the test's command.
class FakeBackend final : public WorkerBackend {
 public:
  explicit FakeBackend(uint64_t id) : id_(id) {}

  Result<uint64_t> submit(GenerationRequest request, GenerationCallbacks callbacks) override {
    if (refuse_) return make_error("queue_full", "full");
    requests.push_back(std::move(request));
    callbacks_.push_back(std::move(callbacks));
    return requests.size();
  }
  void cancel(uint64_t) override {}
  void stop(uint64_t) override {}
  bool ready() const override { return true; }
  uint64_t worker_id() const override { return id_; }
  const std::string& model_name() const override { return name_; }
  std::string render_metrics() const override { return {}; }

  void refuse() { refuse_ = true; }
  // Sends request `index` one token, then finishes it with `reason`.
  void answer(size_t index, const std::string& reason = "length") {
    callbacks_.at(index).on_tokens({1});
    GenerationFinish finish;
    finish.finish_reason = reason;
    callbacks_.at(index).on_finish(finish);
  }

  std::vector<GenerationRequest> requests;

 private:
  const uint64_t id_;
  const std::string name_ = "fake";
  bool refuse_ = false;
  std::vector<GenerationCallbacks> callbacks_;
};

LoadDriverConfig load_config(double requests_per_s) {
  LoadDriverConfig config;
  config.enabled = true;
  config.requests_per_s = requests_per_s;
  config.input_tokens = 32;
  config.output_tokens = 4;
  config.seed = 7;
  return config;
}

TEST(LoadDriver, IssuesTheConfiguredRequestRateSpreadRoundRobin) {
  test::ManualClock clock;
  FakeBackend a(1), b(2);
  LoadDriver driver(load_config(50), {&a, &b}, clock);  // 100 requests/s in all
  ASSERT_TRUE(driver.begin().ok());
  for (int step = 0; step < 1000; ++step) {  // 10 s of simulated time
    clock.advance(milliseconds(10));
    driver.issue_due();
  }
  const size_t issued = a.requests.size() + b.requests.size();
  // Poisson arrivals: 1,000 expected, within five standard deviations (±158).
  EXPECT_GT(issued, 842u);
  EXPECT_LT(issued, 1158u);
  EXPECT_LE(a.requests.size() - b.requests.size(), 1u);
  EXPECT_EQ(a.requests.front().prompt.size(), 32u);
  EXPECT_EQ(a.requests.front().max_tokens, 4u);
  EXPECT_EQ(driver.take_window().submitted, issued);
}

TEST(LoadDriver, NoRequestIsIssuedBeforeItsArrival) {
  test::ManualClock clock;
  FakeBackend a(1);
  LoadDriver driver(load_config(10), {&a}, clock);
  ASSERT_TRUE(driver.begin().ok());
  const Clock::SteadyTime next = driver.issue_due();  // the first arrives at once
  ASSERT_EQ(a.requests.size(), 1u);
  ASSERT_GT(next, clock.steady_now());

  clock.advance(next - clock.steady_now() - std::chrono::nanoseconds(1));
  EXPECT_EQ(driver.issue_due(), next);
  EXPECT_EQ(a.requests.size(), 1u);
  clock.advance(std::chrono::nanoseconds(1));
  driver.issue_due();
  EXPECT_GE(a.requests.size(), 2u);
}

TEST(LoadDriver, TimeToFirstTokenIsMeasuredOnTheDriversClock) {
  test::ManualClock clock;
  FakeBackend a(1);
  LoadDriver driver(load_config(10), {&a}, clock);
  ASSERT_TRUE(driver.begin().ok());
  driver.issue_due();
  ASSERT_EQ(a.requests.size(), 1u);
  EXPECT_EQ(driver.in_flight(), 1u);

  clock.advance(milliseconds(5));
  a.answer(0);
  const LoadWindow window = driver.take_window();
  ASSERT_EQ(window.ttft_ms.size(), 1u);
  EXPECT_DOUBLE_EQ(window.ttft_ms[0], 5.0);
  EXPECT_EQ(window.completed, 1u);
  EXPECT_EQ(driver.in_flight(), 0u);
}

// With workers.engine.output_length an EOS ends requests with "stop": completed all the
// same; an aborted one is not.
TEST(LoadDriver, RequestsEndedByAnEosCountAsCompletedAndAbortedOnesDoNot) {
  test::ManualClock clock;
  FakeBackend a(1);
  LoadDriver driver(load_config(1000), {&a}, clock);
  ASSERT_TRUE(driver.begin().ok());
  for (int i = 0; i < 100 && a.requests.size() < 2; ++i) {
    clock.advance(milliseconds(10));
    driver.issue_due();
  }
  ASSERT_GE(a.requests.size(), 2u);
  a.answer(0, "stop");
  a.answer(1, "abort");
  EXPECT_EQ(driver.take_window().completed, 1u);
}

TEST(LoadDriver, RefusedRequestsAreCountedAndNotLeftInFlight) {
  test::ManualClock clock;
  FakeBackend a(1);
  a.refuse();
  LoadDriver driver(load_config(100), {&a}, clock);
  ASSERT_TRUE(driver.begin().ok());
  clock.advance(std::chrono::seconds(1));
  driver.issue_due();
  const LoadWindow window = driver.take_window();
  EXPECT_GT(window.rejected, 50u);
  EXPECT_EQ(window.submitted, 0u);
  EXPECT_EQ(driver.in_flight(), 0u);
}

TEST(LoadDriver, RefusesToBeginWithoutWorkers) {
  test::ManualClock clock;
  LoadDriver driver(load_config(10), {}, clock);
  auto begun = driver.begin();
  ASSERT_FALSE(begun.ok());
  EXPECT_EQ(begun.error().reason, "config");
}

}  // namespace
}  // namespace kvmock
