#include "config/endpoint.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TEST(Endpoint, HostPortSplitsAtTheLastColon) {
  const auto v4 = parse_host_port("127.0.0.1:9090");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9090);
  const auto v6 = parse_host_port("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  // The daemon binds admin.listen with this same parser.
  EXPECT_EQ(parse_host_port("[::1]:80")->host, "::1");
}

TEST(Endpoint, HostPortRejectsMissingPartsAndBadPorts) {
  for (const char* bad : {"", "host", ":80", "host:", "host:65536", "host:-1", "host:+1", "::1:80",
                          "host:http", "[]:80", "h:70000", "localhost"}) {
    EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
  }
}

TEST(Endpoint, ZmqEndpointsAreTcpHostPortOrIpcPath) {
  EXPECT_EQ(check_zmq_endpoint("tcp://10.0.0.1:5557"), "");
  EXPECT_EQ(check_zmq_endpoint("ipc:///tmp/kv.sock"), "");
  EXPECT_NE(check_zmq_endpoint("tcp://10.0.0.1"), "");
  EXPECT_NE(check_zmq_endpoint("ipc://"), "");
  EXPECT_NE(check_zmq_endpoint(""), "");
  EXPECT_EQ(check_optional_zmq_endpoint(""), "");
}

TEST(Endpoint, RedactingAUrlHidesItsPasswordOrTokenOnly) {
  EXPECT_EQ(redact_url_userinfo("nats://user:pass@host:4222"), "nats://user:***@host:4222");
  EXPECT_EQ(redact_url_userinfo("nats://s3cret@host:4222"), "nats://***@host:4222");
  EXPECT_EQ(redact_url_userinfo("nats://u:p@a:1,nats://b:2,tls://t@c"),
            "nats://u:***@a:1,nats://b:2,tls://***@c");
  EXPECT_EQ(redact_url_userinfo("nats://u:p@ss@host"), "nats://u:***@host");
  EXPECT_EQ(redact_url_userinfo("nats://host:4222/path@x"), "nats://host:4222/path@x");
  for (const char* plain : {"", "nats://127.0.0.1:4222", "/etc/creds@x", "a@b", "tcp://h:1"}) {
    EXPECT_EQ(redact_url_userinfo(plain), plain);
  }
}

TEST(Endpoint, NatsUrlsMayBeACommaList) {
  EXPECT_EQ(check_nats_urls("nats://a:4222"), "");
  EXPECT_EQ(check_nats_urls("nats://a:4222,tls://b:4443"), "");
  EXPECT_EQ(check_nats_urls("nats://user:pw@a"), "");
  for (const char* bad : {"", "a:4222", "nats://", "nats://a,", "http://a", "nats://a b"}) {
    EXPECT_NE(check_nats_urls(bad), "") << bad;
  }
}

}  // namespace
}  // namespace kvmock
