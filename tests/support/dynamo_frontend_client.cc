#include "tests/support/dynamo_frontend_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace kvmock::testing {
namespace {

using Clock = std::chrono::steady_clock;

void put_be(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_be(const std::string& in, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<uint8_t>(in[at + i]);
  return value;
}

enum class ReadResult { kData, kEof, kTimeout };

// Appends what arrives before `deadline` to `buffer`.
ReadResult read_some(int fd, std::string& buffer, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return ReadResult::kTimeout;
  pollfd p{fd, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
  if (ready <= 0) return ReadResult::kTimeout;
  char chunk[65536];
  const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
  if (n <= 0) return ReadResult::kEof;
  buffer.append(chunk, static_cast<size_t>(n));
  return ReadResult::kData;
}

void send_all(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

std::string frontend_encode_two_part(const std::string& header, const std::string& body) {
  std::string out;
  put_be(out, header.size(), 8);
  put_be(out, body.size(), 8);
  put_be(out, 0, 8);  // checksum: release builds of Dynamo write 0
  return out + header + body;
}

std::string frontend_encode_request_frame(const std::string& path, const std::string& headers,
                                          const std::string& payload) {
  std::string out;
  put_be(out, path.size(), 2);
  out += path;
  put_be(out, headers.size(), 2);
  out += headers;
  put_be(out, payload.size(), 4);
  return out + payload;
}

FrontendResponseStream::FrontendResponseStream(int fd, std::string subject)
    : fd_(fd), subject_(std::move(subject)) {}

FrontendResponseStream::~FrontendResponseStream() { close(); }

void FrontendResponseStream::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::optional<FrontendMessage> FrontendResponseStream::read_message(
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  timed_out_ = false;
  for (int reads = 0; reads < 100000; ++reads) {
    if (buffer_.size() >= 24) {
      const uint64_t header_len = get_be(buffer_, 0, 8);
      const uint64_t body_len = get_be(buffer_, 8, 8);
      if (header_len > (1u << 26) || body_len > (1u << 26)) return std::nullopt;
      if (buffer_.size() >= 24 + header_len + body_len) {
        FrontendMessage message{buffer_.substr(24, header_len),
                                buffer_.substr(24 + header_len, body_len)};
        buffer_.erase(0, 24 + header_len + body_len);
        return message;
      }
    }
    if (fd_ < 0) return std::nullopt;
    const ReadResult r = read_some(fd_, buffer_, deadline);
    if (r == ReadResult::kTimeout) timed_out_ = true;
    if (r != ReadResult::kData) return std::nullopt;
  }
  return std::nullopt;
}

bool FrontendResponseStream::read_prologue(std::string* error, std::chrono::milliseconds timeout) {
  auto message = read_message(timeout);
  if (!message || !message->body.empty()) {
    if (error) *error = "no header-only prologue";
    return false;
  }
  const auto header = nlohmann::json::parse(message->header, nullptr, false);
  if (!header.is_object() || !header.contains("error")) {
    if (error) *error = "prologue is not {\"error\":...}: " + message->header;
    return false;
  }
  if (header["error"].is_null()) return true;
  if (error) *error = header["error"].is_string() ? header["error"].get<std::string>() : "?";
  return false;
}

std::optional<nlohmann::json> FrontendResponseStream::read_item(std::chrono::milliseconds timeout) {
  auto message = read_message(timeout);
  if (!message || !message->header.empty()) return std::nullopt;
  const auto body = nlohmann::json::parse(message->body, nullptr, false);
  if (!body.is_object() || body.value("complete_final", true) || !body.contains("data")) {
    return std::nullopt;
  }
  return body["data"];
}

FrontendResponse FrontendResponseStream::read_all(std::chrono::milliseconds timeout) {
  FrontendResponse response;
  response.handshake_ok = true;
  const auto deadline = Clock::now() + timeout;
  bool prologue = false;
  for (int i = 0; i < 100000; ++i) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = read_message(std::max(left, std::chrono::milliseconds(1)));
    if (!message) {
      response.timed_out = timed_out_;
      return response;
    }
    if (!prologue) {
      prologue = true;
      const auto header = nlohmann::json::parse(message->header, nullptr, false);
      if (!message->body.empty() || !header.is_object() || !header.contains("error")) {
        response.protocol_error = "bad prologue: " + message->header;
        return response;
      }
      if (!header["error"].is_null()) {
        response.error = header["error"].is_string() ? header["error"].get<std::string>() : "?";
      }
      continue;
    }
    if (!message->header.empty()) {
      if (message->header == "\"sentinel\"" && message->body.empty()) {
        response.sentinel = true;
        if (!response.complete_final) response.protocol_error = "sentinel before complete_final";
      } else {
        response.protocol_error = "unexpected control message " + message->header;
      }
      return response;
    }
    const auto body = nlohmann::json::parse(message->body, nullptr, false);
    if (!body.is_object() || !body.contains("complete_final")) {
      response.protocol_error = "bad item " + message->body;
      return response;
    }
    if (response.complete_final) {
      response.protocol_error = "data after complete_final";
      return response;
    }
    if (body["complete_final"].get<bool>()) {
      response.complete_final = true;
      if (body.contains("data")) response.protocol_error = "complete_final with data";
      continue;
    }
    response.items.push_back(body["data"]);
  }
  return response;
}

bool FrontendResponseStream::closed_without_more(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return false;
  const auto deadline = Clock::now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    const size_t before = buffer_.size();
    const ReadResult r = read_some(fd_, buffer_, deadline);
    if (r == ReadResult::kEof) return buffer_.size() == before;
    if (r == ReadResult::kTimeout) return false;
  }
  return false;
}

void FrontendResponseStream::send_stop() {
  send_all(fd_, frontend_encode_two_part("\"stop\"", ""));
}
void FrontendResponseStream::send_kill() {
  send_all(fd_, frontend_encode_two_part("\"kill\"", ""));
}

DynamoFrontendClient::DynamoFrontendClient() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::listen(listen_fd_, 128);
  socklen_t length = sizeof(address);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  call_home_port_ = ntohs(address.sin_port);
}

DynamoFrontendClient::~DynamoFrontendClient() {
  unclaimed_.clear();
  for (int fd : connections_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool DynamoFrontendClient::connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return false;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  connections_.push_back(fd);
  ack_buffers_.emplace_back();
  return true;
}

DynamoFrontendClient::Sent DynamoFrontendClient::make_request(std::string* payload,
                                                              const std::string& body) {
  const uint64_t n = next_request_++;
  Sent sent{"req-" + std::to_string(n), "5f0e6c1a-2b3c-4d5e-8f90-" + std::to_string(1000000 + n)};
  // RequestControlMessage; connection_info.info is JSON text inside a JSON string.
  const nlohmann::json info = {{"address", "127.0.0.1:" + std::to_string(call_home_port_)},
                               {"subject", sent.subject},
                               {"context", sent.request_id},
                               {"stream_type", "response"}};
  const nlohmann::json control = {
      {"id", sent.request_id},
      {"request_type", "single_in"},
      {"response_type", "many_out"},
      {"connection_info", {{"transport", "tcp_server"}, {"info", info.dump()}}}};
  *payload = frontend_encode_two_part(control.dump(), body);
  return sent;
}

DynamoFrontendClient::Sent DynamoFrontendClient::send_request(const std::string& path,
                                                              const std::string& body,
                                                              size_t connection) {
  std::string payload;
  Sent sent = make_request(&payload, body);
  const nlohmann::json headers = {{"x-endpoint-path", path}, {"x-request-id", sent.request_id}};
  send_raw(frontend_encode_request_frame(path, headers.dump(), payload), connection);
  return sent;
}

void DynamoFrontendClient::send_raw(const std::string& bytes, size_t connection) {
  send_all(connections_.at(connection), bytes);
}

void DynamoFrontendClient::shutdown_send(size_t connection) {
  ::shutdown(connections_.at(connection), SHUT_WR);
}

std::optional<std::string> DynamoFrontendClient::read_ack(size_t connection,
                                                          std::chrono::milliseconds timeout) {
  std::string& buffer = ack_buffers_.at(connection);
  const auto deadline = Clock::now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    if (buffer.size() >= 4) {
      const uint64_t length = get_be(buffer, 0, 4);
      if (buffer.size() >= 4 + length) {
        std::string text = buffer.substr(4, length);
        buffer.erase(0, 4 + length);
        return text;
      }
    }
    if (read_some(connections_.at(connection), buffer, deadline) != ReadResult::kData) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

bool DynamoFrontendClient::connection_closed(size_t connection, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string& buffer = ack_buffers_.at(connection);
  for (int i = 0; i < 100000; ++i) {
    const ReadResult r = read_some(connections_.at(connection), buffer, deadline);
    if (r == ReadResult::kEof) return true;
    if (r == ReadResult::kTimeout) return false;
  }
  return false;
}

std::unique_ptr<FrontendResponseStream> DynamoFrontendClient::accept_stream(
    std::chrono::milliseconds timeout) {
  if (!unclaimed_.empty()) {
    auto stream = std::move(unclaimed_.front());
    unclaimed_.erase(unclaimed_.begin());
    return stream;
  }
  pollfd p{listen_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return nullptr;
  const int fd = ::accept(listen_fd_, nullptr, nullptr);
  if (fd < 0) return nullptr;
  auto stream = std::make_unique<FrontendResponseStream>(fd, "");
  // The handshake: header-only {"subject":"...","stream_type":"response"}.
  auto handshake = stream->read_message(timeout);
  if (!handshake || !handshake->body.empty()) return nullptr;
  const auto header = nlohmann::json::parse(handshake->header, nullptr, false);
  if (!header.is_object() || !header.contains("subject") || !header["subject"].is_string() ||
      header.value("stream_type", "") != "response") {
    return nullptr;
  }
  stream->subject_ = header["subject"].get<std::string>();
  return stream;
}

std::unique_ptr<FrontendResponseStream> DynamoFrontendClient::stream_for(
    const std::string& subject, std::chrono::milliseconds timeout) {
  for (auto it = unclaimed_.begin(); it != unclaimed_.end(); ++it) {
    if ((*it)->subject() == subject) {
      auto stream = std::move(*it);
      unclaimed_.erase(it);
      return stream;
    }
  }
  const auto deadline = Clock::now() + timeout;
  for (int i = 0; i < 1000; ++i) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return nullptr;
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return nullptr;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return nullptr;
    auto stream = std::make_unique<FrontendResponseStream>(fd, "");
    auto handshake = stream->read_message(left);
    if (!handshake || !handshake->body.empty()) return nullptr;
    const auto header = nlohmann::json::parse(handshake->header, nullptr, false);
    if (!header.is_object() || !header.contains("subject") || !header["subject"].is_string() ||
        header.value("stream_type", "") != "response") {
      return nullptr;
    }
    stream->subject_ = header["subject"].get<std::string>();
    if (stream->subject_ == subject) return stream;
    unclaimed_.push_back(std::move(stream));
  }
  return nullptr;
}

}  // namespace kvmock::testing
