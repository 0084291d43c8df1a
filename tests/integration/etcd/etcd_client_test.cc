#include "transport/etcd/etcd_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "tests/support/etcd_server.h"
#include "tests/support/nats_server.h"

namespace kvmock::etcd {
namespace {

using testing::EtcdServer;

std::unique_ptr<EtcdClient> client_for(const std::vector<std::string>& endpoints) {
  auto client = EtcdClient::create(EtcdClientOptions{endpoints, std::chrono::milliseconds(1000)});
  EXPECT_TRUE(client.ok()) << client.error().message;
  return client.ok() ? std::move(client).value() : nullptr;
}

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::etcd_server_available()) << "etcd-server is not installed";
    ASSERT_TRUE(server_.start());
    client_ = client_for({server_.endpoint()});
    ASSERT_NE(client_, nullptr);
  }
  EtcdServer server_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdClientTest, CreateIfAbsentWritesOnceAndAttachesTheLease) {
  auto lease = client_->grant_lease(std::chrono::seconds(10));
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  EXPECT_GT(lease->id, 0);
  EXPECT_EQ(lease->ttl_seconds, 10);

  auto created = client_->create_if_absent("v1/instances/a/b", R"({"x":1})", lease->id);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(*created);
  auto again = client_->create_if_absent("v1/instances/a/b", R"({"x":2})", lease->id);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(*again);

  auto listed = client_->range_prefix("v1/instances/");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "v1/instances/a/b");
  EXPECT_EQ((*listed)[0].value, R"({"x":1})");  // not overwritten
  EXPECT_EQ((*listed)[0].lease, lease->id);
}

TEST_F(EtcdClientTest, RangeCoversThePrefixOnly) {
  ASSERT_TRUE(client_->create_if_absent("v1/mdc/x", "1", 0).ok());
  ASSERT_TRUE(client_->create_if_absent("v1/mdc/y", "2", 0).ok());
  ASSERT_TRUE(client_->create_if_absent("v1/mdd", "3", 0).ok());
  auto listed = client_->range_prefix("v1/mdc/");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].key, "v1/mdc/y");

  auto deleted = client_->delete_prefix("v1/mdc/");
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(*deleted, 2);
  EXPECT_TRUE(client_->range_prefix("v1/mdc/")->empty());
  EXPECT_EQ(client_->range_prefix("v1/mdd")->size(), 1u);
}

TEST_F(EtcdClientTest, KeepAliveRenewsManyLeasesInOneRequestAndReportsUnknownOnes) {
  auto first = client_->grant_lease(std::chrono::seconds(5));
  auto second = client_->grant_lease(std::chrono::seconds(7));
  ASSERT_TRUE(first.ok() && second.ok());
  const std::vector<int64_t> ids{first->id, 424242, second->id};
  auto ttls = client_->keep_alive(ids);
  ASSERT_TRUE(ttls.ok()) << ttls.error().message;
  EXPECT_EQ(*ttls, (std::vector<int64_t>{5, 0, 7}));
}

TEST_F(EtcdClientTest, AKeepAliveOfHundredsOfLeasesAnswersEveryOne) {
  // etcd 3.4's gateway cuts a long keep-alive stream short; the client asks again for the rest.
  std::vector<int64_t> ids;
  for (int i = 0; i < 300; ++i) {
    auto lease = client_->grant_lease(std::chrono::seconds(10));
    ASSERT_TRUE(lease.ok()) << lease.error().message;
    ids.push_back(lease->id);
  }
  ids.push_back(424242);  // unknown: answered with no TTL
  auto ttls = client_->keep_alive(ids);
  ASSERT_TRUE(ttls.ok()) << ttls.error().message;
  ASSERT_EQ(ttls->size(), ids.size());
  EXPECT_EQ(std::count(ttls->begin(), ttls->end(), 10), 300);
  EXPECT_EQ(ttls->back(), 0);
}

TEST_F(EtcdClientTest, RevokeDeletesTheLeaseKeysAndAnUnknownLeaseIsNotFound) {
  auto lease = client_->grant_lease(std::chrono::seconds(10));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(client_->create_if_absent("k/1", "v", lease->id).ok());
  auto revoked = client_->revoke_lease(lease->id);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_TRUE(client_->range_prefix("k/")->empty());

  auto unknown = client_->revoke_lease(lease->id);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().reason, "not_found");
  EXPECT_NE(unknown.error().message.find("lease not found"), std::string::npos)
      << unknown.error().message;
}

