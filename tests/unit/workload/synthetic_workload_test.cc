#include "core/workload/synthetic_workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace kvmock {
namespace {

std::vector<WorkloadRequest> drain(const SyntheticSpec& spec) {
  auto workload = SyntheticWorkload::create(spec);
  EXPECT_TRUE(workload.ok()) << workload.error().message;
  std::vector<WorkloadRequest> out;
  while (auto r = workload->next()) out.push_back(std::move(*r));
  return out;
}

SyntheticSpec base_spec() {
  SyntheticSpec spec;
  spec.num_requests = 200;
  spec.input = {300, 50};
  spec.output = {40, 10};
  spec.arrival = ArrivalSpec{ArrivalKind::kPoisson, 10, 1, 0};
  spec.seed = 3;
  return spec;
}

size_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

TEST(SyntheticWorkload, ProducesExactlyTheRequestedCountThenStops) {
  SyntheticSpec spec = base_spec();
  auto workload = SyntheticWorkload::create(spec);
  ASSERT_TRUE(workload.ok());
  for (uint64_t i = 0; i < spec.num_requests; ++i) ASSERT_TRUE(workload->next());
  EXPECT_FALSE(workload->next());
  EXPECT_EQ(workload->produced(), spec.num_requests);
}

TEST(SyntheticWorkload, SameSeedGivesTheSameWorkloadAndAnotherSeedDoesNot) {
  const auto a = drain(base_spec());
  const auto b = drain(base_spec());
  SyntheticSpec other = base_spec();
  other.seed = 4;
  const auto c = drain(other);
  ASSERT_EQ(a.size(), b.size());
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt, b[i].prompt);
    EXPECT_EQ(a[i].max_tokens, b[i].max_tokens);
    EXPECT_EQ(a[i].arrival_ms, b[i].arrival_ms);
    if (a[i].prompt != c[i].prompt || a[i].arrival_ms != c[i].arrival_ms) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(SyntheticWorkload, LengthsFollowTheMeanAndStayAtLeastOne) {
  SyntheticSpec spec = base_spec();
  spec.num_requests = 20000;
  spec.input = {500, 100};
  spec.output = {3, 10};  // wide enough that clamping happens often
  const auto requests = drain(spec);
  double input_sum = 0;
  for (const auto& r : requests) {
    input_sum += static_cast<double>(r.prompt.size());
    EXPECT_GE(r.prompt.size(), 1u);
    EXPECT_GE(r.max_tokens, 1u);
  }
  EXPECT_NEAR(input_sum / requests.size(), 500.0, 3.0);
}

TEST(SyntheticWorkload, ZeroStddevGivesExactLengths) {
  SyntheticSpec spec = base_spec();
  spec.input = {64, 0};
  spec.output = {7, 0};
  for (const auto& r : drain(spec)) {
    EXPECT_EQ(r.prompt.size(), 64u);
    EXPECT_EQ(r.max_tokens, 7u);
  }
}

TEST(SyntheticWorkload, RequestsOfAGroupShareTheirPrefixAndOthersShareNothing) {
  SyntheticSpec spec = base_spec();
  spec.num_requests = 60;
  spec.input = {400, 0};
  spec.shared_prefix_ratio = 0.5;
  spec.num_prefix_groups = 3;
  const auto requests = drain(spec);
  // Group requests by their first token (group prefixes differ at position 0 with
  // overwhelming probability; the check below would fail otherwise).
  size_t sharing_pairs = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    for (size_t j = i + 1; j < requests.size(); ++j) {
      const size_t common = common_prefix(requests[i].prompt, requests[j].prompt);
      if (requests[i].prompt[0] == requests[j].prompt[0]) {
        EXPECT_EQ(common, 200u) << i << " " << j;
        ++sharing_pairs;
      } else {
        EXPECT_EQ(common, 0u);
      }
    }
  }
  // 60 requests in 3 groups: at least 3 * C(20 - slack, 2) pairs share.
  EXPECT_GT(sharing_pairs, 400u);
}

TEST(SyntheticWorkload, WithoutSharedPrefixNoTwoPromptsShareABlock) {
  SyntheticSpec spec = base_spec();
  spec.num_requests = 50;
  const auto requests = drain(spec);
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_LT(common_prefix(requests[0].prompt, requests[i].prompt), 4u);
  }
}

TEST(SyntheticWorkload, ArrivalsStartAtZeroAndNeverDecrease) {
  const auto requests = drain(base_spec());
  EXPECT_EQ(requests[0].arrival_ms, 0);
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_GE(requests[i].arrival_ms, requests[i - 1].arrival_ms);
  }
  EXPECT_GT(requests.back().arrival_ms, 0);
}

TEST(SyntheticWorkload, ArrivalSpeedupCompressesTheSchedule) {
  SyntheticSpec spec = base_spec();
  const auto slow = drain(spec);
  spec.arrival_speedup = 4;
  const auto fast = drain(spec);
  EXPECT_NEAR(fast.back().arrival_ms * 4, slow.back().arrival_ms, 1e-6 * slow.back().arrival_ms);
  EXPECT_EQ(fast.back().prompt, slow.back().prompt);
}

TEST(SyntheticWorkload, InvalidSpecsAreRejectedWithAReason) {
  SyntheticSpec spec = base_spec();
  spec.input = {0, 1};
  EXPECT_EQ(SyntheticWorkload::create(spec).error().reason, "bad_synthetic");
  spec = base_spec();
  spec.output.stddev = -1;
  EXPECT_EQ(SyntheticWorkload::create(spec).error().reason, "bad_synthetic");
  spec = base_spec();
  spec.shared_prefix_ratio = 1.5;
  EXPECT_EQ(SyntheticWorkload::create(spec).error().reason, "bad_synthetic");
  spec = base_spec();
  spec.shared_prefix_ratio = 0.5;
  spec.num_prefix_groups = 0;
  EXPECT_EQ(SyntheticWorkload::create(spec).error().reason, "bad_synthetic");
  spec = base_spec();
  spec.arrival.rate = 0;
  EXPECT_EQ(SyntheticWorkload::create(spec).error().reason, "bad_arrival");
  spec = base_spec();
  spec.arrival_speedup = NAN;
  EXPECT_EQ(SyntheticWorkload::create(spec).error().reason, "bad_synthetic");
}

}  // namespace
}  // namespace kvmock
