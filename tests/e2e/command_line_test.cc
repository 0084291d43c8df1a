// Every subcommand reads its flags the same way: "--flag VALUE" and "--flag=VALUE" both
// work, and a mistake gets a one-line reason naming the flag, then the usage.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "tests/support/daemon_harness.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using testing::kvmockd_path;
using testing::run_process;

TEST(CommandLine, RunAcceptsConfigWithAnEqualsSign) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  const std::string config =
      testing::write_temp_file("nats:\n  url: " + server.url() +
                               "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
                               "\nworkers:\n  count: 1\n  http_base_port: 0\n");
  testing::ChildProcess daemon({kvmockd_path(), "run", "--config=" + config,
                                "--set=shutdown.grace_s=1", "--log-level=warn"});
  const bool ready = testing::wait_for_status(admin_port, "/ready", 200, std::chrono::seconds(10));
  daemon.signal(SIGTERM);
  const int status = daemon.wait(std::chrono::seconds(10));
  ::unlink(config.c_str());
  EXPECT_TRUE(ready) << daemon.output();
  EXPECT_EQ(status, 0) << daemon.output();
  // --log-level=warn took effect: the info lines of a clean start and stop are gone.
  EXPECT_EQ(daemon.output().find("running; SIGINT or SIGTERM stops it"), std::string::npos)
      << daemon.output();
}

TEST(CommandLine, CheckConfigAcceptsConfigAndSetWithAnEqualsSign) {
  const std::string config = testing::write_temp_file("workers:\n  count: 3\n");
  const auto result = run_process({kvmockd_path(), "check-config", "--config=" + config,
                                   "--set=workers.engine.block_size=32", "--log-format=json"},
                                  "");
  ::unlink(config.c_str());
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_NE(result.out.find("workers:\n  count: 3\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("    block_size: 32\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("log:\n  level: info\n  format: json\n"), std::string::npos)
      << result.out;
}

TEST(CommandLine, DecodeAcceptsNumbersWithAnEqualsSign) {
  const auto result =
      run_process({kvmockd_path(), "decode", "--hex", "--block-size=16", "--worker-id=7"},
                  testing::read_test_data("vllm-map.hex"));
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_NE(result.out.find("\"worker_id\":7"), std::string::npos) << result.out;
}

TEST(CommandLine, MistakesNameTheFlagAndPrintTheUsage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"run", "--confg", "x.yaml"}, "kvmockd run: unknown flag --confg (did you mean --config?)"},
      {{"run", "--config"}, "kvmockd run: --config needs a value"},
      {{"check-config", "--reference=yes"}, "kvmockd check-config: --reference takes no value"},
      {{"decode", "--block-size", "1x"},
       "kvmockd decode: --block-size: expected a non-negative integer, got '1x'"},
      {{"replay", "--workers=-1"}, "kvmockd replay: --workers: must be at least 0, got '-1'"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {kvmockd_path()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto result = run_process(argv, "");
    EXPECT_EQ(result.exit_status, 2) << c.message;
    EXPECT_EQ(result.err.rfind(c.message + "\nusage: kvmockd " + c.args[0], 0), 0u) << result.err;
  }
}

TEST(CommandLine, EveryCommandHasItsOwnHelp) {
  for (const char* command : {"run", "replay", "decode", "check-config"}) {
    const auto result = run_process({kvmockd_path(), command, "--help"}, "");
    EXPECT_EQ(result.exit_status, 0) << command;
    EXPECT_EQ(result.out.rfind(std::string("usage: kvmockd ") + command, 0), 0u) << result.out;
    EXPECT_EQ(result.err, "") << command;
  }
}

}  // namespace
}  // namespace kvmock
