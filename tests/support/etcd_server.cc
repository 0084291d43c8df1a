#include "tests/support/etcd_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock::testing {
namespace {

constexpr const char* kServerBinary = "/usr/bin/etcd";

// True when a POST /v3/kv/range to the gateway is answered with HTTP 200: the member has
// a leader and serves requests, which an open port alone does not prove.
bool gateway_ready(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval receive_timeout{0, 200000};  // 200 ms
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ready = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string body = R"({"key":"AA=="})";
    const std::string request =
        "POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char answer[64] = {};
      const ssize_t n = ::recv(fd, answer, sizeof answer - 1, 0);
      ready =
          n > 12 && std::string_view(answer, static_cast<size_t>(n)).starts_with("HTTP/1.1 200");
    }
  }
  ::close(fd);
  return ready;
}

}  // namespace

bool etcd_server_available() { return ::access(kServerBinary, X_OK) == 0; }

EtcdServer::EtcdServer() : client_port_(free_loopback_port()), peer_port_(free_loopback_port()) {
  for (int attempt = 0; attempt < 10 && peer_port_ == client_port_; ++attempt) {
    peer_port_ = free_loopback_port();
  }
  char pattern[] = "/tmp/kvmock-etcd-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  data_dir_ = dir ? dir : "/tmp/kvmock-etcd";
}

EtcdServer::~EtcdServer() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(data_dir_, ignored);
}

std::string EtcdServer::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(client_port_);
}

bool EtcdServer::start(std::chrono::milliseconds timeout) {
  if (pid_ > 0) return true;
  const std::string client_url = endpoint();
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args{kServerBinary,
                                "--name",
                                "kvmock-test",
                                "--data-dir",
                                data_dir_ + "/member",
                                "--listen-client-urls",
                                client_url,
                                "--advertise-client-urls",
                                client_url,
                                "--listen-peer-urls",
                                peer_url,
                                "--initial-advertise-peer-urls",
                                peer_url,
                                "--initial-cluster",
                                "kvmock-test=" + peer_url,
                                "--heartbeat-interval",
                                "10",
                                "--election-timeout",
                                "100",
                                "--log-level",
                                "error"};
  pid_ = spawn_quiet_server(std::move(args));
  if (wait_for_server(
          pid_, [this] { return gateway_ready(client_port_); }, timeout))
    return true;
  stop();
  return false;
}

void EtcdServer::stop() {
  if (pid_ <= 0) return;
  stop_server(pid_, std::chrono::milliseconds(3000));  // a clean shutdown first
}

}  // namespace kvmock::testing
