// An HttpServer on 127.0.0.1 at an ephemeral port, run by a thread of its own, for tests of
// one handler. The io_context lives as long as this object, so a fixture that declares it
// first keeps sockets valid for exchanges its other members still hold.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/common/result.h"
#include "transport/http/http_server.h"

namespace kvmock::testing {

class LoopbackHttpServer {
 public:
  LoopbackHttpServer() = default;
  ~LoopbackHttpServer() { stop(); }
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  // Listens and starts the loop; the error says why listening failed.
  Result<uint16_t> start(HttpHandler handler, HttpServerOptions options = {});
  // Closes the listener and every session, then ends the loop. Idempotent.
  void stop();

  uint16_t port() const { return port_; }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace kvmock::testing
