// deploy/compose.yaml: NATS with JetStream, a kvmockd with mock workers and a relay-only
// kvmockd, each kvmockd's mounted config valid under its container environment, published
// ports equal to the ports that config listens on, and worker ids unique across services;
// the `dynamo` profile adds etcd and a kvmockd whose workers register there.
#include <gtest/gtest.h>

#include "tests/unit/deploy/deploy_files.h"

namespace kvmock {
namespace {

using namespace deploy_test;

struct KvmockService {
  std::string name;
  YAML::Node node;
  std::filesystem::path config_file;  // host side of the mount at kConfigMountPath
  std::map<std::string, std::string> env;
  bool in_profile = false;  // started only with `--profile ...`
};

class ComposeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    auto documents = load_documents(deploy_dir() / "compose.yaml", error);
    ASSERT_EQ(documents.size(), 1u) << error;
    compose_ = documents.front();
    ASSERT_TRUE(compose_["services"].IsMap());
    const auto stages = parse_dockerfile(read_text(source_root() / "Dockerfile"));
    ASSERT_FALSE(stages.empty());
    const auto image_env = stages.back().env();
    for (const auto& entry : compose_["services"]) {
      const std::string name = entry.first.Scalar();
      const YAML::Node& service = entry.second;
      if (scalar(service["image"]).rfind("kvmock", 0) != 0) continue;
      bool in_profile = false;  // yaml-cpp throws on a missing key of a const node
      for (const auto& field : service) in_profile |= field.first.Scalar() == "profiles";
      KvmockService s{name, service, {}, image_env, in_profile};
      for (const auto& var : service["environment"]) s.env[var.first.Scalar()] = scalar(var.second);
      for (const auto& volume : service["volumes"]) {
        const std::string spec = scalar(volume);
        const size_t colon = spec.find(':');
        if (colon == std::string::npos) continue;
        std::string target = spec.substr(colon + 1);
        target = target.substr(0, target.find(':'));
        if (target == kConfigMountPath) s.config_file = deploy_dir() / spec.substr(0, colon);
      }
      (s.in_profile ? profiled_ : kvmocks_).push_back(std::move(s));
    }
  }

  Config config_of(const KvmockService& s) {
    auto config =
        effective_config(read_text(s.config_file), s.config_file.filename().string(), s.env);
    EXPECT_TRUE(config.ok()) << s.name << ": " << config.error().message;
    return config.ok() ? *config : Config{};
  }

  YAML::Node compose_;
  std::vector<KvmockService> kvmocks_;   // the default stack
  std::vector<KvmockService> profiled_;  // the optional profiles' kvmockds
};

TEST_F(ComposeTest, NatsRunsWithJetStreamAndPublishesTheClientPort) {
  const YAML::Node& nats = compose_["services"]["nats"];
  ASSERT_TRUE(nats.IsMap());
  bool jetstream = false;
  for (const auto& arg : nats["command"]) jetstream |= scalar(arg) == "--jetstream";
  EXPECT_TRUE(jetstream);
  bool client_port = false;
  for (const auto& port : nats["ports"]) client_port |= scalar(port) == "4222:4222";
  EXPECT_TRUE(client_port);
}

TEST_F(ComposeTest, OneWorkerServiceAndOneRelayOnlyServiceMountTheirConfigs) {
  ASSERT_EQ(kvmocks_.size(), 2u);
  int workers = 0, relays = 0;
  for (const KvmockService& s : kvmocks_) {
    ASSERT_FALSE(s.config_file.empty()) << s.name << " mounts no config at " << kConfigMountPath;
    ASSERT_TRUE(std::filesystem::exists(s.config_file)) << s.config_file;
    const Config config = config_of(s);
    if (config.workers.count > 0) ++workers;
    if (config.workers.count == 0 && !config.relays.empty()) ++relays;
  }
  EXPECT_EQ(workers, 1);
  EXPECT_EQ(relays, 1);
}

TEST_F(ComposeTest, MountedConfigsTalkToTheComposeNatsServer) {
  for (const KvmockService& s : kvmocks_) {
    const Config config = config_of(s);
    EXPECT_EQ(config.nats.url, "nats://nats:4222") << s.name;
    EXPECT_EQ(config.nats.event_plane, EventPlane::kJetStream) << s.name;
    bool waits_for_nats = false;
    for (const auto& dep : s.node["depends_on"]) {
      waits_for_nats |= dep.first.Scalar() == "nats" || dep.first.Scalar().rfind("kvmock", 0) == 0;
    }
    EXPECT_TRUE(waits_for_nats) << s.name;
  }
}

TEST_F(ComposeTest, PublishedContainerPortsAreExactlyTheConfiguredOnes) {
  for (const KvmockService& s : kvmocks_) {
    const Config config = config_of(s);
    std::set<uint16_t> published;
    for (const auto& port : s.node["ports"]) {
      const std::string spec = scalar(port);
      const std::string container = spec.substr(spec.rfind(':') + 1);
      const std::string host = spec.substr(0, spec.rfind(':'));
      published.merge(port_range(container));
      EXPECT_EQ(port_range(host.substr(host.rfind(':') + 1)).size(), port_range(container).size())
          << s.name << ": " << spec;
    }
    EXPECT_EQ(published, ports_of(config).all()) << s.name;
    EXPECT_EQ(config.admin.listen.rfind("0.0.0.0:", 0), 0u) << s.name;
    if (config.workers.count > 0) {
      EXPECT_EQ(config.workers.http_host, "0.0.0.0") << s.name;
    }
  }
}

