#include "transport/http/admin_endpoints.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "config/admin_token.h"
#include "tests/integration/http/raw_connection.h"
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

// One request with an optional Authorization header; the raw response.
std::string admin_get(uint16_t port, const std::string& path, const std::string& authorization) {
  testing::RawConnection client(port);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  if (!authorization.empty()) request += "Authorization: " + authorization + "\r\n";
  client.send(request + "\r\n");
  return client.read_until_close(std::chrono::seconds(5));
}

TEST_F(AdminEndpointsTest, WithATokenOnlyTheProbesAnswerWithoutIt) {
  admin_.set_auth_token("s3cret-token");
  const std::string missing = admin_get(port_, "/metrics", "");
  EXPECT_EQ(missing.rfind("HTTP/1.1 401", 0), 0u) << missing;
  EXPECT_NE(missing.find("WWW-Authenticate: Bearer realm=\"kvmockd\"\r\n"), std::string::npos);
  EXPECT_NE(missing.find(R"({"error":"missing bearer token)"), std::string::npos) << missing;
  EXPECT_EQ(missing.find("s3cret-token"), std::string::npos);

  const std::string wrong = admin_get(port_, "/metrics", "Bearer s3cret-tokeN");
  EXPECT_EQ(wrong.rfind("HTTP/1.1 401", 0), 0u) << wrong;
  EXPECT_NE(wrong.find(R"(error="invalid_token")"), std::string::npos) << wrong;
  EXPECT_EQ(admin_get(port_, "/metrics", "Basic s3cret-token").rfind("HTTP/1.1 401", 0), 0u);
  EXPECT_EQ(admin_get(port_, "/metrics", "Bearer s3cret").rfind("HTTP/1.1 401", 0), 0u);
  EXPECT_EQ(admin_get(port_, "/nope", "").rfind("HTTP/1.1 401", 0), 0u);  // no path probing

  const std::string right = admin_get(port_, "/metrics", "Bearer s3cret-token");
  EXPECT_EQ(right.rfind("HTTP/1.1 200", 0), 0u) << right;
  EXPECT_NE(right.find("kvmock_admin_unauthorized_total 5\n"), std::string::npos) << right;
  EXPECT_EQ(admin_get(port_, "/metrics", "bearer  s3cret-token ").rfind("HTTP/1.1 200", 0), 0u);

  for (const std::string probe : {"/health", "/healthz", "/ready", "/readyz"}) {
    EXPECT_EQ(admin_get(port_, probe, "").rfind("HTTP/1.1 200", 0), 0u) << probe;
  }
}

TEST_F(AdminEndpointsTest, WithoutATokenEverythingIsOpen) {
  admin_.set_auth_token("");
  EXPECT_EQ(http_request(port_, "GET", "/metrics").status, 200);
  EXPECT_EQ(metrics_.render().find("kvmock_admin_unauthorized_total"), std::string::npos);
}

// Two workers, 1 and 2, whose crashes and restarts are recorded (a restart gives id + 10).
class FakeWorkers final : public WorkerControl {
 public:
  std::vector<WorkerStatus> workers() const override { return statuses; }
  WorkerFaults* faults(uint64_t worker_id) override {
    for (size_t i = 0; i < statuses.size(); ++i) {
      if (statuses[i].worker_id == worker_id && statuses[i].running) return &settings[i];
    }
    return nullptr;
  }
  Result<WorkerStatus> crash(uint64_t worker_id) override {
    calls.push_back("crash " + std::to_string(worker_id));
    if (!next_error.reason.empty()) return next_error;
    for (WorkerStatus& status : statuses) {
      if (status.worker_id == worker_id) status.running = false;
    }
    return WorkerStatus{worker_id, false, 0};
  }
  Result<WorkerStatus> restart(uint64_t worker_id) override {
    calls.push_back("restart " + std::to_string(worker_id));
    if (!next_error.reason.empty()) return next_error;
    return WorkerStatus{worker_id + 10, true, 0};
  }

  std::vector<WorkerStatus> statuses{{1, true, 8100}, {2, true, 8101}};
  WorkerFaults settings[2] = {WorkerFaults(0, 1), WorkerFaults(0, 2)};
  std::vector<std::string> calls;
  Error next_error{"", ""};
};

TEST_F(AdminEndpointsTest, WorkerEndpointsDecodeOnlyWhatTheyMean) {
  EXPECT_EQ(http_request(port_, "GET", "/admin/workers").status, 404) << "no workers yet";
  FakeWorkers workers;
  admin_.set_worker_control(&workers);
  const auto listed = http_request(port_, "GET", "/admin/workers");
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body, R"({"workers":[{"worker_id":1,"state":"running","http_port":8100},)"
                         R"({"worker_id":2,"state":"running","http_port":8101}]})");
  for (const std::string path :
       {"/admin/workers/", "/admin/workers//crash", "/admin/workers/-1/crash",
        "/admin/workers/+1/crash", "/admin/workers/18446744073709551616/crash",
        "/admin/workers/01x/crash", "/admin/workers/3/crash", "/admin/workers/1/crash/again",
        "/admin/workers/1/", "/admin/workers/1"}) {
    const auto answer = http_request(port_, "POST", path);
    EXPECT_EQ(answer.status, 404) << path << " " << answer.body;
    EXPECT_NE(answer.body.find(R"("error":{)"), std::string::npos) << path;
  }
  for (const std::string body : {"", "[]", "{", "null", R"({"failure_injection_rate":"x"})",
                                 R"({"failure_injection_rate":101})"}) {
    const auto answer = http_request(port_, "POST", "/admin/workers/config", body);
    EXPECT_EQ(answer.status, 400) << body << " " << answer.body;
  }
  EXPECT_EQ(workers.settings[0].settings(), FaultSettings{}) << "a bad patch changed a worker";
  EXPECT_EQ(workers.settings[1].settings(), FaultSettings{});
  EXPECT_TRUE(workers.calls.empty()) << workers.calls.front();

  EXPECT_EQ(http_request(port_, "POST", "/admin/workers/2/crash").status, 200);
  const auto all = http_request(port_, "POST", "/admin/workers/config", R"({"jitter":0.5})");
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(all.body.find(R"("2")"), std::string::npos) << "a crashed worker is left out";
  EXPECT_EQ(workers.settings[0].settings().jitter, 0.5);
  EXPECT_EQ(workers.settings[1].settings().jitter, 0) << all.body;
  EXPECT_EQ(http_request(port_, "GET", "/admin/workers/2/config").status, 409);
  const auto restarted = http_request(port_, "POST", "/admin/workers/2/restart");
  EXPECT_EQ(restarted.status, 200);
  EXPECT_EQ(restarted.body, R"({"worker_id":12,"state":"running","http_port":0})");
  workers.next_error = Error{"conflict", "worker 1 is crashed already"};
  const auto conflict = http_request(port_, "POST", "/admin/workers/1/crash");
  EXPECT_EQ(conflict.status, 409);
  EXPECT_NE(conflict.body.find("crashed already"), std::string::npos);
  workers.next_error = Error{"discovery", "etcd is away"};
  EXPECT_EQ(http_request(port_, "POST", "/admin/workers/1/restart").status, 500);
  EXPECT_EQ(workers.calls,
            (std::vector<std::string>{"crash 2", "restart 2", "crash 1", "restart 1"}));
  admin_.set_worker_control(nullptr);
}

