#include "transport/dynamo/file_discovery.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/manual_clock.h"

namespace kvmock::dynamo {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Sets a file's modification time `age` into the past.
void age_file(const fs::path& path, std::chrono::seconds age) {
  struct stat status {};
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  timespec times[2] = {status.st_atim, status.st_mtim};
  times[1].tv_sec -= age.count();
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

std::chrono::seconds age_of(const fs::path& path) {
  return std::chrono::duration_cast<std::chrono::seconds>(fs::file_time_type::clock::now() -
                                                          fs::last_write_time(path));
}

class FileDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/kvmock-file-discovery-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  FileDiscovery make(uint64_t seed = 7) {
    return FileDiscovery(
        metrics_, FileDiscoveryOptions{root_ / "store", std::chrono::seconds(10), seed, 1000});
  }

  std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path root_;
  MetricsRegistry metrics_;
  test::ManualClock clock_;
};

TEST(PercentEncodeKey, EncodesEveryByteOutsideLettersAndDigitsInUpperCaseHex) {
  EXPECT_EQ(percent_encode_key("dynamo/backend/generate/694d99c0acbd2001"),
            "dynamo%2Fbackend%2Fgenerate%2F694d99c0acbd2001");
  EXPECT_EQ(percent_encode_key("dynamo/backend/worker_kv_indexer_query_dp0/694d99c0acbd2001"),
            "dynamo%2Fbackend%2Fworker%5Fkv%5Findexer%5Fquery%5Fdp0%2F694d99c0acbd2001");
  EXPECT_EQ(percent_encode_key("dynamo/backend/kv-events/1"), "dynamo%2Fbackend%2Fkv%2Devents%2F1");
  EXPECT_EQ(percent_encode_key("a.b~c\xff"), "a%2Eb%7Ec%FF");
}

TEST_F(FileDiscoveryTest, RecordsLiveInTheirBucketDirectoryUnderTheEncodedKey) {
  FileDiscovery discovery = make();
  auto path = discovery.path_for("v1/event_channels/dynamo//kv_metrics/694d99c0acbd2001");
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path,
            root_ / "store" / "v1/event_channels" / "dynamo%2F%2Fkv%5Fmetrics%2F694d99c0acbd2001");
  EXPECT_FALSE(discovery.path_for("v1/instances").ok());
  EXPECT_FALSE(discovery.path_for("v1/instances/").ok());
  EXPECT_FALSE(discovery.path_for("nokey").ok());
}

TEST_F(FileDiscoveryTest, RegisterWritesEachRecordWholeAndLeavesNoTemporaryFile) {
  FileDiscovery discovery = make();
  auto id = discovery.allocate_instance_id(clock_.steady_now());
  ASSERT_TRUE(id.ok()) << id.error().message;
  const std::string value = R"({"type":"Endpoint","instance_id":)" + std::to_string(*id) + "}";
  auto written =
      discovery.register_records(*id, {{"v1/instances/dynamo/backend/generate/abc", value},
                                       {"v1/mdc/dynamo/backend/generate/abc", "{}"}});
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(names_in(root_ / "store" / "v1/instances"),
            std::vector<std::string>{"dynamo%2Fbackend%2Fgenerate%2Fabc"});
  EXPECT_EQ(read_file(root_ / "store/v1/instances/dynamo%2Fbackend%2Fgenerate%2Fabc"), value);
  EXPECT_EQ(read_file(root_ / "store/v1/mdc/dynamo%2Fbackend%2Fgenerate%2Fabc"), "{}");
  EXPECT_NE(metrics_.render().find("kvmock_dynamo_discovery_instances{backend=\"file\"} 1\n"),
            std::string::npos);
}

TEST_F(FileDiscoveryTest, RegisteringAgainReplacesTheFileContent) {
  FileDiscovery discovery = make();
  auto id = discovery.allocate_instance_id(clock_.steady_now());
  ASSERT_TRUE(discovery.register_records(*id, {{"v1/mdc/a/b", "old"}}).ok());
  ASSERT_TRUE(discovery.register_records(*id, {{"v1/mdc/a/b", "new"}}).ok());
  EXPECT_EQ(read_file(root_ / "store/v1/mdc/a%2Fb"), "new");
  EXPECT_EQ(names_in(root_ / "store/v1/mdc").size(), 1u);
}

