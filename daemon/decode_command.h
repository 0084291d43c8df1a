// `kvmockd decode`: one engine KV-event payload on stdin → JSON lines on stdout.
#pragma once

#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct DecodeCommandOptions {
  uint32_t block_size = 16;
  uint64_t worker_id = 0;
  bool hex = false;
};

// Hex text to bytes; whitespace is ignored, an optional 0x prefix is allowed.
Result<std::vector<uint8_t>> parse_hex(std::string_view text);

// Decodes `payload` and writes the JSON lines to `out`. Returns the exit status:
// 0 on success, 1 (with a one-line reason on `err`) when the payload is malformed.
int run_decode(const DecodeCommandOptions& options, std::span<const uint8_t> payload, FILE* out,
               FILE* err);

// The whole subcommand: flags, stdin, output. Exit 2 on usage errors.
int run_decode_command(int argc, char** argv);

}  // namespace kvmock
