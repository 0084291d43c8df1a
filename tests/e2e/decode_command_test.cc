// The built kvmockd binary, driven as a user would drive it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using testing::kvmockd_path;
using testing::read_test_data;
using testing::run_process;

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(DecodeCommand, HexMapPayloadPrintsEngineEventsThenRouterEvents) {
  const auto result =
      run_process({kvmockd_path(), "decode", "--hex", "--block-size", "16", "--worker-id", "7"},
                  read_test_data("vllm-map.hex"));
  ASSERT_EQ(result.exit_status, 0) << result.err;
  const auto lines = json_lines(result.out);
  ASSERT_EQ(lines.size(), 6u) << result.out;
  EXPECT_EQ(lines[0]["kind"], "engine");
  EXPECT_EQ(lines[0]["type"], "BlockStored");
  EXPECT_EQ(lines[0]["block_hashes"][0].get<uint64_t>(), 0x1111111111111111ull);
  EXPECT_EQ(lines[1]["type"], "BlockRemoved");
  EXPECT_EQ(lines[2]["type"], "AllBlocksCleared");
  EXPECT_EQ(lines[3]["kind"], "router");
  EXPECT_EQ(lines[3]["event"]["worker_id"], 7);
  const auto& block = lines[3]["event"]["event"]["data"]["stored"]["blocks"][0];
  EXPECT_EQ(block["block_hash"].get<uint64_t>(), 0x1111111111111111ull);
  EXPECT_NE(block["tokens_hash"].get<uint64_t>(), 0u);
  EXPECT_EQ(lines[4]["event"]["event"]["data"]["removed"]["block_hashes"][0].get<uint64_t>(),
            0x1111111111111111ull);
  EXPECT_EQ(lines[5]["event"]["event"]["data"], "cleared");
}

TEST(DecodeCommand, RawBytesAreAcceptedWithoutHexFlag) {
  // vllm-positional-int: the store has 2 token ids for 2 blocks of 16, so it is reported.
  const std::string hex =
      "93cb41da39de002000009297ab426c6f636b53746f7265649221222092010210c0a347505593ac426c6f636b"
      "52656d6f7665649122a753544f52414745c0";
  std::string raw;
  for (size_t i = 0; i < hex.size(); i += 2)
    raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  const auto result = run_process({kvmockd_path(), "decode"}, raw);
  ASSERT_EQ(result.exit_status, 0) << result.err;
  const auto lines = json_lines(result.out);
  ASSERT_EQ(lines.size(), 4u) << result.out;
  EXPECT_EQ(lines[2]["kind"], "router");
  EXPECT_EQ(lines[2]["event"]["storage_tier"], "disk");
  EXPECT_EQ(lines[3]["kind"], "issue");
  EXPECT_EQ(lines[3]["reason"], "token_count_mismatch");
}

TEST(DecodeCommand, MalformedPayloadExitsOneWithAOneLineReason) {
  const auto result = run_process({kvmockd_path(), "decode", "--hex"}, "93cb41da39");
  EXPECT_EQ(result.exit_status, 1);
  EXPECT_TRUE(result.out.empty());
  EXPECT_NE(result.err.find("kvmockd decode: malformed payload"), std::string::npos) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1);
}

TEST(DecodeCommand, BadHexAndBadFlagsAreRejected) {
  EXPECT_EQ(run_process({kvmockd_path(), "decode", "--hex"}, "zz").exit_status, 1);
  EXPECT_EQ(run_process({kvmockd_path(), "decode", "--block-size", "0"}, "").exit_status, 2);
  EXPECT_EQ(run_process({kvmockd_path(), "decode", "--frobnicate"}, "").exit_status, 2);
}

TEST(Kvmockd, VersionAndHelpExitZero) {
  const auto version = run_process({kvmockd_path(), "--version"}, "");
  EXPECT_EQ(version.exit_status, 0);
  EXPECT_EQ(version.out.rfind("kvmockd ", 0), 0u);
  const auto help = run_process({kvmockd_path(), "--help"}, "");
  EXPECT_EQ(help.exit_status, 0);
  EXPECT_NE(help.out.find("decode"), std::string::npos);
  EXPECT_EQ(run_process({kvmockd_path(), "nonsense"}, "").exit_status, 2);
}

}  // namespace
}  // namespace kvmock
