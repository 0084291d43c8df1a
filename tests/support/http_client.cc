#include "tests/support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace kvmock::testing {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                              const std::string& body) {
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  return request;
}

template <typename Fields>
void copy_headers(const Fields& fields, HttpResult& result) {
  for (const auto& field : fields) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = std::string(field.value());
  }
}

// Runs one asynchronous operation on `io` to completion and throws its error. The calls
// below are asynchronous because beast::tcp_stream enforces expires_after() only on
// asynchronous operations; its synchronous calls would ignore the deadline.
template <typename Start>
void run_op(net::io_context& io, Start start) {
  beast::error_code ec;
  start([&ec](beast::error_code e, auto&&...) { ec = e; });
  io.restart();
  io.run();
  if (ec) throw beast::system_error(ec);
}

}  // namespace

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, std::chrono::milliseconds deadline) {
  HttpResult result;
  try {
    net::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(deadline);
    const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    run_op(io, [&](auto done) { stream.async_connect(endpoint, done); });
    auto request = make_request(method, target, body);
    run_op(io, [&](auto done) { http::async_write(stream, request, done); });
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    run_op(io, [&](auto done) { http::async_read(stream, buffer, response, done); });
    result.status = response.result_int();
    result.body = response.body();
    copy_headers(response, result);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  return result;
}

HttpResult http_stream(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::function<bool(const std::string&)>& on_data,
                       std::chrono::milliseconds deadline) {
  HttpResult result;
  try {
    net::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(deadline);
    const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    run_op(io, [&](auto done) { stream.async_connect(endpoint, done); });
    auto request = make_request(method, target, body);
    run_op(io, [&](auto done) { http::async_write(stream, request, done); });
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    run_op(io, [&](auto done) { http::async_read_header(stream, buffer, parser, done); });
    result.status = parser.get().result_int();
    copy_headers(parser.get(), result);
    char data[4096];
    while (!parser.is_done()) {
      parser.get().body().data = data;
      parser.get().body().size = sizeof data;
      beast::error_code ec;
      try {
        run_op(io, [&](auto done) { http::async_read_some(stream, buffer, parser, done); });
      } catch (const beast::system_error& e) {
        ec = e.code();
      }
      if (ec && ec != http::error::need_buffer) {
        result.error = ec.message();
        break;
      }
      const size_t n = sizeof data - parser.get().body().size;
      if (n > 0) {
        std::string piece(data, n);
        result.body += piece;
        if (!on_data(piece)) {
          stream.socket().close();
          return result;
        }
      }
    }
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  return result;
}

}  // namespace kvmock::testing
