// deploy/k8s/: every manifest well-formed and listed in the kustomization; the ConfigMap's
// config valid in every pod of the StatefulSet (the pod's real entrypoint is run to learn
// its worker_id_base); worker id ranges of the replicas disjoint; container ports, Service
// ports and probes consistent with the config; a NATS JetStream cluster big enough for the
// configured stream replicas, whose server config nats-server itself accepts.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/subprocess.h"
#include "tests/unit/deploy/deploy_files.h"

namespace kvmock {
namespace {

using namespace deploy_test;

struct Resource {
  std::string file;
  YAML::Node node;
  std::string kind() const { return scalar(node["kind"]); }
  std::string name() const { return scalar(node["metadata"]["name"]); }
};

class K8sManifestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& entry : std::filesystem::directory_iterator(deploy_dir() / "k8s")) {
      if (entry.path().extension() != ".yaml") continue;
      std::string error;
      auto documents = load_documents(entry.path(), error);
      ASSERT_FALSE(documents.empty()) << entry.path() << " " << error;
      for (const YAML::Node& node : documents) {
        resources_.push_back({entry.path().filename().string(), node});
      }
    }
    const auto stages = parse_dockerfile(read_text(source_root() / "Dockerfile"));
    ASSERT_FALSE(stages.empty());
    image_env_ = stages.back().env();
  }

  const Resource* find(const std::string& kind, const std::string& name) const {
    for (const Resource& r : resources_) {
      if (r.kind() == kind && r.name() == name) return &r;
    }
    return nullptr;
  }
  const Resource& kvmock_set() const {
    const Resource* r = find("StatefulSet", "kvmock");
    if (!r) throw std::runtime_error("no StatefulSet kvmock");
    return *r;
  }
  YAML::Node container() const {
    return kvmock_set().node["spec"]["template"]["spec"]["containers"][0];
  }
  std::string config_text() const {
    const Resource* map = find("ConfigMap", "kvmock-config");
    return map ? scalar(map->node["data"]["config.yaml"]) : "";
  }
  int replicas(const Resource& set) const { return set.node["spec"]["replicas"].as<int>(); }
  // Named container ports of the kvmockd container.
  std::map<std::string, uint16_t> container_ports() const {
    std::map<std::string, uint16_t> ports;
    for (const auto& port : container()["ports"]) {
      ports[scalar(port["name"])] = port["containerPort"].as<uint16_t>();
    }
    return ports;
  }

  // Runs the container's command for pod `ordinal` with a stand-in kvmockd first on PATH
  // that prints the environment kvmockd would get.
  testing::ProcessResult run_entrypoint(const std::string& pod_name) const {
    char dir_template[] = "/tmp/kvmock-entrypoint-XXXXXX";
    const std::string dir = ::mkdtemp(dir_template);
    const std::string fake = dir + "/kvmockd";
    std::ofstream(fake) << "#!/bin/sh\necho \"$KVMOCK_WORKERS_WORKER_ID_BASE $*\"\n";
    ::chmod(fake.c_str(), 0755);
    std::vector<std::string> argv = {"/usr/bin/env", "-i", "PATH=" + dir + ":/usr/bin:/bin"};
    for (const auto& var : container()["env"]) {
      if (var["value"]) {
        argv.push_back(scalar(var["name"]) + "=" + scalar(var["value"]));
      } else if (scalar(var["valueFrom"]["fieldRef"]["fieldPath"]) == "metadata.name") {
        argv.push_back(scalar(var["name"]) + "=" + pod_name);
      }
    }
    for (const auto& word : container()["command"]) argv.push_back(scalar(word));
    auto result = testing::run_process(argv, "");
    ::unlink(fake.c_str());
    ::rmdir(dir.c_str());
    return result;
  }

  // The environment kvmockd runs with in pod `ordinal`: the image's ENV, the container's
  // literal env, and what the entrypoint exports.
  std::map<std::string, std::string> pod_env(int ordinal) const {
    std::map<std::string, std::string> env = image_env_;
    for (const auto& var : container()["env"]) {
      if (var["value"]) env[scalar(var["name"])] = scalar(var["value"]);
    }
    const auto run = run_entrypoint("kvmock-" + std::to_string(ordinal));
    EXPECT_EQ(run.exit_status, 0) << run.err;
    env["KVMOCK_WORKERS_WORKER_ID_BASE"] = run.out.substr(0, run.out.find(' '));
    return env;
  }

  std::vector<Resource> resources_;
  std::map<std::string, std::string> image_env_;
};

TEST_F(K8sManifestsTest, EveryManifestHasApiVersionKindAndNameAndIsInTheKustomization) {
  std::set<std::string> files, listed;
  for (const Resource& r : resources_) {
    EXPECT_FALSE(scalar(r.node["apiVersion"]).empty()) << r.file;
    EXPECT_FALSE(r.kind().empty()) << r.file;
    if (r.kind() == "Kustomization") {
      for (const auto& file : r.node["resources"]) listed.insert(scalar(file));
    } else {
      EXPECT_FALSE(r.name().empty()) << r.file << " " << r.kind();
      files.insert(r.file);
    }
  }
  EXPECT_EQ(files, listed);
  for (const char* kind : {"ConfigMap", "StatefulSet", "Service"}) {
    EXPECT_TRUE(std::any_of(resources_.begin(), resources_.end(), [kind](const Resource& r) {
      return r.kind() == kind;
    })) << kind;
  }
}

