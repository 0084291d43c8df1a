#include "transport/http/admin_endpoints.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/loopback_http_server.h"

namespace kvmock {
namespace {

using testing::http_request;

class AdminEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = *server_.start([this](std::shared_ptr<HttpExchange> e) { admin_.handle(e); });
  }
  void TearDown() override { server_.stop(); }

  MetricsRegistry metrics_;
  AdminEndpoints admin_{metrics_};
  testing::LoopbackHttpServer server_;
  uint16_t port_ = 0;
};

TEST_F(AdminEndpointsTest, MetricsAreServedInPrometheusTextFormat) {
  metrics_.counter("kvmock_test_total", "A test counter.").inc(5);
  const auto result = http_request(port_, "GET", "/metrics");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(result.body.find("kvmock_test_total 5\n"), std::string::npos);
}

TEST_F(AdminEndpointsTest, HealthIsAlwaysOk) {
  EXPECT_EQ(http_request(port_, "GET", "/health").status, 200);
  admin_.set_shutting_down();
  EXPECT_EQ(http_request(port_, "GET", "/health").status, 200);
}

TEST_F(AdminEndpointsTest, ReadyNamesTheChecksThatFail) {
  bool nats_up = false;
  admin_.add_readiness_check({"nats", [&nats_up](std::string& reason) {
                                if (!nats_up) reason = "reconnecting";
                                return nats_up;
                              }});
  auto result = http_request(port_, "GET", "/ready");
  EXPECT_EQ(result.status, 503);
  EXPECT_EQ(result.body,
            R"({"ready":false,"not_ready":[{"check":"nats","reason":"reconnecting"}]})");
  nats_up = true;
  result = http_request(port_, "GET", "/ready");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, R"({"ready":true,"not_ready":[]})");
  admin_.set_shutting_down();
  EXPECT_EQ(http_request(port_, "GET", "/ready").status, 503);
}

TEST_F(AdminEndpointsTest, UnknownPathsAndMethodsAreRejected) {
  EXPECT_EQ(http_request(port_, "GET", "/nope").status, 404);
  EXPECT_EQ(http_request(port_, "POST", "/metrics").status, 405);
}

}  // namespace
}  // namespace kvmock
