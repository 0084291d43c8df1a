// The command line (README.md#commands): parses the subcommand and
// dispatches. Returns the process exit status.
#pragma once

namespace kvmock {

int run_command_line(int argc, char** argv);

}  // namespace kvmock
