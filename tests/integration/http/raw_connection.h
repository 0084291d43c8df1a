// A raw TCP client on 127.0.0.1 for HTTP protocol-edge tests: sends exact bytes (bad
// request lines, pipelined requests, a half-close) and reads what comes back, every read
// bounded by a deadline.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvmock::testing {

class RawConnection {
 public:
  // `receive_buffer_bytes` > 0 shrinks the socket's receive buffer before connecting, so
  // a client that reads slowly stalls the server's writes at once (a slow reader).
  explicit RawConnection(uint16_t port, int receive_buffer_bytes = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    if (receive_buffer_bytes > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }

  // Sends every byte, or stops at the first error (the server may close early).
  bool send(std::string_view bytes) {
    while (!bytes.empty() && fd_ >= 0) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return bytes.empty();
  }

  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // At most `max_bytes` of whatever has arrived, waiting up to `wait` for the first byte.
  std::string read_some(size_t max_bytes, std::chrono::milliseconds wait) {
    std::string text(max_bytes, '\0');
    pollfd p{fd_, POLLIN, 0};
    if (fd_ < 0 || ::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return {};
    const ssize_t n = ::recv(fd_, text.data(), max_bytes, 0);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return text;
  }

  // Reads until the server closes the connection or `deadline` passes; `closed` tells
  // which.
  std::string read_until_close(std::chrono::milliseconds deadline, bool* closed = nullptr) {
    return read([](const std::string&) { return false; }, deadline, closed);
  }

  // Reads until `needle` has appeared `count` times, the server closes, or `deadline`.
  std::string read_until(std::string_view needle, size_t count,
                         std::chrono::milliseconds deadline) {
    return read(
        [&](const std::string& text) {
          size_t found = 0;
          for (size_t at = text.find(needle); at != std::string::npos;
               at = text.find(needle, at + needle.size())) {
            ++found;
          }
          return found >= count;
        },
        deadline, nullptr);
  }

 private:
  template <typename Done>
  std::string read(Done done, std::chrono::milliseconds deadline, bool* closed) {
    std::string text;
    if (closed != nullptr) *closed = false;
    const auto end = std::chrono::steady_clock::now() + deadline;
    char chunk[4096];
    while (fd_ >= 0 && !done(text)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        if (closed != nullptr) *closed = true;
        break;
      }
      text.append(chunk, static_cast<size_t>(n));
    }
    return text;
  }

  int fd_ = -1;
};

}  // namespace kvmock::testing
