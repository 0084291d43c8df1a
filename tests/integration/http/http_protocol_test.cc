// HttpServer at the edges of HTTP/1.x: HTTP/1.0 streams, refused requests (400/431/413),
// pipelining, a client that half-closes, and the per-listener connection limit.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/integration/http/raw_connection.h"
#include "tests/support/http_client.h"
#include "tests/support/loopback_http_server.h"
#include "transport/http/http_server.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;
using testing::RawConnection;

constexpr milliseconds kDeadline{5000};

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string get(const std::string& target, const std::string& version = "HTTP/1.1") {
  return "GET " + target + " " + version + "\r\nHost: x\r\n\r\n";
}

class HttpProtocolTest : public ::testing::Test {
 protected:
  void start(HttpHandler handler, HttpServerOptions options = {}) {
    auto port = server_.start(std::move(handler), options);
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
  }
  void TearDown() override {
    server_.stop();
    std::lock_guard lock(mutex_);
    for (auto& t : threads_) t.join();
  }
  // A handler that answers `target` after `delay`, from another thread.
  HttpHandler answer_later(milliseconds delay) {
    return [this, delay](std::shared_ptr<HttpExchange> exchange) {
      std::lock_guard lock(mutex_);
      threads_.emplace_back([exchange, delay] {
        std::this_thread::sleep_for(delay);
        exchange->respond(200, "text/plain", "answer to " + exchange->request().target);
      });
    };
  }

  MetricsRegistry metrics_;
  testing::LoopbackHttpServer server_;
  uint16_t port_ = 0;
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

TEST_F(HttpProtocolTest, Http10StreamsAreWrittenUntilCloseWithoutChunking) {
  start([](std::shared_ptr<HttpExchange> exchange) {
    exchange->begin_stream(200, "text/event-stream");
    exchange->write("data: 1\n\n");
    exchange->write("data: 2\n\n");
    exchange->finish();
  });
  RawConnection client(port_);
  ASSERT_TRUE(client.send("GET /s HTTP/1.0\r\n\r\n"));
  bool closed = false;
  const std::string reply = client.read_until_close(kDeadline, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.rfind("HTTP/1.0 200", 0), 0u) << reply;
  EXPECT_EQ(reply.find("Transfer-Encoding"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("Content-Length"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos) << reply;
  EXPECT_EQ(reply.substr(reply.find("\r\n\r\n") + 4), "data: 1\n\ndata: 2\n\n");
}

TEST_F(HttpProtocolTest, Http11StreamsStayChunked) {
  start([](std::shared_ptr<HttpExchange> exchange) {
    exchange->begin_stream(200, "text/event-stream");
    exchange->write("data: 1\n\n");
    exchange->finish();
  });
  RawConnection client(port_);
  ASSERT_TRUE(client.send(get("/s")));
  const std::string reply = client.read_until("0\r\n\r\n", 1, kDeadline);
  EXPECT_NE(reply.find("Transfer-Encoding: chunked"), std::string::npos) << reply;
}

TEST_F(HttpProtocolTest, OversizedHeadersGet431) {
  HttpServerOptions options;
  options.metrics = &metrics_;
  start([](std::shared_ptr<HttpExchange> e) { e->respond(200, "text/plain", "ok"); }, options);
  for (const size_t size : {size_t{9} * 1024, size_t{1} << 20}) {
    RawConnection client(port_);
    client.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(size, 'a') + "\r\n\r\n");
    bool closed = false;
    const std::string reply = client.read_until_close(kDeadline, &closed);
    EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << size << ": " << reply.substr(0, 80);
    EXPECT_NE(reply.find("request header fields too large"), std::string::npos);
    EXPECT_TRUE(closed);
  }
  EXPECT_NE(metrics_.render().find(R"(kvmock_http_bad_requests_total{listener="http",port=")" +
                                   std::to_string(port_) + R"(",status="431"} 2)"),
            std::string::npos)
      << metrics_.render();
}

