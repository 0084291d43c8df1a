#include "core/workload/mooncake_trace.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>

namespace kvmock {
namespace {

using nlohmann::json;

Error line_error(size_t line, std::string_view field, std::string_view what) {
  std::string message = "line " + std::to_string(line) + ": \"";
  message += field;
  message += "\" ";
  message += what;
  return make_error("bad_trace", std::move(message));
}

// The member named `name` or `alias`, or nullptr.
const json* member(const json& object, const char* name, const char* alias = nullptr) {
  auto it = object.find(name);
  if (it != object.end()) return &*it;
  if (alias != nullptr) {
    it = object.find(alias);
    if (it != object.end()) return &*it;
  }
  return nullptr;
}

// A finite number >= 0 (integers and floats alike).
std::optional<double> non_negative_number(const json& value) {
  if (!value.is_number()) return std::nullopt;
  const double v = value.get<double>();
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

std::optional<uint64_t> unsigned_integer(const json& value) {
  if (!value.is_number_unsigned()) {
    // nlohmann stores small non-negative literals as unsigned; a signed integer that is
    // still >= 0 only arises from arithmetic, but accept it all the same.
    if (value.is_number_integer() && value.get<int64_t>() >= 0) {
      return static_cast<uint64_t>(value.get<int64_t>());
    }
    return std::nullopt;
  }
  return value.get<uint64_t>();
}

struct Line {
  std::optional<double> timestamp;
  std::optional<double> delay;
  std::optional<std::string> session;  // the id's JSON text, so "1" and 1 differ
  uint64_t input_length = 0;
  uint32_t output_length = 0;
  std::vector<uint64_t> hash_ids;
};

Result<Line> parse_line(std::string_view text, size_t line_no) {
  const json object = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    return make_error("bad_trace", "line " + std::to_string(line_no) + ": not valid JSON");
  }
  if (!object.is_object()) {
    return make_error("bad_trace", "line " + std::to_string(line_no) + ": not a JSON object");
  }
  Line line;
  if (const json* v = member(object, "timestamp", "created_time")) {
    line.timestamp = non_negative_number(*v);
    if (!line.timestamp) return line_error(line_no, "timestamp", "must be a number >= 0");
  }
  if (const json* v = member(object, "delay", "delay_ms")) {
    line.delay = non_negative_number(*v);
    if (!line.delay) return line_error(line_no, "delay", "must be a number >= 0");
  }
  if (const json* v = member(object, "session_id")) {
    if (!v->is_string() && !v->is_number_integer()) {
      return line_error(line_no, "session_id", "must be a string or an integer");
    }
    line.session = v->dump();
  }

  const json* input = member(object, "input_length");
  if (input == nullptr) return line_error(line_no, "input_length", "is missing");
  const std::optional<uint64_t> input_length = unsigned_integer(*input);
  if (!input_length || *input_length == 0) {
    return line_error(line_no, "input_length", "must be an integer >= 1");
  }
  if (*input_length > kMaxTraceInputTokens) {
    return line_error(line_no, "input_length",
                      "exceeds " + std::to_string(kMaxTraceInputTokens) + " tokens");
  }
  line.input_length = *input_length;

  const json* output = member(object, "output_length");
  if (output == nullptr) return line_error(line_no, "output_length", "is missing");
  const std::optional<uint64_t> output_length = unsigned_integer(*output);
  if (!output_length || *output_length > std::numeric_limits<uint32_t>::max()) {
    return line_error(line_no, "output_length", "must be an integer in [0, 2^32)");
  }
  line.output_length = static_cast<uint32_t>(*output_length);

  const json* hashes = member(object, "hash_ids");
  if (hashes == nullptr) return line_error(line_no, "hash_ids", "is missing");
  if (!hashes->is_array() || hashes->empty()) {
    return line_error(line_no, "hash_ids", "must be a non-empty array of integers >= 0");
  }
  line.hash_ids.reserve(hashes->size());
  for (const json& h : *hashes) {
    const std::optional<uint64_t> id = unsigned_integer(h);
    if (!id) return line_error(line_no, "hash_ids", "must be a non-empty array of integers >= 0");
    line.hash_ids.push_back(*id);
  }
  return line;
}

}  // namespace

std::vector<TokenId> synthesize_trace_prompt(std::span<const uint64_t> hash_ids,
                                             uint64_t input_length, uint32_t trace_block_size) {
  const uint64_t capacity = static_cast<uint64_t>(hash_ids.size()) * trace_block_size;
  const uint64_t length = std::min(input_length, capacity);
  std::vector<TokenId> prompt;
  prompt.reserve(length);
  for (uint64_t i = 0; i < length; ++i) {
    prompt.push_back(static_cast<TokenId>(hash_ids[i / trace_block_size]));
  }
  return prompt;
}

Result<std::vector<WorkloadRequest>> parse_mooncake_trace(std::string_view text,
                                                          const TraceOptions& options) {
  if (options.trace_block_size == 0 || options.trace_block_size > kMaxTraceBlockSize) {
    return make_error("bad_trace_options", "trace_block_size must be in [1, " +
                                               std::to_string(kMaxTraceBlockSize) + "]");
  }
  if (!(options.arrival_speedup > 0) || !std::isfinite(options.arrival_speedup)) {
    return make_error("bad_trace_options", "arrival_speedup must be a finite number > 0");
  }

  std::vector<WorkloadRequest> requests;
  std::vector<double> timestamps;  // raw, per request; NaN when absent
  // Session -> index of its latest turn.
  std::unordered_map<std::string, size_t> last_turn;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (raw.find_first_not_of(" \t\r") == std::string_view::npos) continue;

    Result<Line> parsed = parse_line(raw, line_no);
    if (!parsed.ok()) return parsed.error();
    Line& line = parsed.value();

    WorkloadRequest request;
    request.max_tokens = line.output_length;
    request.prompt =
        synthesize_trace_prompt(line.hash_ids, line.input_length, options.trace_block_size);
    std::optional<size_t> previous;
    if (line.session) {
      auto it = last_turn.find(*line.session);
      if (it != last_turn.end()) previous = it->second;
    }
    if (!previous) {
      if (line.delay)
        return line_error(line_no, "delay", "is not allowed on a session's first turn");
      if (!line.timestamp) return line_error(line_no, "timestamp", "is missing");
    } else {
      request.after = *previous;
      if (line.delay) {
        request.delay_ms = *line.delay / options.arrival_speedup;
      } else if (line.timestamp && !std::isnan(timestamps[*previous])) {
        request.delay_ms =
            std::max(0.0, *line.timestamp - timestamps[*previous]) / options.arrival_speedup;
      } else {
        return line_error(line_no, "delay",
                          "is missing (needed when timestamps cannot give the gap)");
      }
    }
    if (line.session) last_turn[*line.session] = requests.size();
    timestamps.push_back(line.timestamp.value_or(std::nan("")));
    requests.push_back(std::move(request));
  }
  if (requests.empty()) return make_error("empty_trace", "the trace holds no request");

  double origin = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].after) origin = std::min(origin, timestamps[i]);
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].after) {
      requests[i].arrival_ms = (timestamps[i] - origin) / options.arrival_speedup;
    }
  }
  return requests;
}

}  // namespace kvmock
