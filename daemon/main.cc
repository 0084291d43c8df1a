#include <cstdio>
#include <string_view>

#include "daemon/commands.h"

int main(int argc, char** argv) { return kvmock::run_command_line(argc, argv); }
