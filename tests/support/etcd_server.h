// A real etcd (Debian's etcd-server, /usr/bin/etcd) for integration tests: one member on
// 127.0.0.1 with ephemeral client and peer ports and a temporary data directory, shaped like
// NatsServer. It runs with a 10 ms heartbeat and a 100 ms election timeout, so it is ready
// quickly and grants leases as short as 1 s (etcd raises shorter TTLs to a minimum derived
// from the election timeout; with the defaults that minimum is 2 s).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace kvmock::testing {

class EtcdServer {
 public:
  // Picks free ports and a fresh data dir; does not start.
  EtcdServer();
  ~EtcdServer();  // stops the server and deletes the data dir
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Starts etcd and waits (bounded) until its JSON gateway answers.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  void stop();
  bool running() const { return pid_ > 0; }

  // "http://127.0.0.1:PORT", the client URL the JSON gateway is served on.
  std::string endpoint() const;
  int client_port() const { return client_port_; }

 private:
  int client_port_;
  int peer_port_;
  std::string data_dir_;
  pid_t pid_ = -1;
};

// True when /usr/bin/etcd is installed (integration tests fail loudly when it is not).
bool etcd_server_available();

}  // namespace kvmock::testing