TEST_F(K8sManifestsTest, ConfigMapConfigIsValidInEveryPod) {
  ASSERT_FALSE(config_text().empty());
  const int pods = replicas(kvmock_set());
  ASSERT_GT(pods, 1);
  for (int ordinal = 0; ordinal < pods; ++ordinal) {
    auto config = effective_config(config_text(), "kvmock-config", pod_env(ordinal));
    ASSERT_TRUE(config.ok()) << "pod " << ordinal << ": " << config.error().message;
    EXPECT_GT(config->workers.count, 0u);
  }
}

TEST_F(K8sManifestsTest, EntrypointSetsTheBaseFromTheOrdinalTimesWorkersPerPod) {
  auto config = effective_config(config_text(), "kvmock-config", image_env_);
  ASSERT_TRUE(config.ok()) << config.error().message;
  std::map<std::string, std::string> literal;
  for (const auto& var : container()["env"]) literal[scalar(var["name"])] = scalar(var["value"]);
  EXPECT_EQ(literal["WORKERS_PER_POD"], std::to_string(config->workers.count));
  const auto first = run_entrypoint("kvmock-0");
  const auto third = run_entrypoint("kvmock-2");
  ASSERT_EQ(first.exit_status, 0) << first.err;
  EXPECT_EQ(first.out, literal["WORKER_ID_OFFSET"] + " run --config " + kConfigMountPath + "\n");
  EXPECT_EQ(std::stoull(third.out) - std::stoull(first.out), 2 * config->workers.count);
}

TEST_F(K8sManifestsTest, EntrypointRefusesAPodNameWithoutAnOrdinal) {
  const auto run = run_entrypoint("kvmock");
  EXPECT_EQ(run.exit_status, 2);
  EXPECT_NE(run.err.find("no ordinal in pod name 'kvmock'"), std::string::npos) << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
}

TEST_F(K8sManifestsTest, WorkerIdRangesOfTheReplicasNeverOverlap) {
  const int pods = replicas(kvmock_set());
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [first, last]
  for (int ordinal = 0; ordinal < pods; ++ordinal) {
    auto config = effective_config(config_text(), "kvmock-config", pod_env(ordinal));
    ASSERT_TRUE(config.ok()) << config.error().message;
    const uint64_t base = config->workers.worker_id_base;
    ranges.emplace_back(base, base + config->workers.count - 1);
    for (const RelayConfig& relay : config->relays)
      ranges.emplace_back(relay.worker_id, relay.worker_id);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    EXPECT_GT(ranges[i].first, ranges[i - 1].second)
        << "[" << ranges[i - 1].first << ", " << ranges[i - 1].second << "] overlaps ["
        << ranges[i].first << ", " << ranges[i].second << "]";
  }
  EXPECT_EQ(ranges.size(), static_cast<size_t>(pods));
}

TEST_F(K8sManifestsTest, ContainerPortsAreTheAdminPortAndEveryWorkerPort) {
  auto config = effective_config(config_text(), "kvmock-config", pod_env(0));
  ASSERT_TRUE(config.ok()) << config.error().message;
  const ConfigPorts expected = ports_of(*config);
  const auto named = container_ports();
  std::set<uint16_t> ports;
  for (const auto& [name, port] : named) ports.insert(port);
  EXPECT_EQ(ports, expected.all());
  ASSERT_TRUE(named.count("admin"));
  EXPECT_EQ(named.at("admin"), expected.admin);
  EXPECT_EQ(config->admin.listen.rfind("0.0.0.0:", 0), 0u);
  EXPECT_EQ(config->workers.http_host, "0.0.0.0");
}

TEST_F(K8sManifestsTest, ServicesSelectThePodsAndExposeTheConfiguredPorts) {
  const auto named = container_ports();
  const YAML::Node labels = kvmock_set().node["spec"]["template"]["metadata"]["labels"];
  std::set<uint16_t> exposed;
  int services = 0;
  bool headless = false;
  for (const Resource& r : resources_) {
    if (r.kind() != "Service" || scalar(r.node["spec"]["selector"]["app.kubernetes.io/name"]) !=
                                     scalar(labels["app.kubernetes.io/name"])) {
      continue;
    }
    ++services;
    headless |= r.name() == scalar(kvmock_set().node["spec"]["serviceName"]) &&
                scalar(r.node["spec"]["clusterIP"]) == "None";
    for (const auto& port : r.node["spec"]["ports"]) {
      const std::string target = scalar(port["targetPort"]);
      ASSERT_TRUE(named.count(target)) << r.name() << " targets unknown port " << target;
      EXPECT_EQ(port["port"].as<uint16_t>(), named.at(target)) << r.name() << " " << target;
      exposed.insert(named.at(target));
    }
  }
  EXPECT_GE(services, 2);
  EXPECT_TRUE(headless) << "the StatefulSet's serviceName must be a headless Service";
  std::set<uint16_t> all;
  for (const auto& [name, port] : named) all.insert(port);
  EXPECT_EQ(exposed, all);
}

