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

http::request<http::string_body> make_request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::map<std::string, std::string>& extra_headers = {}) {
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : extra_headers) request.set(name, value);
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

// Beast's tcp_stream enforces expires_after() only on asynchronous operations, so each
// step is started asynchronously and the io_context run until it completes; the stream's
// timer closes the socket when the deadline passes, which completes the step with an error.
class DeadlineConnection {
 public:
  DeadlineConnection(uint16_t port, std::chrono::milliseconds deadline) : stream_(io_) {
    stream_.expires_after(deadline);
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [this](beast::error_code ec) { error_ = ec; });
    finish_step();
  }

  beast::error_code write(const http::request<http::string_body>& request) {
    if (error_) return error_;
    http::async_write(stream_, request, [this](beast::error_code ec, size_t) { error_ = ec; });
    return finish_step();
  }
  template <typename Parser>
  beast::error_code read_header(Parser& parser) {
    if (error_) return error_;
    http::async_read_header(stream_, buffer_, parser,
                            [this](beast::error_code ec, size_t) { error_ = ec; });
    return finish_step();
  }
  template <typename Message>
  beast::error_code read(Message& message) {
    if (error_) return error_;
    http::async_read(stream_, buffer_, message,
                     [this](beast::error_code ec, size_t) { error_ = ec; });
    return finish_step();
  }
  template <typename Parser>
  beast::error_code read_some(Parser& parser) {
    if (error_) return error_;
    http::async_read_some(stream_, buffer_, parser,
                          [this](beast::error_code ec, size_t) { error_ = ec; });
    const beast::error_code ec = finish_step();
    if (ec == http::error::need_buffer) error_ = {};  // the body buffer is full: not an error
    return ec;
  }
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

 private:
  beast::error_code finish_step() {
    io_.run();
    io_.restart();
    return error_;
  }

  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
};

}  // namespace

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, std::chrono::milliseconds deadline) {
  return http_request(port, method, target, body, {}, deadline);
}

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body,
                        const std::map<std::string, std::string>& extra_headers,
                        std::chrono::milliseconds deadline) {
  HttpResult result;
  DeadlineConnection connection(port, deadline);
  http::response<http::string_body> response;
  beast::error_code ec = connection.write(make_request(method, target, body, extra_headers));
  if (!ec) ec = connection.read(response);
  if (ec) {
    result.error = ec.message();
    return result;
  }
  result.status = response.result_int();
  result.body = response.body();
  copy_headers(response, result);
  connection.close();
  return result;
}

HttpResult http_stream(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::function<bool(const std::string&)>& on_data,
                       std::chrono::milliseconds deadline) {
  return http_stream(port, method, target, body, {}, on_data, deadline);
}

HttpResult http_stream(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::map<std::string, std::string>& extra_headers,
                       const std::function<bool(const std::string&)>& on_data,
                       std::chrono::milliseconds deadline) {
  HttpResult result;
  DeadlineConnection connection(port, deadline);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  beast::error_code ec = connection.write(make_request(method, target, body, extra_headers));
  if (!ec) ec = connection.read_header(parser);
  if (ec) {
    result.error = ec.message();
    return result;
  }
  result.status = parser.get().result_int();
  copy_headers(parser.get(), result);
  char data[4096];
  while (!parser.is_done()) {
    parser.get().body().data = data;
    parser.get().body().size = sizeof data;
    ec = connection.read_some(parser);
    if (ec && ec != http::error::need_buffer) {
      result.error = ec.message();
      break;
    }
    const size_t n = sizeof data - parser.get().body().size;
    if (n > 0) {
      std::string piece(data, n);
      result.body += piece;
      if (!on_data(piece)) {
        connection.close();
        return result;
      }
    }
  }
  return result;
}

}  // namespace kvmock::testing
