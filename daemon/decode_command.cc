#include "daemon/decode_command.h"

#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/events/engine_event_converter.h"
#include "core/events/engine_event_json.h"
#include "core/events/engine_payload_codec.h"
#include "core/events/router_event_codec.h"
#include "daemon/flags.h"

namespace kvmock {
namespace {

constexpr const char* kDecodeUsage =
    "usage: kvmockd decode [--block-size N] [--worker-id ID] [--hex] < PAYLOAD\n"
    "Reads one engine KV-event payload (the third frame of [topic, seq, payload]; raw bytes,\n"
    "or hex text with --hex) and prints one JSON line per engine event, per router event\n"
    "and per conversion issue. --block-size (default 16) recomputes tokens_hash;\n"
    "--worker-id (default 0) is stamped on router events.\n";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void write_line(FILE* out, const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), out);
  std::fputc('\n', out);
}

std::vector<FlagSpec> decode_flags(DecodeCommandOptions& options) {
  return {
      unsigned_flag("--block-size", options.block_size, /*min=*/1),
      unsigned_flag("--worker-id", options.worker_id),
      switch_flag("--hex", options.hex),
  };
}

}  // namespace

Result<std::vector<uint8_t>> parse_hex(std::string_view text) {
  std::vector<uint8_t> bytes;
  bytes.reserve(text.size() / 2);
  int high = -1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '0' && high < 0 && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
      ++i;
      continue;
    }
    const int digit = hex_digit(c);
    if (digit < 0) {
      return make_error("hex", "not a hex digit at offset " + std::to_string(i) + ": '" +
                                   std::string(1, c) + "'");
    }
    if (high < 0) {
      high = digit;
    } else {
      bytes.push_back(static_cast<uint8_t>(high << 4 | digit));
      high = -1;
    }
  }
  if (high >= 0) return make_error("hex", "odd number of hex digits");
  return bytes;
}

int run_decode(const DecodeCommandOptions& options, std::span<const uint8_t> payload, FILE* out,
               FILE* err) {
  auto batch = decode_engine_payload(payload);
  if (!batch) {
    std::fprintf(err, "kvmockd decode: malformed payload (%.*s): %s\n",
                 static_cast<int>(batch.error().reason.size()), batch.error().reason.data(),
                 batch.error().message.c_str());
    return 1;
  }
  for (size_t i = 0; i < batch->events.size(); ++i) write_line(out, engine_event_json(*batch, i));

  ConversionOptions conversion;
  conversion.worker_id = options.worker_id;
  conversion.block_size = options.block_size;
  const ConvertedBatch converted = convert_engine_batch(*batch, conversion);
  std::string line;
  for (const RouterEvent& event : converted.events) {
    line = R"({"kind":"router","event":)";
    encode_router_event_json(event, RouterEventFieldSet{}, line);
    line += '}';
    write_line(out, line);
  }
  for (const ConversionIssue& issue : converted.issues) {
    line = R"({"kind":"issue","reason":")";
    line += conversion_issue_reason(issue.kind);
    line += R"(","event_index":)" + std::to_string(issue.event_index) + R"(,"message":)";
    line += nlohmann::json(issue.message).dump();
    line += '}';
    write_line(out, line);
  }
  if (batch->unknown_events > 0) {
    write_line(out, R"({"kind":"issue","reason":"unknown_event_type","count":)" +
                        std::to_string(batch->unknown_events) + "}");
  }
  return 0;
}

int run_decode_command(int argc, char** argv) {
  DecodeCommandOptions options;
  const std::vector<FlagSpec> flags = decode_flags(options);
  if (auto status = handle_command_line(argc, argv, flags, kDecodeUsage)) return *status;
  std::cin >> std::noskipws;
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  std::vector<uint8_t> payload;
  if (options.hex) {
    auto bytes = parse_hex(input);
    if (!bytes) {
      std::fprintf(stderr, "kvmockd decode: bad hex input: %s\n", bytes.error().message.c_str());
      return 1;
    }
    payload = std::move(*bytes);
  } else {
    payload.assign(input.begin(), input.end());
  }
  return run_decode(options, payload, stdout, stderr);
}

}  // namespace kvmock
