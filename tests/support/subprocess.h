// Runs a child process for end-to-end tests: feeds stdin, collects stdout, stderr and the
// exit status, and kills the child if it outlives a deadline (no test can hang).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace kvmock::testing {

struct ProcessResult {
  int exit_status = -1;  // -1 when killed or not started
  std::string out;
  std::string err;
  bool timed_out = false;
};

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input,
                          std::chrono::milliseconds deadline = std::chrono::seconds(30));

// A long-running child (a daemon under test). Its stdout and stderr go to a temporary
// file; the destructor kills it if it is still running.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool running();
  void signal(int signal_number);
  // Waits for exit up to `timeout`; returns the exit status, or -1 on timeout / signal.
  int wait(std::chrono::milliseconds timeout);
  std::string output() const;       // stdout and stderr so far
  int pid() const { return pid_; }  // -1 when the fork failed

 private:
  int pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
  std::string log_path_;
};

// A server for a test (nats-server, etcd): `args[0]` is the binary's path; its stdout and
// stderr go to /dev/null. Returns the child's pid, or -1 when fork failed.
int spawn_quiet_server(std::vector<std::string> args);
// Polls `ready` every 20 ms: true once it holds; false when the server exits first (`pid`
// becomes -1) or `timeout` passes (the server is left running for the caller to stop).
bool wait_for_server(int& pid, const std::function<bool()>& ready,
                     std::chrono::milliseconds timeout);
// SIGTERM, then SIGKILL if the server is still there after `grace`; `pid` becomes -1.
void stop_server(int& pid, std::chrono::milliseconds grace);

// Writes `text` to a new file under /tmp and returns its path (the caller unlinks it).
std::string write_temp_file(const std::string& text);

// Absolute path of the built kvmockd binary.
std::string kvmockd_path();

// Contents of a file under tests/data.
std::string read_test_data(const std::string& name);

}  // namespace kvmock::testing
