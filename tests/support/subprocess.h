// Runs a child process for end-to-end tests: feeds stdin, collects stdout, stderr and the
// exit status, and kills the child if it outlives a deadline (no test can hang).
#pragma once

#include <chrono>
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

// Absolute path of the built kvmockd binary.
std::string kvmockd_path();

// Contents of a file under tests/data.
std::string read_test_data(const std::string& name);

}  // namespace kvmock::testing