TEST_F(FileDiscoveryTest, InstanceIdsFollowTheSeedAndStayBelowTwoToTheSixtyThree) {
  FileDiscovery first = make(42);
  FileDiscovery second = make(42);
  FileDiscovery other = make(43);
  std::set<uint64_t> seen;
  for (int i = 0; i < 50; ++i) {
    auto a = first.allocate_instance_id(clock_.steady_now());
    auto b = second.allocate_instance_id(clock_.steady_now());
    auto c = other.allocate_instance_id(clock_.steady_now());
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(*a, *b);
    EXPECT_NE(*a, *c);
    EXPECT_LT(*a, uint64_t{1} << 63);
    EXPECT_NE(*a, 0u);
    EXPECT_TRUE(seen.insert(*a).second);
  }
}

TEST_F(FileDiscoveryTest, FilesAreTouchedOnceTheRefreshIntervalHasPassed) {
  FileDiscovery discovery = make();
  EXPECT_EQ(discovery.refresh_interval(), std::chrono::milliseconds(3333));
  const auto start = clock_.steady_now();
  auto id = discovery.allocate_instance_id(start);
  ASSERT_TRUE(discovery.register_records(*id, {{"v1/mdc/a/b", "x"}}).ok());
  const fs::path file = root_ / "store/v1/mdc/a%2Fb";
  age_file(file, std::chrono::seconds(8));

  discovery.tick(start + std::chrono::seconds(3));  // not due yet
  EXPECT_GE(age_of(file), std::chrono::seconds(7));
  discovery.tick(start + std::chrono::milliseconds(3333));
  EXPECT_LE(age_of(file), std::chrono::seconds(1));
  EXPECT_EQ(read_file(file), "x");

  age_file(file, std::chrono::seconds(8));
  discovery.tick(start + std::chrono::seconds(5));  // the next refresh is 3.3 s after the last
  EXPECT_GE(age_of(file), std::chrono::seconds(7));
  discovery.tick(start + std::chrono::seconds(7));
  EXPECT_LE(age_of(file), std::chrono::seconds(1));
}

TEST_F(FileDiscoveryTest, AFileAReaderDeletedIsWrittenAgainOnRefresh) {
  FileDiscovery discovery = make();
  const auto start = clock_.steady_now();
  auto id = discovery.allocate_instance_id(start);
  ASSERT_TRUE(discovery.register_records(*id, {{"v1/instances/a/b", "alive"}}).ok());
  const fs::path file = root_ / "store/v1/instances/a%2Fb";
  ASSERT_TRUE(fs::remove(file));
  discovery.tick(start + std::chrono::seconds(4));
  EXPECT_EQ(read_file(file), "alive");
}

TEST_F(FileDiscoveryTest, RemoveDeletesOneInstanceAndShutdownDeletesTheRest) {
  FileDiscovery discovery = make();
  auto kept = discovery.allocate_instance_id(clock_.steady_now());
  auto removed = discovery.allocate_instance_id(clock_.steady_now());
  ASSERT_TRUE(
      discovery.register_records(*kept, {{"v1/instances/a/1", "k"}, {"v1/mdc/a/1", "k"}}).ok());
  ASSERT_TRUE(discovery.register_records(*removed, {{"v1/instances/a/2", "r"}}).ok());

  discovery.remove(*removed);
  EXPECT_EQ(names_in(root_ / "store/v1/instances"), std::vector<std::string>{"a%2F1"});
  discovery.shutdown();
  EXPECT_TRUE(names_in(root_ / "store/v1/instances").empty());
  EXPECT_TRUE(names_in(root_ / "store/v1/mdc").empty());
  EXPECT_NE(metrics_.render().find("kvmock_dynamo_discovery_instances{backend=\"file\"} 0\n"),
            std::string::npos);
  EXPECT_FALSE(discovery.allocate_instance_id(clock_.steady_now()).ok());
}

TEST_F(FileDiscoveryTest, AnUnusableRootIsAClearErrorAndCounted) {
  const fs::path blocker = root_ / "not-a-dir";
  std::ofstream(blocker) << "file";
  FileDiscovery discovery(
      metrics_, FileDiscoveryOptions{blocker / "store", std::chrono::seconds(10), 1, 1000});
  auto id = discovery.allocate_instance_id(clock_.steady_now());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().reason, "io_error");
  EXPECT_NE(id.error().message.find("not-a-dir"), std::string::npos) << id.error().message;
  EXPECT_NE(metrics_.render().find(
                "kvmock_dynamo_discovery_errors_total{backend=\"file\",operation=\"write\"} 1\n"),
            std::string::npos);
}

TEST_F(FileDiscoveryTest, AKeyWithoutABucketIsRefused) {
  FileDiscovery discovery = make();
  auto id = discovery.allocate_instance_id(clock_.steady_now());
  auto written = discovery.register_records(*id, {{"instances", "x"}});
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().reason, "bad_key");
  EXPECT_FALSE(discovery.register_records(*id + 1, {}).ok());
}

}  // namespace
}  // namespace kvmock::dynamo