TEST_F(K8sManifestsTest, ProbesAreHealthForLivenessAndReadyForReadiness) {
  const auto named = container_ports();
  EXPECT_EQ(scalar(container()["livenessProbe"]["httpGet"]["path"]), "/health");
  EXPECT_EQ(scalar(container()["readinessProbe"]["httpGet"]["path"]), "/ready");
  for (const char* probe : {"livenessProbe", "readinessProbe"}) {
    const std::string port = scalar(container()[probe]["httpGet"]["port"]);
    ASSERT_TRUE(named.count(port)) << probe << " port " << port;
    EXPECT_EQ(port, "admin");
  }
}

TEST_F(K8sManifestsTest, ConfigIsMountedAtTheDocumentedPathAsNonRoot) {
  bool mounted = false;
  for (const auto& mount : container()["volumeMounts"]) {
    if (scalar(mount["mountPath"]) != kConfigMountPath) continue;
    mounted = true;
    EXPECT_EQ(scalar(mount["subPath"]), "config.yaml");
    bool from_config_map = false;
    for (const auto& volume : kvmock_set().node["spec"]["template"]["spec"]["volumes"]) {
      from_config_map |= scalar(volume["name"]) == scalar(mount["name"]) &&
                         scalar(volume["configMap"]["name"]) == "kvmock-config";
    }
    EXPECT_TRUE(from_config_map);
  }
  EXPECT_TRUE(mounted);
  const YAML::Node security = kvmock_set().node["spec"]["template"]["spec"]["securityContext"];
  EXPECT_EQ(scalar(security["runAsNonRoot"]), "true");
  const auto stages = parse_dockerfile(read_text(source_root() / "Dockerfile"));
  const auto users = stages.back().all("USER");
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].substr(0, users[0].find(':')), scalar(security["runAsUser"]));
}

TEST_F(K8sManifestsTest, TerminationGraceCoversTheShutdownDeadlines) {
  auto config = effective_config(config_text(), "kvmock-config", pod_env(0));
  ASSERT_TRUE(config.ok());
  const int grace =
      kvmock_set().node["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as<int>();
  EXPECT_GT(grace, static_cast<int>(config->shutdown.grace_s + config->shutdown.flush_deadline_s));
}

TEST_F(K8sManifestsTest, NatsClusterHoldsTheStreamReplicasAndIsReachableAtTheConfiguredUrl) {
  auto config = effective_config(config_text(), "kvmock-config", pod_env(0));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->nats.event_plane, EventPlane::kJetStream);
  const Resource* nats = find("StatefulSet", "nats");
  ASSERT_NE(nats, nullptr);
  const int servers = replicas(*nats);
  EXPECT_EQ(servers % 2, 1) << "a JetStream (Raft) cluster wants an odd size";
  EXPECT_GE(servers, static_cast<int>(config->nats.stream_replicas));
  EXPECT_GE(servers, 3);

  // nats.url names a Service that forwards the client port to the NATS pods.
  const std::string url = config->nats.url;
  ASSERT_EQ(url.rfind("nats://", 0), 0u) << url;
  const std::string host = url.substr(7, url.rfind(':') - 7);
  const uint16_t port = static_cast<uint16_t>(std::stoul(url.substr(url.rfind(':') + 1)));
  const Resource* service = find("Service", host);
  ASSERT_NE(service, nullptr) << url;
  bool forwards = false;
  for (const auto& p : service->node["spec"]["ports"]) {
    forwards |= p["port"].as<uint16_t>() == port;
  }
  EXPECT_TRUE(forwards);
  EXPECT_EQ(scalar(service->node["spec"]["selector"]["app.kubernetes.io/name"]),
            scalar(nats->node["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]));

  // The server config: JetStream on, one route per replica through the headless Service.
  const Resource* map = find("ConfigMap", "nats-config");
  ASSERT_NE(map, nullptr);
  const std::string conf = scalar(map->node["data"]["nats.conf"]);
  EXPECT_NE(conf.find("jetstream"), std::string::npos);
  const std::string headless = scalar(nats->node["spec"]["serviceName"]);
  ASSERT_NE(find("Service", headless), nullptr);
  for (int i = 0; i < servers; ++i) {
    const std::string route = "nats://nats-" + std::to_string(i) + "." + headless + ":6222";
    EXPECT_NE(conf.find(route), std::string::npos) << route;
  }
  EXPECT_EQ(conf.find("nats://nats-" + std::to_string(servers) + "."), std::string::npos);

  // nats-server accepts it (-t: check the config and exit).
  char path[] = "/tmp/kvmock-nats-conf-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << conf;
  const auto checked = testing::run_process(
      {"/usr/bin/env", "POD_NAME=nats-0", "/usr/sbin/nats-server", "-t", "-c", path}, "");
  ::unlink(path);
  EXPECT_EQ(checked.exit_status, 0) << checked.out << checked.err;
}

}  // namespace
}  // namespace kvmock
