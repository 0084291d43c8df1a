#include "daemon/flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvmock {
namespace {

// Owns the argv strings for one parse.
Result<ParsedCommandLine> parse(std::vector<std::string> args, std::span<const FlagSpec> flags) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  return parse_flags(argv, flags);
}

struct Parsed {
  ConfigSource source;
  uint32_t workers = 0;
  bool hex = false;
  double ratio = 0;
  std::vector<FlagSpec> flags;

  Parsed() : flags(config_flags(source, /*with_log=*/true)) {
    flags.push_back(unsigned_flag("--workers", workers));
    flags.push_back(switch_flag("--hex", hex));
    flags.push_back(number_flag("--ratio", [this](double r) -> Result<bool> {
      ratio = r;
      return true;
    }));
  }
};

TEST(Flags, ValueFollowsTheFlagOrAnEqualsSign) {
  Parsed p;
  const auto parsed = parse({"--config", "a.yaml", "--set=x=1", "--set", "y=2", "--workers=8",
                             "--hex", "--ratio", "0.5", "--log-format=json"},
                            p.flags);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, ParsedCommandLine::kRun);
  EXPECT_EQ(p.source.path, "a.yaml");
  EXPECT_EQ(p.source.sets, (std::vector<std::string>{"x=1", "y=2", "log.format=json"}));
  EXPECT_EQ(p.workers, 8u);
  EXPECT_TRUE(p.hex);
  EXPECT_EQ(p.ratio, 0.5);
}

TEST(Flags, AnEmptyValueAfterTheEqualsSignIsAValue) {
  Parsed p;
  ASSERT_TRUE(parse({"--config="}, p.flags).ok());
  EXPECT_EQ(p.source.path, "");
}

TEST(Flags, AFlagWithoutItsValueIsAnError) {
  Parsed p;
  const auto parsed = parse({"--hex", "--config"}, p.flags);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, "usage");
  EXPECT_EQ(parsed.error().message, "--config needs a value");
}

TEST(Flags, ASwitchTakesNoValue) {
  Parsed p;
  const auto parsed = parse({"--hex=yes"}, p.flags);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "--hex takes no value");
}

TEST(Flags, AnUnknownFlagNamesTheClosestKnownOne) {
  Parsed p;
  const auto typo = parse({"--confg=a.yaml"}, p.flags);
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.error().message, "unknown flag --confg (did you mean --config?)");
  const auto far = parse({"--frobnicate"}, p.flags);
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.error().message, "unknown flag --frobnicate");
  const auto positional = parse({"a.yaml"}, p.flags);
  ASSERT_FALSE(positional.ok());
  EXPECT_EQ(positional.error().message, "unexpected argument 'a.yaml'");
}

TEST(Flags, NumbersAreParsedStrictly) {
  Parsed p;
  for (const char* bad : {"x", "8x", "", "0x10", "1.5", " 8"}) {
    const auto parsed = parse({"--workers", bad}, p.flags);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().message,
              "--workers: expected a non-negative integer, got '" + std::string(bad) + "'");
  }
  const auto negative = parse({"--workers=-3"}, p.flags);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().message, "--workers: must be at least 0, got '-3'");
  const auto too_big = parse({"--workers=4294967296"}, p.flags);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().message, "--workers: must be at most 4294967295, got '4294967296'");
  const auto not_a_number = parse({"--ratio", "nan"}, p.flags);
  ASSERT_FALSE(not_a_number.ok());
  EXPECT_EQ(not_a_number.error().message, "--ratio: expected a number, got 'nan'");
}

TEST(Flags, UnsignedFlagsHonourTheirMinimum) {
  uint32_t block_size = 16;
  const std::vector<FlagSpec> flags = {unsigned_flag("--block-size", block_size, /*min=*/1)};
  const auto zero = parse({"--block-size", "0"}, flags);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message, "--block-size: must be at least 1, got '0'");
  ASSERT_TRUE(parse({"--block-size=+32"}, flags).ok());
  EXPECT_EQ(block_size, 32u);
}

TEST(Flags, HelpWinsOverEveryOtherProblem) {
  Parsed p;
  const auto parsed = parse({"--bogus", "--workers", "x", "--help"}, p.flags);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, ParsedCommandLine::kHelp);
  EXPECT_EQ(*parse({"-h"}, p.flags), ParsedCommandLine::kHelp);
}

TEST(Flags, LogFlagsAreSetsAppliedInCommandLineOrder) {
  Parsed p;
  ASSERT_TRUE(parse({"--log-level", "debug", "--set", "log.level=warn"}, p.flags).ok());
  EXPECT_EQ(p.source.sets, (std::vector<std::string>{"log.level=debug", "log.level=warn"}));
  ConfigSource without_log;
  const std::vector<FlagSpec> config_only = config_flags(without_log, /*with_log=*/false);
  EXPECT_FALSE(parse({"--log-level", "debug"}, config_only).ok());
}

TEST(Flags, HandleCommandLinePrintsHelpOrTheErrorWithUsage) {
  ConfigSource source;
  const std::vector<FlagSpec> flags = config_flags(source, /*with_log=*/false);
  std::vector<std::string> help_args = {"demo", "--help"};
  std::vector<char*> help_argv;
  for (auto& arg : help_args) help_argv.push_back(arg.data());
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(handle_command_line(2, help_argv.data(), flags, "usage: demo\n"), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "usage: demo\n");

  std::vector<std::string> bad_args = {"demo", "--set"};
  std::vector<char*> bad_argv;
  for (auto& arg : bad_args) bad_argv.push_back(arg.data());
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(handle_command_line(2, bad_argv.data(), flags, "usage: demo\n"), 2);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "kvmockd demo: --set needs a value\nusage: demo\n");

  std::vector<std::string> ok_args = {"demo", "--config=x.yaml"};
  std::vector<char*> ok_argv;
  for (auto& arg : ok_args) ok_argv.push_back(arg.data());
  EXPECT_EQ(handle_command_line(2, ok_argv.data(), flags, "usage: demo\n"), std::nullopt);
  EXPECT_EQ(source.path, "x.yaml");
}

}  // namespace
}  // namespace kvmock
