#include "tests/support/loopback_http_server.h"

namespace kvmock::testing {

Result<uint16_t> LoopbackHttpServer::start(HttpHandler handler, HttpServerOptions options) {
  server_ = std::make_unique<HttpServer>(io_, std::move(handler), options);
  auto port = server_->listen("127.0.0.1", 0);
  if (!port) return port;
  port_ = *port;
  thread_ = std::thread([this] { io_.run(); });
  return port;
}

void LoopbackHttpServer::stop() {
  if (server_) server_->stop();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace kvmock::testing
