// EtcdDiscovery against a real etcd: what a Dynamo frontend would see under v1/ while the
// backend grants, keeps alive, repairs and revokes leases.
#include "transport/dynamo/etcd_discovery.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/etcd_server.h"
#include "tests/support/nats_server.h"

namespace kvmock::dynamo {
namespace {

using testing::EtcdServer;

std::unique_ptr<etcd::EtcdClient> client_for(
    const std::string& endpoint,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  auto client = etcd::EtcdClient::create(etcd::EtcdClientOptions{{endpoint}, timeout});
  EXPECT_TRUE(client.ok()) << client.error().message;
  return client.ok() ? std::move(client).value() : nullptr;
}

std::vector<DiscoveryRecord> records_for(uint64_t id) {
  const std::string hex = [&] {
    char text[17];
    std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(id));
    return std::string(text);
  }();
  return {{"v1/instances/dynamo/backend/generate/" + hex, R"({"type":"Endpoint"})"},
          {"v1/mdc/dynamo/backend/generate/" + hex, R"({"type":"Model"})"}};
}

bool has_line(const MetricsRegistry& metrics, const std::string& line) {
  return metrics.render().find(line + "\n") != std::string::npos;
}

class EtcdDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::etcd_server_available()) << "etcd-server is not installed";
    ASSERT_TRUE(server_.start());
    observer_ = client_for(server_.endpoint());  // the frontend's view
    ASSERT_NE(observer_, nullptr);
  }

  std::unique_ptr<EtcdDiscovery> make_discovery(EtcdDiscoveryOptions options = {}) {
    return std::make_unique<EtcdDiscovery>(client_for(server_.endpoint()), metrics_, options);
  }

  std::vector<etcd::KeyValue> visible() {
    auto listed = observer_->range_prefix("v1/");
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    return listed.ok() ? *listed : std::vector<etcd::KeyValue>{};
  }

  static Clock::SteadyTime now() { return SystemClock::instance().steady_now(); }

  EtcdServer server_;
  std::unique_ptr<etcd::EtcdClient> observer_;
  MetricsRegistry metrics_;
};

TEST_F(EtcdDiscoveryTest, RegisteredRecordsAreVisibleUnderThePrefixAttachedToTheInstanceLease) {
  auto discovery = make_discovery();
  auto id = discovery->allocate_instance_id(now());
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto registered = discovery->register_records(*id, records_for(*id));
  ASSERT_TRUE(registered.ok()) << registered.error().message;

  const auto records = visible();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].key, records_for(*id)[0].key);
  EXPECT_EQ(records[0].value, R"({"type":"Endpoint"})");
  for (const auto& record : records) EXPECT_EQ(static_cast<uint64_t>(record.lease), *id);
  EXPECT_TRUE(has_line(metrics_, R"(kvmock_dynamo_discovery_instances{backend="etcd"} 1)"));
}