// Parity note M10: the 413 body has the shape of every other error (string code, param).
TEST_F(HttpProtocolTest, OversizedBodiesGet413WithTheOpenAiErrorShape) {
  HttpServerOptions options;
  options.max_body_bytes = 64;
  start([](std::shared_ptr<HttpExchange> e) { e->respond(200, "text/plain", "ok"); }, options);
  RawConnection client(port_);
  client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
              std::string(100, 'x'));
  const std::string reply = client.read_until_close(kDeadline);
  ASSERT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
  const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  EXPECT_NE(body.find(R"("code":"request_body_too_large")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("param":null)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("type":"invalid_request_error")"), std::string::npos) << body;
  EXPECT_NE(body.find("limit 64 bytes"), std::string::npos) << body;
}

// Parity note M9: curl sends `Expect: 100-continue` before a body over 1 MB and waits up to
// a second for the interim answer; without it every large request costs that second.
TEST_F(HttpProtocolTest, ExpectContinueIsAnsweredBeforeTheBody) {
  start([](std::shared_ptr<HttpExchange> e) {
    e->respond(200, "text/plain", "got " + std::to_string(e->request().body.size()));
  });
  RawConnection client(port_);
  client.send(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  const std::string interim = client.read_until("\r\n\r\n", 1, milliseconds(500));
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  client.send("hello");
  const std::string reply = client.read_until("got 5", 1, kDeadline);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("got 5"), std::string::npos) << reply;
}

TEST_F(HttpProtocolTest, AnExpectContinueBodyOverTheLimitGets413WithoutWaitingForIt) {
  HttpServerOptions options;
  options.max_body_bytes = 64;
  start([](std::shared_ptr<HttpExchange> e) { e->respond(200, "text/plain", "ok"); }, options);
  RawConnection client(port_);
  client.send(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
  const std::string reply = client.read_until_close(kDeadline);
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
}

TEST_F(HttpProtocolTest, MalformedRequestsGet400) {
  start([](std::shared_ptr<HttpExchange> e) { e->respond(200, "text/plain", "ok"); });
  const std::vector<std::string> requests = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 100000000000000000000\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
  };
  for (const std::string& request : requests) {
    RawConnection client(port_);
    client.send(request);
    bool closed = false;
    const std::string reply = client.read_until_close(kDeadline, &closed);
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << request << " -> " << reply;
    EXPECT_NE(reply.find("malformed HTTP request"), std::string::npos) << reply;
    EXPECT_TRUE(closed);
  }
}

TEST_F(HttpProtocolTest, ARequestCutShortByTheClientGets400) {
  start([](std::shared_ptr<HttpExchange> e) { e->respond(200, "text/plain", "ok"); });
  RawConnection client(port_);
  client.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  client.shutdown_write();
  EXPECT_EQ(client.read_until_close(kDeadline).rfind("HTTP/1.1 400", 0), 0u);
}

TEST_F(HttpProtocolTest, PipelinedRequestsInOneWriteAreAllAnsweredInOrder) {
  start(answer_later(milliseconds(5)));
  RawConnection client(port_);
  std::string burst;
  for (int i = 0; i < 10; ++i) burst += get("/" + std::to_string(i));
  ASSERT_TRUE(client.send(burst));
  const std::string replies = client.read_until("answer to /9", 1, kDeadline);
  ASSERT_EQ(count_of(replies, "HTTP/1.1 200"), 10u) << replies;
  EXPECT_EQ(replies.find("Connection: close"), std::string::npos);
  size_t at = 0;
  for (int i = 0; i < 10; ++i) {
    const size_t next = replies.find("answer to /" + std::to_string(i), at);
    ASSERT_NE(next, std::string::npos) << "answer " << i << " missing or out of order";
    at = next;
  }
}

