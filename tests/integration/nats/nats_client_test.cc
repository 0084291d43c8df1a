#include "transport/nats/nats_client.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/nats_server.h"

namespace kvmock {
namespace {

using testing::NatsServer;

NatsClientOptions options_for(const NatsServer& server) {
  NatsClientOptions options;
  options.urls = {server.url()};
  return options;
}

TEST(NatsClient, ReconnectDelayDoublesFromTenMillisecondsUpToFiveSeconds) {
  EXPECT_EQ(nats_reconnect_delay_ms(1), 10);
  EXPECT_EQ(nats_reconnect_delay_ms(2), 20);
  EXPECT_EQ(nats_reconnect_delay_ms(5), 160);
  EXPECT_EQ(nats_reconnect_delay_ms(10), 5000);
  EXPECT_EQ(nats_reconnect_delay_ms(1000), 5000);
}

TEST(NatsClient, UrlListsAreSplitOnCommas) {
  EXPECT_EQ(split_nats_urls(" nats://a:1, nats://b:2 ,"),
            (std::vector<std::string>{"nats://a:1", "nats://b:2"}));
  EXPECT_TRUE(split_nats_urls("").empty());
}

TEST(NatsClient, ConnectsAndPublishesToARealServer) {
  ASSERT_TRUE(testing::nats_server_available()) << "nats-server is not installed";
  NatsServer server;
  ASSERT_TRUE(server.start());
  auto client = NatsClient::connect(options_for(server));
  ASSERT_TRUE(client.ok()) << client.error().message;
  ASSERT_TRUE((*client)->wait_connected(5000));

  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, (*client)->connection(), "kvmock.test"), NATS_OK);
  const std::vector<uint8_t> body{1, 2, 3};
  ASSERT_TRUE((*client)->publish("kvmock.test", body).ok());
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK);
  EXPECT_EQ(natsMsg_GetDataLength(msg), 3);
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(sub);
}

TEST(NatsClient, StartsBeforeTheServerAndConnectsWhenItAppears) {
  NatsServer server;
  auto client = NatsClient::connect(options_for(server));
  ASSERT_TRUE(client.ok()) << client.error().message;
  EXPECT_FALSE((*client)->connected());
  ASSERT_TRUE(server.start());
  EXPECT_TRUE((*client)->wait_connected(10000));
}

TEST(NatsClient, ReportsTheOutageAndReconnectsAfterARestart) {
  NatsServer server;
  ASSERT_TRUE(server.start());
  auto client = NatsClient::connect(options_for(server));
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->wait_connected(5000));
  server.stop();
  for (int i = 0; i < 500 && (*client)->connected(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*client)->state(), NatsState::kReconnecting);
  ASSERT_TRUE(server.start());
  EXPECT_TRUE((*client)->wait_connected(10000));
  EXPECT_EQ((*client)->reconnects(), 1u);
  EXPECT_GE((*client)->disconnects(), 1u);
}

TEST(NatsClient, AuthenticatesWithUserAndPassword) {
  NatsServer server({"--user", "router", "--pass", "s3cret"});
  ASSERT_TRUE(server.start());
  NatsClientOptions options = options_for(server);
  options.user = "router";
  options.password = "s3cret";
  auto client = NatsClient::connect(options);
  ASSERT_TRUE(client.ok()) << client.error().message;
  EXPECT_TRUE((*client)->wait_connected(5000));
  EXPECT_TRUE((*client)->publish("kvmock.auth", std::vector<uint8_t>{1}).ok());
}

TEST(NatsClient, AuthenticatesWithAToken) {
  NatsServer server({"--auth", "t0ken"});
  ASSERT_TRUE(server.start());
  NatsClientOptions options = options_for(server);
  options.token = "t0ken";
  auto client = NatsClient::connect(options);
  ASSERT_TRUE(client.ok()) << client.error().message;
  EXPECT_TRUE((*client)->wait_connected(5000));
}

// nats.c gives up on authentication failures instead of retrying forever.
TEST(NatsClient, AWrongPasswordClosesTheConnectionWithAReason) {
  NatsServer server({"--user", "router", "--pass", "s3cret"});
  ASSERT_TRUE(server.start());
  NatsClientOptions options = options_for(server);
  options.user = "router";
  options.password = "wrong";
  auto client = NatsClient::connect(options);
  ASSERT_TRUE(client.ok()) << client.error().message;
  EXPECT_FALSE((*client)->wait_connected(5000));
  EXPECT_EQ((*client)->state(), NatsState::kClosed);
  EXPECT_FALSE((*client)->close_reason().empty());
}

TEST(NatsClient, UnreadableCredentialsOrSeedFilesAreAnErrorAtOnce) {
  NatsClientOptions credentials;
  credentials.credentials_file = "/nonexistent/kvmock.creds";
  auto client = NatsClient::connect(credentials);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().message,
            "cannot read /nonexistent/kvmock.creds: No such file or directory");
  NatsClientOptions seed;
  seed.nkey_seed_file = "/nonexistent/kvmock.nk";
  client = NatsClient::connect(seed);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().message,
            "cannot read /nonexistent/kvmock.nk: No such file or directory");
}

}  // namespace
}  // namespace kvmock
