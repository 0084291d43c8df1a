#include "daemon/check_config_command.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "config/config_writer.h"

namespace kvmock {
namespace {

struct Outcome {
  int status;
  std::string out;
  std::string err;
};

Outcome run(std::vector<std::string> args) {
  args.insert(args.begin(), "check-config");
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int status = run_check_config_command(static_cast<int>(argv.size()), argv.data());
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  return {status, std::move(out), std::move(err)};
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f != nullptr) {
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  return path;
}

TEST(CheckConfigCommand, ValidConfigPrintsTheEffectiveYamlWithSetsApplied) {
  const std::string path = write_temp("kvmock_ok.yaml", "workers:\n  count: 1\n");
  const Outcome o = run({"--config", path, "--set", "workers.engine.block_size=32"});
  std::remove(path.c_str());
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("workers:\n  count: 1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("    block_size: 32\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("relays: []\n"), std::string::npos);
  EXPECT_EQ(o.err, "");
}

TEST(CheckConfigCommand, BadConfigPrintsTheMessageAndReturnsTwo) {
  const std::string path = write_temp("kvmock_bad.yaml", "workers:\n  cuont: 1\n");
  const Outcome o = run({"--config=" + path});
  std::remove(path.c_str());
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, path + ":2: workers.cuont: unknown key (did you mean count?)\n");
  EXPECT_EQ(o.out, "");
}

TEST(CheckConfigCommand, SecretsAreRedacted) {
  const Outcome o = run({"--set", "nats.token=s3cret"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out.find("s3cret"), std::string::npos);
  EXPECT_NE(o.out.find("token: \"<redacted>\""), std::string::npos);
}

TEST(CheckConfigCommand, APasswordOrTokenInTheNatsUrlIsRedacted) {
  const Outcome o = run({"--set=nats.url=nats://alice:hunter2@10.0.0.1:4222,nats://t0ken@h:4222"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out.find("hunter2"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("t0ken"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("url: \"nats://alice:***@10.0.0.1:4222,nats://***@h:4222\""),
            std::string::npos)
      << o.out;
}

TEST(CheckConfigCommand, CredentialFilesAreNamedButNeverPrinted) {
  const std::string creds = write_temp("kvmock_creds", "-----BEGIN NATS USER JWT-----\nSEEDTEXT\n");
  const Outcome o = run({"--set", "nats.credentials_file=" + creds});
  std::remove(creds.c_str());
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find(creds), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("SEEDTEXT"), std::string::npos) << o.out;
}

TEST(CheckConfigCommand, UnknownArgumentIsAUsageError) {
  const Outcome o = run({"--confg", "x.yaml"});
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.err.find("unknown flag --confg (did you mean --config?)"), std::string::npos)
      << o.err;
  const Outcome missing = run({"--config"});
  EXPECT_EQ(missing.status, 2);
}

TEST(CheckConfigCommand, ReferencePrintsTheKeyTable) {
  const Outcome o = run({"--reference"});
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, config_reference_markdown());
}

}  // namespace
}  // namespace kvmock
