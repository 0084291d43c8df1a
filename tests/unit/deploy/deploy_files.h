// Readers for the deployment files (Dockerfile, deploy/compose.yaml, deploy/k8s/*.yaml)
// shared by the tests that check them against kvmock's own config loader. No container
// engine or cluster runs on the build machines, so these tests are what keeps the
// manifests honest.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_loader.h"

namespace kvmock::deploy_test {

// Where the image, compose and the StatefulSet expect the config file.
inline constexpr const char* kConfigMountPath = "/etc/kvmock/config.yaml";

inline std::filesystem::path source_root() {
  return std::filesystem::weakly_canonical(std::filesystem::path(KVMOCK_TEST_DATA_DIR) / ".." /
                                           "..");
}
inline std::filesystem::path deploy_dir() { return source_root() / "deploy"; }

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Every YAML document of a file; empty (and `error` set) when it does not parse.
inline std::vector<YAML::Node> load_documents(const std::filesystem::path& path,
                                              std::string& error) {
  try {
    std::vector<YAML::Node> documents;
    for (const YAML::Node& node : YAML::LoadAllFromFile(path.string())) {
      if (node && !node.IsNull()) documents.push_back(node);
    }
    return documents;
  } catch (const YAML::Exception& e) {
    error = path.string() + ": " + e.what();
    return {};
  }
}

inline std::string scalar(const YAML::Node& node, const std::string& fallback = "") {
  return node && node.IsScalar() ? node.Scalar() : fallback;
}

// The ports kvmockd listens on for a config: admin.listen's port and the workers' HTTP
// ports http_base_port .. http_base_port + count - 1.
struct ConfigPorts {
  std::optional<uint16_t> admin;
  std::set<uint16_t> workers;
  std::set<uint16_t> all() const {
    std::set<uint16_t> ports = workers;
    if (admin) ports.insert(*admin);
    return ports;
  }
};

inline ConfigPorts ports_of(const Config& config) {
  ConfigPorts ports;
  const std::string& listen = config.admin.listen;
  if (const size_t colon = listen.rfind(':'); colon != std::string::npos) {
    ports.admin = static_cast<uint16_t>(std::stoul(listen.substr(colon + 1)));
  }
  if (config.workers.http_base_port != 0) {
    for (uint32_t i = 0; i < config.workers.count; ++i) {
      ports.workers.insert(static_cast<uint16_t>(config.workers.http_base_port + i));
    }
  }
  return ports;
}

// "8100-8107" or "9090" (a trailing "/tcp" is ignored).
inline std::set<uint16_t> port_range(std::string text) {
  std::set<uint16_t> ports;
  if (const size_t slash = text.find('/'); slash != std::string::npos) text.resize(slash);
  const size_t dash = text.find('-');
  const unsigned long first = std::stoul(text.substr(0, dash));
  const unsigned long last = dash == std::string::npos ? first : std::stoul(text.substr(dash + 1));
  for (unsigned long p = first; p <= last && p <= 65535; ++p)
    ports.insert(static_cast<uint16_t>(p));
  return ports;
}

// The Dockerfile as instructions, continuation lines joined and comments dropped, split
// into stages.
struct DockerInstruction {
  std::string keyword;  // upper case
  std::string args;
};
struct DockerStage {
  std::string from;  // the FROM line's arguments
  std::vector<DockerInstruction> instructions;

  std::vector<std::string> all(const std::string& keyword) const {
    std::vector<std::string> out;
    for (const auto& i : instructions) {
      if (i.keyword == keyword) out.push_back(i.args);
    }
    return out;
  }
  // ENV KEY=VALUE pairs (several per line allowed; values without spaces).
  std::map<std::string, std::string> env() const {
    std::map<std::string, std::string> out;
    for (const std::string& args : all("ENV")) {
      std::istringstream words(args);
      std::string word;
      while (words >> word) {
        const size_t eq = word.find('=');
        if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
      }
    }
    return out;
  }
  std::set<uint16_t> exposed() const {
    std::set<uint16_t> out;
    for (const std::string& args : all("EXPOSE")) {
      std::istringstream words(args);
      std::string word;
      while (words >> word) out.merge(port_range(word));
    }
    return out;
  }
};

inline std::vector<DockerStage> parse_dockerfile(const std::string& text) {
  std::vector<DockerStage> stages;
  std::istringstream lines(text);
  std::string line, logical;
  auto finish = [&stages](std::string instruction) {
    const size_t start = instruction.find_first_not_of(" \t");
    if (start == std::string::npos) return;
    instruction = instruction.substr(start);
    const size_t space = instruction.find_first_of(" \t");
    DockerInstruction i;
    i.keyword = instruction.substr(0, space);
    for (char& c : i.keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (space != std::string::npos) {
      i.args = instruction.substr(instruction.find_first_not_of(" \t", space));
    }
    if (i.keyword == "FROM") {
      stages.push_back(DockerStage{i.args, {}});
    } else if (!stages.empty()) {
      stages.back().instructions.push_back(std::move(i));
    }
  };
  while (std::getline(lines, line)) {
    const size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    size_t end = line.find_last_not_of(" \t\r");
    if (end != std::string::npos && line[end] == '\\') {
      logical += line.substr(0, end) + " ";
      continue;
    }
    logical += line;
    finish(logical);
    logical.clear();
  }
  finish(logical);
  return stages;
}

// The effective config a container would run with: the file, then `env` (the image's
// ENV overlaid by the container's environment), exactly as kvmockd loads it.
inline Result<Config> effective_config(const std::string& yaml_text, const std::string& name,
                                       const std::map<std::string, std::string>& env) {
  return parse_config(yaml_text, name, {}, env);
}

}  // namespace kvmock::deploy_test