TEST_F(ComposeTest, WorkerIdsAreUniqueAcrossServices) {
  std::map<uint64_t, std::string> owners;
  for (const KvmockService& s : kvmocks_) {
    const Config config = config_of(s);
    std::vector<uint64_t> ids;
    for (uint32_t i = 0; i < config.workers.count; ++i) {
      ids.push_back(config.workers.worker_id_base + i);
    }
    for (const RelayConfig& relay : config.relays) ids.push_back(relay.worker_id);
    for (uint64_t id : ids) {
      auto [it, fresh] = owners.emplace(id, s.name);
      EXPECT_TRUE(fresh) << "worker id " << id << " used by " << it->second << " and " << s.name;
    }
  }
  EXPECT_GT(owners.size(), 2u);
}

TEST_F(ComposeTest, StopGracePeriodCoversTheShutdownDeadlines) {
  for (const KvmockService& s : kvmocks_) {
    const Config config = config_of(s);
    std::string grace = scalar(s.node["stop_grace_period"], "10s");  // compose's default
    ASSERT_EQ(grace.back(), 's') << s.name;
    grace.pop_back();
    EXPECT_GT(std::stoul(grace), config.shutdown.grace_s + config.shutdown.flush_deadline_s)
        << s.name;
  }
}

TEST_F(ComposeTest, TheDynamoProfileRegistersItsWorkersInTheComposeEtcd) {
  ASSERT_EQ(profiled_.size(), 1u);
  const KvmockService& s = profiled_.front();
  EXPECT_EQ(scalar(s.node["profiles"][0]), "dynamo");
  EXPECT_EQ(scalar(compose_["services"]["etcd"]["profiles"][0]), "dynamo");
  ASSERT_FALSE(s.config_file.empty()) << s.name << " mounts no config at " << kConfigMountPath;
  const Config config = config_of(s);
  EXPECT_EQ(config.dynamo.discovery, DynamoDiscoveryKind::kEtcd);
  EXPECT_EQ(config.dynamo.etcd_endpoints, "http://etcd:2379");
  EXPECT_EQ(config.dynamo.tcp_host, s.name) << "the frontend dials the service by name";
  EXPECT_EQ(config.nats.url, "nats://nats:4222");
  EXPECT_GT(config.workers.count, 0u);
  bool model_mounted = false;
  for (const auto& volume : s.node["volumes"]) {
    const std::string spec = scalar(volume);
    model_mounted |= spec.find(":" + config.workers.model.path + ":") != std::string::npos;
  }
  EXPECT_TRUE(model_mounted) << config.workers.model.path << " is not mounted";
  std::set<std::string> dependencies;
  for (const auto& dep : s.node["depends_on"]) dependencies.insert(dep.first.Scalar());
  EXPECT_EQ(dependencies, (std::set<std::string>{"etcd", "nats"}));
  std::set<uint16_t> published;
  for (const auto& port : s.node["ports"]) {
    const std::string spec = scalar(port);
    published.merge(port_range(spec.substr(spec.rfind(':') + 1)));
  }
  EXPECT_EQ(published, ports_of(config).all())
      << "the admin port; the request plane's is ephemeral";
  std::string grace = scalar(s.node["stop_grace_period"], "10s");
  grace.pop_back();
  EXPECT_GT(std::stoul(grace), config.shutdown.grace_s + config.shutdown.flush_deadline_s);
}

TEST_F(ComposeTest, TheRelayFollowsZmqPortsTheWorkerServiceOpens) {
  const KvmockService* workers = nullptr;
  const KvmockService* relay = nullptr;
  for (const KvmockService& s : kvmocks_) {
    (config_of(s).workers.count > 0 ? workers : relay) = &s;
  }
  ASSERT_TRUE(workers && relay);
  const Config w = config_of(*workers);
  ASSERT_TRUE(w.workers.zmq_events.enabled);
  EXPECT_EQ(w.workers.zmq_events.bind_host, "0.0.0.0");
  for (const RelayConfig& r : config_of(*relay).relays) {
    const std::string prefix = "tcp://" + workers->name + ":";
    ASSERT_EQ(r.endpoint.rfind(prefix, 0), 0u) << r.endpoint;
    const unsigned long port = std::stoul(r.endpoint.substr(prefix.size()));
    EXPECT_GE(port, w.workers.zmq_events.base_port);
    EXPECT_LT(port, w.workers.zmq_events.base_port + w.workers.count * w.workers.engine.dp_size);
    EXPECT_EQ(r.block_size, w.workers.engine.block_size);
  }
}

}  // namespace
}  // namespace kvmock
