#include "tests/support/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "tests/support/subprocess.h"

namespace kvmock::testing {
namespace {

constexpr const char* kServerBinary = "/usr/sbin/nats-server";

bool can_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

namespace {

// Binds a TCP socket to 127.0.0.1:`port` (0: any free port) and closes it again; returns
// the port bound, or 0 when it was taken.
int bind_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    bound = ntohs(addr.sin_port);
  }
  ::close(fd);
  return bound;
}

}  // namespace

int free_loopback_port() { return bind_loopback(0); }

bool nats_server_available() { return ::access(kServerBinary, X_OK) == 0; }

int free_loopback_port_range(int count) {
  // Ranges come from below the kernel's ephemeral range (ip_local_port_range), where
  // neither a port bound to 0 nor an outgoing connection ever lands: a range probed free
  // stays free while a daemon starts on it, whatever the tests running beside it connect
  // or bind meanwhile. A random start keeps two such tests apart.
  int ephemeral_low = 32768;
  if (FILE* range = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(range, "%d", &ephemeral_low) != 1) ephemeral_low = 32768;
    std::fclose(range);
  }
  constexpr int kLowest = 10000;
  std::mt19937 random(
      static_cast<uint32_t>(::getpid()) ^
      static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  const int span = ephemeral_low - count - kLowest;
  for (int attempt = 0; span > 0 && attempt < 200; ++attempt) {
    const int base = kLowest + static_cast<int>(random() % static_cast<uint32_t>(span));
    bool all_free = true;
    for (int port = base; port < base + count && all_free; ++port) {
      all_free = bind_loopback(port) == port;
    }
    if (all_free) return base;
  }
  return 0;
}

NatsServer::NatsServer(std::vector<std::string> extra_args)
    : port_(free_loopback_port()), extra_args_(std::move(extra_args)) {
  char pattern[] = "/tmp/kvmock-nats-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  store_dir_ = dir ? dir : "/tmp/kvmock-nats";
}

NatsServer::~NatsServer() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(store_dir_, ignored);
}

std::string NatsServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

bool NatsServer::start(std::chrono::milliseconds timeout) {
  if (pid_ > 0) return true;
  const std::string port = std::to_string(port_);
  std::vector<std::string> args{kServerBinary, "-a",  "127.0.0.1", "-p",
                                port,          "-js", "-sd",       store_dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = spawn_quiet_server(std::move(args));
  if (wait_for_server(
          pid_, [this] { return can_connect(port_); }, timeout))
    return true;
  stop();
  return false;
}

void NatsServer::stop() {
  if (pid_ <= 0) return;
  stop_server(pid_, std::chrono::milliseconds(2000));  // a clean JetStream shutdown first
}

void NatsServer::crash() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace kvmock::testing