TEST_F(AdminEndpointsTest, WorkerEndpointsNeedTheToken) {
  FakeWorkers workers;
  admin_.set_worker_control(&workers);
  admin_.set_auth_token("s3cret-token");
  EXPECT_EQ(http_request(port_, "POST", "/admin/workers/1/crash").status, 401);
  EXPECT_EQ(http_request(port_, "POST", "/admin/workers/config", R"({"jitter":1})").status, 401);
  EXPECT_TRUE(workers.calls.empty());
  EXPECT_EQ(workers.settings[0].settings().jitter, 0);
  const auto allowed = http_request(port_, "POST", "/admin/workers/1/crash", "",
                                    {{"Authorization", "Bearer s3cret-token"}});
  EXPECT_EQ(allowed.status, 200) << allowed.body;
  admin_.set_worker_control(nullptr);
}

TEST(AdminToken, ComparisonIsExact) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abd", "abc"));
  EXPECT_FALSE(constant_time_equal("ab", "abc"));
  EXPECT_FALSE(constant_time_equal("abcd", "abc"));
  EXPECT_FALSE(constant_time_equal("", "abc"));
  EXPECT_FALSE(constant_time_equal(std::string("ab\0", 3), "ab"));
}

TEST(AdminToken, ComesFromTheConfigOrATrimmedFile) {
  AdminConfig admin;
  EXPECT_EQ(*resolve_admin_token(admin), "");
  admin.auth_token = "inline";
  EXPECT_EQ(*resolve_admin_token(admin), "inline");

  char path[] = "/tmp/kvmock-admin-token-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "  from-file\n";
  admin = AdminConfig{};
  admin.auth_token_file = path;
  EXPECT_EQ(*resolve_admin_token(admin), "from-file");

  std::ofstream(path) << " \n";
  auto empty = resolve_admin_token(admin);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("is empty"), std::string::npos);
  std::remove(path);

  auto missing = resolve_admin_token(admin);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(std::string(path) + ": cannot be read"), std::string::npos)
      << missing.error().message;
}

}  // namespace
}  // namespace kvmock
