// The Dockerfile's contract with its users: a bookworm build stage that uses the one
// package list and builds only kvmockd, a slim non-root runtime that reads the config at
// the documented path, binds to all interfaces, checks /health and exposes the ports every
// shipped config listens on. (tests/deploy/dockerfile_build_stage.sh runs the build stage.)
#include <gtest/gtest.h>

#include <regex>

#include "tests/unit/deploy/deploy_files.h"

namespace kvmock {
namespace {

using namespace deploy_test;

class DockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stages_ = parse_dockerfile(read_text(source_root() / "Dockerfile"));
    ASSERT_EQ(stages_.size(), 2u) << "expected a build and a runtime stage";
  }
  const DockerStage& build() const { return stages_.front(); }
  const DockerStage& runtime() const { return stages_.back(); }

  std::vector<DockerStage> stages_;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

TEST_F(DockerfileTest, BuildStageIsBookwormUsingTheOnePackageListAndBuildsOnlyKvmockd) {
  EXPECT_EQ(build().from, "debian:bookworm AS build");
  const std::string runs = joined(build().all("RUN"));
  EXPECT_NE(runs.find("deploy/install-deps.sh"), std::string::npos) << runs;
  EXPECT_NE(runs.find("--target kvmockd"), std::string::npos) << runs;
  EXPECT_NE(runs.find("-DKVMOCK_BUILD_TESTS=OFF"), std::string::npos) << runs;
  EXPECT_NE(runs.find("-DKVMOCK_BUILD_BENCH=OFF"), std::string::npos) << runs;
}

TEST_F(DockerfileTest, RuntimeStageIsSlimAndRunsAsANumericNonRootUser) {
  EXPECT_EQ(runtime().from.rfind("debian:bookworm-slim", 0), 0u) << runtime().from;
  EXPECT_NE(joined(runtime().all("RUN")).find("install-deps.sh --runtime"), std::string::npos);
  const auto users = runtime().all("USER");
  ASSERT_EQ(users.size(), 1u);
  // Numeric, so Kubernetes' runAsNonRoot can verify it.
  EXPECT_TRUE(std::regex_match(users[0], std::regex("[1-9][0-9]*(:[0-9]+)?"))) << users[0];
}

TEST_F(DockerfileTest, RuntimeCopiesTheBinaryTheBuildStageProduces) {
  const auto copies = runtime().all("COPY");
  const std::string runs = joined(build().all("RUN"));
  bool found = false;
  for (const std::string& copy : copies) {
    std::smatch m;
    if (std::regex_search(copy, m,
                          std::regex("^--from=build /src/(\\S+) /usr/local/bin/kvmockd"))) {
      found = true;
      // The path the build stage writes, relative to its WORKDIR /src.
      EXPECT_NE(runs.find("strip " + m[1].str()), std::string::npos) << runs;
    }
  }
  EXPECT_TRUE(found) << joined(copies);
  EXPECT_EQ(build().all("WORKDIR"), std::vector<std::string>{"/src"});
}

TEST_F(DockerfileTest, ConfigIsReadFromTheDocumentedPath) {
  const auto cmd = runtime().all("CMD");
  ASSERT_EQ(cmd.size(), 1u);
  EXPECT_EQ(cmd[0], std::string(R"(["run", "--config", ")") + kConfigMountPath + "\"]");
  EXPECT_EQ(runtime().all("ENTRYPOINT"), std::vector<std::string>{R"(["/usr/local/bin/kvmockd"])"});
}

TEST_F(DockerfileTest, EnvironmentBindsAdminAndWorkersToAllInterfaces) {
  const auto env = runtime().env();
  ASSERT_TRUE(env.count("KVMOCK_ADMIN_LISTEN"));
  EXPECT_EQ(env.at("KVMOCK_ADMIN_LISTEN").rfind("0.0.0.0:", 0), 0u);
  EXPECT_EQ(env.count("KVMOCK_WORKERS_HTTP_HOST") ? env.at("KVMOCK_WORKERS_HTTP_HOST") : "",
            "0.0.0.0");
  // The image's environment must itself be a valid overlay.
  auto config = effective_config("", "image", env);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->workers.http_host, "0.0.0.0");
}

TEST_F(DockerfileTest, HealthcheckCurlsHealthOnTheAdminPort) {
  const auto checks = runtime().all("HEALTHCHECK");
  ASSERT_EQ(checks.size(), 1u);
  auto config = effective_config("", "image", runtime().env());
  ASSERT_TRUE(config.ok());
  const auto admin = ports_of(*config).admin;
  ASSERT_TRUE(admin.has_value());
  EXPECT_NE(checks[0].find("CMD curl -fsS http://127.0.0.1:" + std::to_string(*admin) + "/health"),
            std::string::npos)
      << checks[0];
}

TEST_F(DockerfileTest, ExposesThePortsOfEveryShippedConfigUnderTheImageEnvironment) {
  const std::set<uint16_t> exposed = runtime().exposed();
  std::vector<std::filesystem::path> configs = {deploy_dir() / "compose" / "workers.yaml",
                                                deploy_dir() / "compose" / "relay.yaml"};
  for (const auto& entry :
       std::filesystem::directory_iterator(source_root() / "config" / "examples")) {
    configs.push_back(entry.path());
  }
  for (const auto& path : configs) {
    auto config = effective_config(read_text(path), path.filename().string(), runtime().env());
    ASSERT_TRUE(config.ok()) << path << ": " << config.error().message;
    for (uint16_t port : ports_of(*config).all()) {
      EXPECT_TRUE(exposed.count(port)) << path << " listens on " << port << ", not EXPOSEd";
    }
  }
}

}  // namespace
}  // namespace kvmock
