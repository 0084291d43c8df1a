#include "transport/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/loopback_http_server.h"

namespace kvmock {
namespace {

using testing::http_request;
using testing::http_stream;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpHandler handler, HttpServerOptions options = {}) {
    auto port = server_.start(std::move(handler), options);
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
  }
  void TearDown() override { server_.stop(); }

  testing::LoopbackHttpServer server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, AnswersPlainRequestsAndKeepsHeadersAndBody) {
  start([](std::shared_ptr<HttpExchange> exchange) {
    const HttpRequest& r = exchange->request();
    exchange->respond(
        200, "text/plain",
        r.method + " " + r.path() + " " + r.body + " " + r.headers.at("content-type"));
  });
  const auto result = http_request(port_, "POST", "/echo?x=1", "hello");
  EXPECT_EQ(result.status, 200) << result.error;
  EXPECT_EQ(result.body, "POST /echo hello application/json");
  EXPECT_EQ(result.headers.at("content-type"), "text/plain");
}

TEST_F(HttpServerTest, HandlersMayAnswerLaterFromAnotherThread) {
  std::vector<std::thread> workers;
  std::mutex mutex;
  start([&](std::shared_ptr<HttpExchange> exchange) {
    std::lock_guard lock(mutex);
    workers.emplace_back([exchange] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      exchange->respond(202, "application/json", "{}");
    });
  });
  EXPECT_EQ(http_request(port_, "GET", "/later").status, 202);
  std::lock_guard lock(mutex);
  for (auto& w : workers) w.join();
}

TEST_F(HttpServerTest, StreamsChunksInOrder) {
  start([](std::shared_ptr<HttpExchange> exchange) {
    exchange->begin_stream(200, "text/event-stream");
    for (int i = 0; i < 5; ++i) exchange->write("data: " + std::to_string(i) + "\n\n");
    exchange->finish();
  });
  const auto result =
      http_stream(port_, "GET", "/stream", "", [](const std::string&) { return true; });
  EXPECT_EQ(result.status, 200) << result.error;
  EXPECT_EQ(result.body, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
  EXPECT_EQ(result.headers.at("content-type"), "text/event-stream");
}

TEST_F(HttpServerTest, ClientHangingUpMidStreamIsReported) {
  std::atomic<bool> gone{false};
  std::shared_ptr<HttpExchange> held;
  std::mutex mutex;
  start([&](std::shared_ptr<HttpExchange> exchange) {
    exchange->on_client_gone([&gone] { gone = true; });
    exchange->begin_stream(200, "text/event-stream");
    exchange->write("data: first\n\n");
    std::lock_guard lock(mutex);
    held = exchange;  // never finished: the client leaves first
  });
  http_stream(port_, "GET", "/stream", "", [](const std::string&) { return false; });
  for (int i = 0; i < 200 && !gone; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(gone.load());
  std::lock_guard lock(mutex);
  EXPECT_TRUE(held->client_gone());
}

TEST_F(HttpServerTest, OversizedBodiesGet413) {
  HttpServerOptions options;
  options.max_body_bytes = 16;
  start([](std::shared_ptr<HttpExchange> exchange) { exchange->respond(200, "text/plain", "ok"); },
        options);
  EXPECT_EQ(http_request(port_, "POST", "/", std::string(100, 'x')).status, 413);
  EXPECT_EQ(http_request(port_, "POST", "/", "small").status, 200);
}

TEST_F(HttpServerTest, ConsecutiveRequestsAreEachAnswered) {
  std::atomic<int> served{0};
  start([&](std::shared_ptr<HttpExchange> exchange) {
    exchange->respond(200, "text/plain", std::to_string(++served));
  });
  for (int i = 1; i <= 20; ++i) EXPECT_EQ(http_request(port_, "GET", "/").body, std::to_string(i));
}

}  // namespace
}  // namespace kvmock
