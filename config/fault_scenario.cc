#include "config/fault_scenario.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "config/diagnostics.h"
#include "config/scalar_text.h"
#include "config/schema.h"
#include "core/faults/fault_settings.h"

namespace kvmock {
namespace {

// A scenario is a small file; the bounds keep a wrong path (a disk image) cheap to refuse.
constexpr size_t kMaxFileBytes = 16 << 20;
constexpr size_t kMaxSteps = 100000;
// A year and more: far past any test run, and small enough for milliseconds in 64 bits.
constexpr double kMaxAtSeconds = 1e9;

constexpr const char* kSelectorForms =
    "all, a worker id, a range such as \"1000-1003\", a list of ids and ranges, or "
    "{fraction: F}";

int line_of(const YAML::Node& node) { return node.Mark().line + 1; }

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    default:
      return node.Tag() == "!" ? "the string " + yaml_quote(node.Scalar()) : node.Scalar();
  }
}

// yaml-cpp tags quoted and block scalars "!": they are strings, not numbers or booleans.
bool is_plain_scalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

// Counts documents without building them: a second document is refused rather than silently
// ignored. Reads at most two: yaml-cpp 0.7 yields an endless run of empty documents for some
// malformed input (config_loader.cc has the same guard).
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { line_ = mark.line + 1; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  int line() const { return line_; }

 private:
  int line_ = 0;
};

class ScenarioParser {
 public:
  ScenarioParser(std::string_view file_name, std::span<const uint64_t> fleet_ids)
      : diag_(std::string(file_name)), fleet_ids_(fleet_ids) {}

  Result<FaultScenario> parse(std::string_view text);

 private:
  void error(int line, const std::string& field, const std::string& message) {
    const Origin at{Origin::Kind::kFile, line, {}};
    diag_.add(line > 0 ? &at : nullptr, field, "scenario", message);
  }
  // Calls visit(name, value, line) for each plain-name key of `map`, reporting other keys
  // and duplicates under `field`.
  template <typename Visit>
  void for_each_key(const YAML::Node& map, const std::string& field, Visit visit);
  void parse_step(const YAML::Node& node, size_t index);
  std::optional<uint64_t> parse_at(const YAML::Node& node, const std::string& field);
  std::optional<WorkerSelector> parse_selector(const YAML::Node& node, const std::string& field);
  bool parse_id_item(const YAML::Node& node, WorkerSelector& selector);
  std::optional<std::string> parse_set(const YAML::Node& node, const std::string& field);
  std::optional<ScenarioAction> parse_action(const YAML::Node& node, const std::string& field);

  Diagnostics diag_;
  std::span<const uint64_t> fleet_ids_;
  FaultScenario scenario_;
};

template <typename Visit>
void ScenarioParser::for_each_key(const YAML::Node& map, const std::string& field, Visit visit) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: `it->` yields a proxy that dies at the end of the expression.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      error(line_of(key), field, "keys must be plain names, got " + describe(key));
      continue;
    }
    const std::string path = field.empty() ? key.Scalar() : field + "." + key.Scalar();
    if (!seen.insert(key.Scalar()).second) {
      error(line_of(key), path, "duplicate key");
      continue;
    }
    visit(key.Scalar(), value, line_of(key), path);
  }
}

