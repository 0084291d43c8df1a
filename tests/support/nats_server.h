// A real nats-server for integration tests: loopback only, an ephemeral port, JetStream
// in a temporary directory. Stop and start again to simulate an outage; the port and the
// store directory survive a restart so JetStream state does too.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace kvmock::testing {

class NatsServer {
 public:
  // Picks a free port and a fresh store dir; does not start. `extra_args` go to
  // nats-server as they are (for example {"--user", "u", "--pass", "p"}).
  explicit NatsServer(std::vector<std::string> extra_args = {});
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // Starts the server and waits (bounded) until it accepts connections.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void stop();
  // SIGKILL, as a crash or an OOM kill would end it: no goodbye to its clients.
  void crash();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 while stopped
  std::string url() const;

 private:
  int port_;
  std::vector<std::string> extra_args_;
  std::string store_dir_;
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_loopback_port();
// The first of `count` consecutive loopback ports that were all free a moment ago, or 0.
// They lie below the kernel's ephemeral range, so no port bound to 0 and no outgoing
// connection takes one before the caller binds them.
int free_loopback_port_range(int count);

// True when nats-server is installed (integration tests fail loudly when it is not).
bool nats_server_available();

}  // namespace kvmock::testing