TEST_F(EtcdClientTest, GrantingATakenLeaseIdIsAFailedPrecondition) {
  auto lease = client_->grant_lease(std::chrono::seconds(10), 777);
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  EXPECT_EQ(lease->id, 777);
  auto taken = client_->grant_lease(std::chrono::seconds(10), 777);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().reason, "failed_precondition");
  EXPECT_NE(taken.error().message.find("lease already exists"), std::string::npos);
}

TEST_F(EtcdClientTest, PutWithAnUnknownLeaseIsAGatewayErrorWithEtcdsMessage) {
  auto result = client_->create_if_absent("k/2", "v", 99999);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("requested lease not found"), std::string::npos)
      << result.error().message;
}

TEST_F(EtcdClientTest, ADeadFirstEndpointFallsThroughToTheNext) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  auto client = client_for({dead, server_.endpoint()});
  ASSERT_NE(client, nullptr);
  auto lease = client->grant_lease(std::chrono::seconds(10));
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  auto ttls = client->keep_alive(std::vector<int64_t>{lease->id});
  ASSERT_TRUE(ttls.ok()) << ttls.error().message;
}

TEST_F(EtcdClientTest, KeptAliveConnectionSurvivesAServerRestart) {
  ASSERT_TRUE(client_->range_prefix("a").ok());
  server_.stop();
  ASSERT_TRUE(server_.start());
  auto listed = client_->range_prefix("a");
  EXPECT_TRUE(listed.ok()) << listed.error().message;
}

TEST(EtcdClient, UnreachableEndpointsFailInBoundedTimeNamingEachEndpoint) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  auto client = EtcdClient::create(EtcdClientOptions{{dead}, std::chrono::milliseconds(300)});
  ASSERT_TRUE(client.ok());
  const auto started = std::chrono::steady_clock::now();
  auto lease = (*client)->grant_lease(std::chrono::seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.error().reason, "unreachable");
  EXPECT_NE(lease.error().message.find(dead), std::string::npos) << lease.error().message;
}

TEST(EtcdClient, AServerThatNeverAnswersTimesOut) {
  // A listening socket nobody accepts from: the connect succeeds (backlog) but no answer
  // ever comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string silent = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto client = EtcdClient::create(EtcdClientOptions{{silent}, std::chrono::milliseconds(300)});
  ASSERT_TRUE(client.ok());
  const auto started = std::chrono::steady_clock::now();
  auto ttls = (*client)->keep_alive(std::vector<int64_t>{1});
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ::close(fd);
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  ASSERT_FALSE(ttls.ok());
  EXPECT_EQ(ttls.error().reason, "unreachable");
  EXPECT_NE(ttls.error().message.find("no answer within 300 ms"), std::string::npos)
      << ttls.error().message;
}

TEST(EtcdClient, OnlyPlainHttpEndpointsAreAccepted) {
  auto https =
      EtcdClient::create(EtcdClientOptions{{"https://etcd:2379"}, std::chrono::seconds(1)});
  ASSERT_FALSE(https.ok());
  EXPECT_EQ(https.error().reason, "config");
  EXPECT_NE(https.error().message.find("https is not supported"), std::string::npos);
  EXPECT_FALSE(EtcdClient::create(EtcdClientOptions{{"etcd:2379"}, std::chrono::seconds(1)}).ok());
  EXPECT_FALSE(EtcdClient::create(EtcdClientOptions{{}, std::chrono::seconds(1)}).ok());
  EXPECT_FALSE(
      EtcdClient::create(EtcdClientOptions{{"http://etcd:99999"}, std::chrono::seconds(1)}).ok());
  EXPECT_TRUE(EtcdClient::create(EtcdClientOptions{{"http://etcd"}, std::chrono::seconds(1)}).ok());
  EXPECT_TRUE(
      EtcdClient::create(EtcdClientOptions{{"http://[::1]:2379/"}, std::chrono::seconds(1)}).ok());
}

}  // namespace
}  // namespace kvmock::etcd