Result<FaultScenario> ScenarioParser::parse(std::string_view text) {
  YAML::Node root;
  try {
    const std::string yaml(text);
    {
      std::istringstream in(yaml);
      YAML::Parser parser(in);
      DocumentCounter counter;
      if (parser.HandleNextDocument(counter) && parser.HandleNextDocument(counter)) {
        error(counter.line(), "", "only one YAML document is allowed");
        return diag_.to_error();
      }
    }
    root = YAML::Load(yaml);
  } catch (const YAML::DeepRecursion&) {
    error(0, "", "invalid YAML: nested too deeply");
    return diag_.to_error();
  } catch (const YAML::Exception& e) {
    error(e.mark.line + 1, "", "invalid YAML: " + e.msg);
    return diag_.to_error();
  }
  if (!root.IsMap()) {
    error(line_of(root), "",
          "the top level must be a map with a `steps` list, got " + describe(root));
    return diag_.to_error();
  }
  bool has_steps = false;
  for_each_key(
      root, "",
      [&](const std::string& name, const YAML::Node& value, int line, const std::string& path) {
        if (name != "steps") {
          const std::string hint = closest_name(name, {"steps"});
          error(line, path,
                hint.empty() ? "unknown key (the file has one key: steps)"
                             : "unknown key (did you mean steps?)");
          return;
        }
        has_steps = true;
        if (value.IsNull()) return;  // `steps:` with nothing: a scenario that does nothing
        if (!value.IsSequence()) {
          error(line_of(value), "steps", "must be a list of steps, got " + describe(value));
          return;
        }
        if (value.size() > kMaxSteps) {
          error(line_of(value), "steps", "at most " + std::to_string(kMaxSteps) + " steps");
          return;
        }
        for (size_t i = 0; i < value.size(); ++i) parse_step(value[i], i);
      });
  if (!has_steps) error(line_of(root), "steps", "required key is missing");
  if (diag_.has_errors()) return diag_.to_error();
  order_scenario_steps(scenario_.steps);
  return std::move(scenario_);
}

void ScenarioParser::parse_step(const YAML::Node& node, size_t index) {
  const std::string field = "steps[" + std::to_string(index) + "]";
  if (!node.IsMap()) {
    error(line_of(node), field,
          "must be a map with at, workers, and set or action, got " + describe(node));
    return;
  }
  ScenarioStep step;
  step.index = index;
  std::optional<uint64_t> at;
  std::optional<WorkerSelector> workers;
  std::optional<std::string> patch;
  std::optional<ScenarioAction> action;
  bool has_at = false, has_workers = false, has_set = false, has_action = false;
  bool bad = false;  // a field is present but wrong (already reported)
  for_each_key(
      node, field,
      [&](const std::string& name, const YAML::Node& value, int line, const std::string& path) {
        if (name == "at") {
          has_at = true;
          at = parse_at(value, path);
          bad = bad || !at;
        } else if (name == "workers") {
          has_workers = true;
          workers = parse_selector(value, path);
          bad = bad || !workers;
        } else if (name == "set") {
          has_set = true;
          patch = parse_set(value, path);
          bad = bad || !patch;
        } else if (name == "action") {
          has_action = true;
          action = parse_action(value, path);
          bad = bad || !action;
        } else {
          const std::string hint = closest_name(name, {"at", "workers", "set", "action"});
          error(line, path,
                hint.empty() ? "unknown key (at, workers, set, action)"
                             : "unknown key (did you mean " + hint + "?)");
          bad = true;
        }
      });
  const int line = line_of(node);
  if (!has_at) error(line, field + ".at", "required key is missing (seconds from the start)");
  if (!has_workers) {
    error(line, field + ".workers",
          std::string("required key is missing (") + kSelectorForms + ")");
  }
  if (has_set && has_action) {
    error(line, field, "has both set and action; a step does one of them");
  } else if (!has_set && !has_action) {
    error(line, field, "needs set (fault settings) or action (crash or restart)");
  }
  if (bad || !at || !workers || has_set == has_action) return;
  step.at_ms = *at;
  step.workers = std::move(*workers);
  if (has_set) {
    step.action = ScenarioAction::kSet;
    step.patch = std::move(*patch);
  } else {
    step.action = *action;
  }
  scenario_.steps.push_back(std::move(step));
}

std::optional<uint64_t> ScenarioParser::parse_at(const YAML::Node& node, const std::string& field) {
  const std::optional<double> seconds =
      is_plain_scalar(node) ? parse_double(node.Scalar()) : std::nullopt;
  if (!seconds || *seconds < 0) {
    error(line_of(node), field,
          "must be a number >= 0 (seconds from the start), got " + describe(node));
    return std::nullopt;
  }
  if (*seconds > kMaxAtSeconds) {
    error(line_of(node), field, "must be at most 1e9 seconds, got " + node.Scalar());
    return std::nullopt;
  }
  return static_cast<uint64_t>(std::llround(*seconds * 1000));
}

