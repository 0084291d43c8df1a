// EtcdDiscovery's scheduling against a scripted etcd: which calls it makes, when, and how
// many per tick. The real gateway is exercised in tests/integration/etcd/.
#include "transport/dynamo/etcd_discovery.h"

#include <gtest/gtest.h>

#include "tests/support/manual_clock.h"

namespace kvmock::dynamo {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Answers like a healthy etcd unless told otherwise; records every call.
class ScriptedEtcd final : public etcd::EtcdClient {
 public:
  explicit ScriptedEtcd(test::ManualClock& clock) : clock_(clock) {}

  Result<etcd::LeaseGrant> grant_lease(seconds ttl, int64_t requested_id) override {
    ++grants;
    if (unreachable) return make_error("unreachable", "scripted outage");
    return etcd::LeaseGrant{requested_id != 0 ? requested_id : next_id++, ttl.count()};
  }
  Result<std::vector<int64_t>> keep_alive(std::span<const int64_t> ids) override {
    keep_alive_batches.push_back(ids.size());
    if (unreachable) return make_error("unreachable", "scripted outage");
    return std::vector<int64_t>(ids.size(), leases_lost ? 0 : 10);
  }
  Result<bool> revoke_lease(int64_t) override {
    ++revokes;
    clock_.advance(revoke_takes);
    if (unreachable) return make_error("unreachable", "scripted outage");
    return true;
  }
  Result<bool> create_if_absent(std::string_view, std::string_view, int64_t) override {
    ++writes;
    if (unreachable) return make_error("unreachable", "scripted outage");
    return true;
  }
  Result<std::vector<etcd::KeyValue>> range_prefix(std::string_view) override {
    return std::vector<etcd::KeyValue>{};
  }
  Result<int64_t> delete_prefix(std::string_view) override { return int64_t{0}; }

  bool unreachable = false;
  bool leases_lost = false;
  milliseconds revoke_takes{0};
  int grants = 0, revokes = 0, writes = 0;
  std::vector<size_t> keep_alive_batches;

 private:
  test::ManualClock& clock_;
  int64_t next_id = 100;
};

class EtcdDiscoverySchedulingTest : public ::testing::Test {
 protected:
  EtcdDiscovery& make(EtcdDiscoveryOptions options = {}) {
    auto etcd = std::make_unique<ScriptedEtcd>(clock_);
    etcd_ = etcd.get();
    discovery_ = std::make_unique<EtcdDiscovery>(std::move(etcd), metrics_, options, clock_);
    return *discovery_;
  }
  void allocate(EtcdDiscovery& discovery, int count) {
    for (int i = 0; i < count; ++i) {
      auto id = discovery.allocate_instance_id(clock_.steady_now());
      ASSERT_TRUE(id.ok());
      ASSERT_TRUE(discovery
                      .register_records(*id, {{"v1/instances/a/" + std::to_string(*id), "{}"},
                                              {"v1/mdc/a/" + std::to_string(*id), "{}"}})
                      .ok());
    }
  }

  test::ManualClock clock_;
  MetricsRegistry metrics_;
  ScriptedEtcd* etcd_ = nullptr;
  std::unique_ptr<EtcdDiscovery> discovery_;
};

TEST_F(EtcdDiscoverySchedulingTest, NoKeepAliveIsSentBeforeHalfTheTtlHasPassed) {
  EtcdDiscovery& discovery = make();
  allocate(discovery, 3);
  discovery.tick(clock_.steady_now() + milliseconds(4999));
  EXPECT_TRUE(etcd_->keep_alive_batches.empty());
  discovery.tick(clock_.steady_now() + seconds(5));
  EXPECT_EQ(etcd_->keep_alive_batches, std::vector<size_t>{3});
  discovery.tick(clock_.steady_now() + seconds(9));  // renewed at 5 s: next due at 10 s
  EXPECT_EQ(etcd_->keep_alive_batches.size(), 1u);
}

TEST_F(EtcdDiscoverySchedulingTest, LostLeasesAreRepairedAtMostEightPerTick) {
  EtcdDiscovery& discovery = make();
  allocate(discovery, 20);
  etcd_->leases_lost = true;
  const auto due = clock_.steady_now() + seconds(5);
  etcd_->grants = 0;
  etcd_->writes = 0;
  discovery.tick(due);
  EXPECT_EQ(etcd_->grants, 8);
  EXPECT_EQ(etcd_->writes, 16);  // both records of each repaired instance
  EXPECT_EQ(discovery.live_instances(), 8u);
  discovery.tick(due);
  discovery.tick(due);
  EXPECT_EQ(etcd_->grants, 20);
  EXPECT_EQ(discovery.live_instances(), 20u);
  EXPECT_NE(
      metrics_.render().find("kvmock_dynamo_discovery_lease_regrants_total{backend=\"etcd\"} 20\n"),
      std::string::npos);
}

TEST_F(EtcdDiscoverySchedulingTest, ARepairThatFailsIsRetriedAfterTheRetryDelay) {
  EtcdDiscovery& discovery = make();
  allocate(discovery, 1);
  etcd_->leases_lost = true;
  const auto due = clock_.steady_now() + seconds(5);
  discovery.tick(due);  // lost, repaired at once
  etcd_->unreachable = true;
  etcd_->grants = 0;
  discovery.tick(due + seconds(5));  // keep-alive fails: retried after 1 s, no repair
  EXPECT_EQ(etcd_->grants, 0);
  etcd_->unreachable = false;
  discovery.tick(due + milliseconds(5500));
  EXPECT_EQ(etcd_->keep_alive_batches.size(), 2u);
  discovery.tick(due + seconds(6));  // the retry finds the lease lost and repairs it
  EXPECT_EQ(etcd_->grants, 1);
  EXPECT_EQ(discovery.live_instances(), 1u);
}

TEST_F(EtcdDiscoverySchedulingTest, ShutdownStopsAtTheFirstUnreachableRevoke) {
  EtcdDiscovery& discovery = make();
  allocate(discovery, 50);
  etcd_->unreachable = true;
  discovery.shutdown();
  EXPECT_EQ(etcd_->revokes, 1);
  EXPECT_EQ(discovery.live_instances(), 0u);
}

TEST_F(EtcdDiscoverySchedulingTest, ShutdownStopsRevokingWhenItsBudgetIsSpent) {
  EtcdDiscoveryOptions options;
  options.shutdown_budget = milliseconds(3000);
  EtcdDiscovery& discovery = make(options);
  allocate(discovery, 50);
  etcd_->revoke_takes = milliseconds(1000);  // a slow but answering etcd
  discovery.shutdown();
  EXPECT_EQ(etcd_->revokes, 3);
}

}  // namespace
}  // namespace kvmock::dynamo