TEST_F(EtcdDiscoveryTest, KeepAliveKeepsRecordsPastTheTtlAndTheyExpireWithoutIt) {
  EtcdDiscoveryOptions options;
  options.lease_ttl = std::chrono::seconds(1);
  auto discovery = make_discovery(options);
  auto id = discovery->allocate_instance_id(now());
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(discovery->register_records(*id, records_for(*id)).ok());

  const auto keep_until = now() + std::chrono::milliseconds(3000);  // three TTLs
  while (now() < keep_until) {
    discovery->tick(now());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(visible().size(), 2u);

  // Without ticks the lease ends within its TTL plus etcd's expiry sweep (500 ms).
  const auto give_up = now() + std::chrono::seconds(5);
  while (!visible().empty() && now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(visible().empty());
}

TEST_F(EtcdDiscoveryTest, RemoveRevokesOneInstanceAndItsRecordsAtOnce) {
  auto discovery = make_discovery();
  auto kept = discovery->allocate_instance_id(now());
  auto removed = discovery->allocate_instance_id(now());
  ASSERT_TRUE(kept.ok() && removed.ok());
  ASSERT_NE(*kept, *removed);
  ASSERT_TRUE(discovery->register_records(*kept, records_for(*kept)).ok());
  ASSERT_TRUE(discovery->register_records(*removed, records_for(*removed)).ok());
  ASSERT_EQ(visible().size(), 4u);

  discovery->remove(*removed);
  const auto records = visible();
  ASSERT_EQ(records.size(), 2u);
  for (const auto& record : records) EXPECT_EQ(static_cast<uint64_t>(record.lease), *kept);
  EXPECT_EQ(discovery->live_instances(), 1u);
}

TEST_F(EtcdDiscoveryTest, ALeaseRevokedBehindOurBackIsGrantedAgainWithTheSameIdAndRecords) {
  auto discovery = make_discovery();
  const auto start = now();
  auto id = discovery->allocate_instance_id(start);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(discovery->register_records(*id, records_for(*id)).ok());

  ASSERT_TRUE(observer_->revoke_lease(static_cast<int64_t>(*id)).ok());
  ASSERT_TRUE(visible().empty());

  // The keep-alive falls due at half the TTL; it finds the lease gone and repairs it.
  discovery->tick(start + std::chrono::seconds(5));
  const auto records = visible();
  ASSERT_EQ(records.size(), 2u);
  for (const auto& record : records) EXPECT_EQ(static_cast<uint64_t>(record.lease), *id);
  EXPECT_EQ(discovery->live_instances(), 1u);
  EXPECT_TRUE(
      has_line(metrics_, R"(kvmock_dynamo_discovery_lease_regrants_total{backend="etcd"} 1)"));
  auto ttls = observer_->keep_alive(std::vector<int64_t>{static_cast<int64_t>(*id)});
  ASSERT_TRUE(ttls.ok());
  EXPECT_EQ((*ttls)[0], 10);
}

TEST_F(EtcdDiscoveryTest, RecordsRegisteredInTwoStepsAreAllWrittenAgainAfterARegrant) {
  auto discovery = make_discovery();
  const auto start = now();
  auto id = discovery->allocate_instance_id(start);
  ASSERT_TRUE(id.ok());
  const auto records = records_for(*id);
  ASSERT_TRUE(discovery->register_records(*id, {records[1]}).ok());  // the model card first
  ASSERT_TRUE(discovery->register_records(*id, {records[0]}).ok());
  ASSERT_TRUE(observer_->revoke_lease(static_cast<int64_t>(*id)).ok());
  discovery->tick(start + std::chrono::seconds(5));
  EXPECT_EQ(visible().size(), 2u);
}

TEST_F(EtcdDiscoveryTest, ShutdownRevokesEveryInstance) {
  auto discovery = make_discovery();
  for (int i = 0; i < 3; ++i) {
    auto id = discovery->allocate_instance_id(now());
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(discovery->register_records(*id, records_for(*id)).ok());
  }
  ASSERT_EQ(visible().size(), 6u);
  discovery->shutdown();
  EXPECT_TRUE(visible().empty());
  EXPECT_TRUE(has_line(metrics_, R"(kvmock_dynamo_discovery_instances{backend="etcd"} 0)"));
  EXPECT_FALSE(discovery->allocate_instance_id(now()).ok());
}

TEST_F(EtcdDiscoveryTest, KeepAlivesOfManyInstancesAreBatchedAndBoundedPerTick) {
  EtcdDiscoveryOptions options;
  options.max_keep_alives_per_tick = 40;
  auto discovery = make_discovery(options);
  const auto start = now();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(discovery->allocate_instance_id(start).ok());
  const auto due = start + std::chrono::seconds(5);
  discovery->tick(due);
  discovery->tick(due);
  EXPECT_TRUE(has_line(metrics_,
                       R"(kvmock_dynamo_discovery_etcd_requests_total{operation="keepalive"} 2)"));
  discovery->tick(due);  // the last 20
  discovery->tick(due);  // nothing due any more
  EXPECT_TRUE(has_line(metrics_,
                       R"(kvmock_dynamo_discovery_etcd_requests_total{operation="keepalive"} 3)"));
  EXPECT_EQ(discovery->live_instances(), 100u);
  EXPECT_TRUE(has_line(
      metrics_, R"(kvmock_dynamo_discovery_errors_total{backend="etcd",operation="keepalive"} 0)"))
      << metrics_.render();
}

TEST(EtcdDiscovery, AnUnreachableEtcdGivesAClearErrorAndAMetricWithoutHanging) {
  MetricsRegistry metrics;
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  EtcdDiscovery discovery(client_for(dead, std::chrono::milliseconds(300)), metrics);
  const auto started = std::chrono::steady_clock::now();
  auto id = discovery.allocate_instance_id(SystemClock::instance().steady_now());
  discovery.shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().reason, "unreachable");
  EXPECT_NE(id.error().message.find(dead), std::string::npos) << id.error().message;
  EXPECT_TRUE(has_line(
      metrics, R"(kvmock_dynamo_discovery_errors_total{backend="etcd",operation="grant"} 1)"));
}

TEST_F(EtcdDiscoveryTest, KeepAlivesThatFailWhileEtcdIsDownAreRetriedAndCounted) {
  auto discovery = std::make_unique<EtcdDiscovery>(
      client_for(server_.endpoint(), std::chrono::milliseconds(300)), metrics_);
  const auto start = now();
  auto id = discovery->allocate_instance_id(start);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(discovery->register_records(*id, records_for(*id)).ok());
  server_.stop();
  discovery->tick(start + std::chrono::seconds(5));
  EXPECT_TRUE(has_line(
      metrics_, R"(kvmock_dynamo_discovery_errors_total{backend="etcd",operation="keepalive"} 1)"));
  ASSERT_TRUE(server_.start());                      // same data dir: etcd restores the lease
  discovery->tick(start + std::chrono::seconds(6));  // the retry, one retry_delay later
  EXPECT_TRUE(has_line(
      metrics_, R"(kvmock_dynamo_discovery_errors_total{backend="etcd",operation="keepalive"} 1)"));
  EXPECT_TRUE(has_line(metrics_,
                       R"(kvmock_dynamo_discovery_etcd_requests_total{operation="keepalive"} 2)"));
  EXPECT_EQ(visible().size(), 2u);
}

}  // namespace
}  // namespace kvmock::dynamo