bool ScenarioParser::parse_id_item(const YAML::Node& node, WorkerSelector& selector) {
  if (!node.IsScalar()) return false;
  const std::string& text = node.Scalar();
  const auto id = [](std::string_view digits) -> std::optional<uint64_t> {
    // Digits only: "+5" or "-5" are not worker ids.
    if (digits.empty() || digits.front() < '0' || digits.front() > '9') return std::nullopt;
    const ParsedUnsigned parsed = parse_unsigned(digits);
    if (parsed.status != UnsignedParse::kOk) return std::nullopt;
    return parsed.value;
  };
  const size_t dash = text.find('-');
  if (dash == std::string::npos) {
    const std::optional<uint64_t> single = id(text);
    if (!single) return false;
    selector.ranges.emplace_back(*single, *single);
    return true;
  }
  const std::optional<uint64_t> lo = id(std::string_view(text).substr(0, dash));
  const std::optional<uint64_t> hi = id(std::string_view(text).substr(dash + 1));
  if (!lo || !hi) return false;
  selector.ranges.emplace_back(*lo, *hi);
  return true;
}

std::optional<WorkerSelector> ScenarioParser::parse_selector(const YAML::Node& node,
                                                             const std::string& field) {
  WorkerSelector selector;
  bool ok = true;
  if (node.IsScalar() && node.Scalar() == "all") {
    selector.kind = WorkerSelector::Kind::kAll;
  } else if (node.IsScalar()) {
    selector.kind = WorkerSelector::Kind::kIds;
    ok = parse_id_item(node, selector);
  } else if (node.IsSequence()) {
    selector.kind = WorkerSelector::Kind::kIds;
    for (size_t i = 0; i < node.size(); ++i) {
      if (!parse_id_item(node[i], selector)) {
        error(line_of(node[i]), field + "[" + std::to_string(i) + "]",
              "must be a worker id or a range such as \"1000-1003\", got " + describe(node[i]));
        return std::nullopt;
      }
    }
  } else if (node.IsMap()) {
    selector.kind = WorkerSelector::Kind::kFraction;
    bool has_fraction = false;
    for_each_key(
        node, field,
        [&](const std::string& name, const YAML::Node& value, int line, const std::string& path) {
          if (name != "fraction") {
            error(line, path, "unknown key (a selector map has one key: fraction)");
            ok = false;
            return;
          }
          has_fraction = true;
          const std::optional<double> fraction =
              is_plain_scalar(value) ? parse_double(value.Scalar()) : std::nullopt;
          if (!fraction || *fraction <= 0 || *fraction > 1) {
            error(line_of(value), path,
                  "must be a number greater than 0 and at most 1, got " + describe(value));
            ok = false;
            return;
          }
          selector.fraction = *fraction;
        });
    if (!ok) return std::nullopt;
    if (!has_fraction) {
      error(line_of(node), field + ".fraction", "required key is missing");
      return std::nullopt;
    }
  } else {
    ok = false;
  }
  if (!ok) {
    error(line_of(node), field,
          std::string("must be ") + kSelectorForms + ", got " + describe(node));
    return std::nullopt;
  }
  if (const std::optional<std::string> why = check_worker_selector(selector, fleet_ids_)) {
    error(line_of(node), field, *why);
    return std::nullopt;
  }
  return selector;
}

// A YAML value as the JSON that POST /admin/config would carry: plain scalars are booleans
// and numbers when they read as such, quoted ones stay strings, so `rate: "50"` is refused
// as /admin/config refuses {"rate":"50"}. Maps are never a setting's value.
std::optional<nlohmann::ordered_json> to_json(const YAML::Node& node) {
  if (node.IsNull()) return nlohmann::ordered_json(nullptr);
  if (node.IsScalar()) {
    if (node.Tag() == "!") return nlohmann::ordered_json(node.Scalar());
    if (const std::optional<bool> flag = parse_bool(node.Scalar())) {
      return nlohmann::ordered_json(*flag);
    }
    if (const std::optional<double> number = parse_double(node.Scalar())) {
      return nlohmann::ordered_json(*number);
    }
    return nlohmann::ordered_json(node.Scalar());
  }
  if (node.IsSequence()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (size_t i = 0; i < node.size(); ++i) {
      std::optional<nlohmann::ordered_json> item = to_json(node[i]);
      if (!item) return std::nullopt;
      list.push_back(std::move(*item));
    }
    return list;
  }
  return std::nullopt;
}