TEST_F(HttpProtocolTest, RequestsSentWhileOneIsAnsweredAreAnsweredAfterIt) {
  start(answer_later(milliseconds(30)));
  RawConnection client(port_);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.send(get("/" + std::to_string(i))));
    std::this_thread::sleep_for(milliseconds(2));
  }
  const std::string replies = client.read_until("answer to /2", 1, kDeadline);
  EXPECT_EQ(count_of(replies, "HTTP/1.1 200"), 3u) << replies;
  EXPECT_LT(replies.find("answer to /0"), replies.find("answer to /1"));
  EXPECT_LT(replies.find("answer to /1"), replies.find("answer to /2"));
}

TEST_F(HttpProtocolTest, AClientThatHalfClosesStillGetsItsAnswer) {
  std::atomic<bool> gone{false};
  start([this, &gone](std::shared_ptr<HttpExchange> exchange) {
    exchange->on_client_gone([&gone] { gone = true; });
    answer_later(milliseconds(200))(exchange);
  });
  RawConnection client(port_);
  ASSERT_TRUE(client.send(get("/late")));
  client.shutdown_write();
  bool closed = false;
  const std::string reply = client.read_until_close(kDeadline, &closed);
  EXPECT_NE(reply.find("HTTP/1.1 200 OK"), std::string::npos) << reply;
  EXPECT_NE(reply.find("answer to /late"), std::string::npos) << reply;
  EXPECT_TRUE(closed);
  EXPECT_FALSE(gone.load());
}

TEST_F(HttpProtocolTest, AHalfClosedHttp10ClientGetsItsAnswer) {
  start(answer_later(milliseconds(100)));
  RawConnection client(port_);
  ASSERT_TRUE(client.send(get("/old", "HTTP/1.0")));
  client.shutdown_write();
  const std::string reply = client.read_until_close(kDeadline);
  EXPECT_EQ(reply.rfind("HTTP/1.0 200 OK", 0), 0u) << reply;
  EXPECT_NE(reply.find("answer to /old"), std::string::npos) << reply;
}

TEST_F(HttpProtocolTest, AClientThatHangsUpBeforeItsAnswerIsReportedGone) {
  std::atomic<bool> gone{false};
  std::shared_ptr<HttpExchange> held;
  start([&](std::shared_ptr<HttpExchange> exchange) {
    exchange->on_client_gone([&gone] { gone = true; });
    std::lock_guard lock(mutex_);
    held = exchange;  // never answered
  });
  {
    RawConnection client(port_);
    ASSERT_TRUE(client.send(get("/never")));
    std::this_thread::sleep_for(milliseconds(50));
  }
  for (int i = 0; i < 300 && !gone; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(gone.load());
}

TEST_F(HttpProtocolTest, ConnectionsOverTheLimitGet503AndTheListenerRecovers) {
  HttpServerOptions options;
  options.max_connections = 2;
  options.metrics = &metrics_;
  start([](std::shared_ptr<HttpExchange> e) { e->respond(200, "text/plain", "ok"); }, options);
  auto first = std::make_unique<RawConnection>(port_);
  RawConnection second(port_);
  ASSERT_TRUE(first->send(get("/")));
  ASSERT_TRUE(second.send(get("/")));
  ASSERT_NE(first->read_until("ok", 1, kDeadline).find("200 OK"), std::string::npos);
  ASSERT_NE(second.read_until("ok", 1, kDeadline).find("200 OK"), std::string::npos);

  RawConnection third(port_);
  third.send(get("/"));
  bool closed = false;
  const std::string refused = third.read_until_close(kDeadline, &closed);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_NE(refused.find("too many open connections on this port (limit 2)"), std::string::npos);
  EXPECT_TRUE(closed);
  const std::string labels = R"({listener="http",port=")" + std::to_string(port_) + R"("})";
  EXPECT_NE(metrics_.render().find("kvmock_http_connections_refused_total" + labels + " 1"),
            std::string::npos)
      << metrics_.render();
  EXPECT_NE(metrics_.render().find("kvmock_http_connections_open" + labels + " 2"),
            std::string::npos);

  first.reset();  // frees a slot
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = testing::http_request(port_, "GET", "/").status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace kvmock
