#include "transport/zmq/zmq_endpoint.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TEST(ZmqEndpointTest, RankZeroKeepsTheEndpointUnchanged) {
  EXPECT_EQ(*offset_endpoint_port("tcp://*:5557", 0), "tcp://*:5557");
  EXPECT_EQ(*offset_endpoint_port("ipc:///tmp/kv", 0), "ipc:///tmp/kv");
}

TEST(ZmqEndpointTest, TcpPortIsOffsetByRank) {
  EXPECT_EQ(*offset_endpoint_port("tcp://10.0.0.7:5557", 3), "tcp://10.0.0.7:5560");
  EXPECT_EQ(*offset_endpoint_port("tcp://*:5558", 1), "tcp://*:5559");
}

TEST(ZmqEndpointTest, OnlyTheTextAfterTheLastColonIsThePort) {
  EXPECT_EQ(*offset_endpoint_port("tcp://[::1]:6000", 2), "tcp://[::1]:6002");
}

TEST(ZmqEndpointTest, PortZeroStaysEphemeralForEveryRank) {
  EXPECT_EQ(*offset_endpoint_port("tcp://127.0.0.1:0", 5), "tcp://127.0.0.1:0");
}

TEST(ZmqEndpointTest, InprocGetsADpSuffix) {
  EXPECT_EQ(*offset_endpoint_port("inproc://kv", 2), "inproc://kv_dp2");
}

TEST(ZmqEndpointTest, EmptyEndpointStaysEmpty) { EXPECT_EQ(*offset_endpoint_port("", 4), ""); }

TEST(ZmqEndpointTest, NonNumericOrMissingPortIsRejected) {
  for (const char* endpoint : {"tcp://host", "tcp://host:", "tcp://host:55x7", "tcp://host:-1",
                               "tcp://host:70000", "tcp://:"}) {
    auto result = offset_endpoint_port(endpoint, 1);
    ASSERT_FALSE(result.ok()) << endpoint;
    EXPECT_EQ(result.error().reason, "bad_endpoint") << endpoint;
  }
}

TEST(ZmqEndpointTest, OtherTransportsCannotBeOffset) {
  auto result = offset_endpoint_port("ipc:///tmp/kv", 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "bad_endpoint");
}

TEST(ZmqEndpointTest, PortPastTheTopOfTheRangeIsRejected) {
  auto result = offset_endpoint_port("tcp://host:65535", 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "bad_port");
}

TEST(ZmqEndpointTest, PortForIndexAddsTheIndexUnlessTheBaseIsEphemeral) {
  EXPECT_EQ(*port_for_index(5557, 0), 5557);
  EXPECT_EQ(*port_for_index(5557, 4), 5561);
  EXPECT_EQ(*port_for_index(0, 4), 0);
  EXPECT_EQ(*port_for_index(65535, 0), 65535);
  auto overflow = port_for_index(65530, 6);
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.error().reason, "bad_port");
}

}  // namespace
}  // namespace kvmock