std::optional<std::string> ScenarioParser::parse_set(const YAML::Node& node,
                                                     const std::string& field) {
  if (!node.IsMap() || node.size() == 0) {
    error(line_of(node), field,
          "must be a map of fault settings (as POST /admin/config takes), got " +
              (node.IsMap() ? std::string("an empty map") : describe(node)));
    return std::nullopt;
  }
  nlohmann::ordered_json patch = nlohmann::ordered_json::object();
  bool ok = true;
  for_each_key(
      node, field,
      [&](const std::string& name, const YAML::Node& value, int line, const std::string& path) {
        std::optional<nlohmann::ordered_json> json = to_json(value);
        if (!json) {
          error(line, path,
                "must be a number, true/false, a name or a list, got " + describe(value));
          ok = false;
          return;
        }
        // Each key alone, so every bad key is reported, in the words /admin/config uses
        // ("KEY: what is wrong", the key being the setting's name).
        nlohmann::ordered_json one = nlohmann::ordered_json::object();
        one[name] = *json;
        const Result<FaultSettings> merged = merge_fault_settings(FaultSettings{}, one.dump());
        if (!merged) {
          const std::string& message = merged.error().message;
          const std::string prefix = name + ": ";
          error(line, path, message.starts_with(prefix) ? message.substr(prefix.size()) : message);
          ok = false;
          return;
        }
        patch[name] = std::move(*json);
      });
  if (!ok) return std::nullopt;
  // The keys together too: a rule across settings must not first show at play time.
  const std::string text = patch.dump();
  if (const Result<FaultSettings> merged = merge_fault_settings(FaultSettings{}, text); !merged) {
    error(line_of(node), field, merged.error().message);
    return std::nullopt;
  }
  return text;
}

std::optional<ScenarioAction> ScenarioParser::parse_action(const YAML::Node& node,
                                                           const std::string& field) {
  if (node.IsScalar() && node.Scalar() == "crash") return ScenarioAction::kCrash;
  if (node.IsScalar() && node.Scalar() == "restart") return ScenarioAction::kRestart;
  error(line_of(node), field, "must be crash or restart, got " + describe(node));
  return std::nullopt;
}

}  // namespace

std::vector<uint64_t> scenario_fleet_ids(const Config& config) {
  std::vector<uint64_t> ids;
  ids.reserve(config.workers.count);
  for (uint64_t i = 0; i < config.workers.count; ++i) {
    ids.push_back(config.workers.worker_id_base + i);
  }
  return ids;
}

Result<FaultScenario> parse_fault_scenario(std::string_view yaml_text, std::string_view file_name,
                                           std::span<const uint64_t> fleet_ids) {
  try {
    ScenarioParser parser(file_name, fleet_ids);
    return parser.parse(yaml_text);
  } catch (const std::exception& e) {
    // yaml-cpp may throw from accessors on malformed trees; nothing escapes the parser.
    return make_error("scenario", std::string(file_name) + ": cannot load scenario: " + e.what());
  } catch (...) {
    return make_error("scenario", std::string(file_name) + ": cannot load scenario");
  }
}

Result<FaultScenario> load_fault_scenario(const Config& config) {
  const std::string& path = config.faults.scenario;
  if (path.empty()) return FaultScenario{};
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return make_error("config",
                      "faults.scenario: cannot read '" + path + "' (" + std::strerror(errno) + ")");
  }
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), file)) > 0 && text.size() <= kMaxFileBytes) {
    text.append(buf, n);
  }
  const int read_errno = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (read_errno != 0) {
    return make_error("config", "faults.scenario: cannot read '" + path + "' (" +
                                    std::strerror(read_errno) + ")");
  }
  if (text.size() > kMaxFileBytes) {
    return make_error("config", "faults.scenario: cannot read '" + path + "' (larger than 16 MiB)");
  }
  const std::vector<uint64_t> ids = scenario_fleet_ids(config);
  Result<FaultScenario> scenario = parse_fault_scenario(text, path, ids);
  if (!scenario) return make_error("config", scenario.error().message);
  return scenario;
}

}  // namespace kvmock
