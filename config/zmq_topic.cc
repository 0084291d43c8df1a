#include "config/zmq_topic.h"

#include <array>
#include <optional>

#include "config/endpoint.h"

namespace kvmock {
namespace {

constexpr std::array<std::string_view, 5> kPlaceholders = {"host", "port", "model", "worker_id",
                                                           "dp_rank"};

std::string known_list() {
  std::string list;
  for (const std::string_view name : kPlaceholders) {
    if (!list.empty()) list += ", ";
    list += "{" + std::string(name) + "}";
  }
  return list;
}

// One pass shared by checking and expanding, so the two can never disagree about what
// a valid template is. `on_literal` gets text to copy, `on_placeholder` a known name.
template <typename Literal, typename Placeholder>
std::optional<Error> scan(std::string_view topic, Literal on_literal, Placeholder on_placeholder) {
  size_t i = 0;
  while (i < topic.size()) {
    const char c = topic[i];
    if (c == '{' && i + 1 < topic.size() && topic[i + 1] == '{') {
      on_literal(std::string_view("{"));
      i += 2;
    } else if (c == '}' && i + 1 < topic.size() && topic[i + 1] == '}') {
      on_literal(std::string_view("}"));
      i += 2;
    } else if (c == '{') {
      const size_t close = topic.find('}', i + 1);
      if (close == std::string_view::npos) {
        return make_error("bad_value", "has an unclosed '{' at offset " + std::to_string(i) +
                                           " (write '{{' for a literal brace)");
      }
      const std::string_view name = topic.substr(i + 1, close - i - 1);
      bool known = false;
      for (const std::string_view k : kPlaceholders) known = known || k == name;
      if (!known) {
        return make_error("bad_value", "has an unknown placeholder {" + std::string(name) +
                                           "}; known: " + known_list());
      }
      on_placeholder(name);
      i = close + 1;
    } else if (c == '}') {
      return make_error("bad_value", "has a lone '}' at offset " + std::to_string(i) +
                                         " (write '}}' for a literal brace)");
    } else {
      const size_t next = topic.find_first_of("{}", i);
      const size_t end = next == std::string_view::npos ? topic.size() : next;
      on_literal(topic.substr(i, end - i));
      i = end;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string check_zmq_connect_endpoint(std::string_view text) {
  if (text.empty()) return {};
  const std::string expected =
      "must be empty or tcp://host:port (the SUB socket to connect to), got \"" +
      std::string(text) + "\"";
  if (!text.starts_with("tcp://")) return expected;
  auto address = parse_host_port(text.substr(6));
  // A wildcard host or port 0 can be bound but never connected to.
  if (!address || address->port == 0 || address->host == "*") return expected;
  return {};
}

Result<std::vector<std::string>> zmq_topic_placeholders(std::string_view topic) {
  std::vector<std::string> names;
  if (auto error = scan(
          topic, [](std::string_view) {},
          [&](std::string_view name) { names.emplace_back(name); })) {
    return *error;
  }
  return names;
}

std::string check_zmq_topic_template(std::string_view topic) {
  auto names = zmq_topic_placeholders(topic);
  return names ? std::string() : names.error().message;
}

Result<std::string> expand_zmq_topic(std::string_view topic, const ZmqTopicValues& values) {
  std::string out;
  auto error = scan(
      topic, [&](std::string_view text) { out += text; },
      [&](std::string_view name) {
        if (name == "host") {
          out += values.host;
        } else if (name == "port") {
          out += std::to_string(values.port);
        } else if (name == "model") {
          out += values.model;
        } else if (name == "worker_id") {
          out += std::to_string(values.worker_id);
        } else {
          out += std::to_string(values.dp_rank);
        }
      });
  if (error) return *error;
  return out;
}

}  // namespace kvmock
