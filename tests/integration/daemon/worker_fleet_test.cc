#include "daemon/worker_fleet.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/support/capturing_event_sink.h"
#include "tests/support/nats_server.h"

namespace kvmock {
namespace {

using testing::NatsServer;

// Whether a TCP socket can bind 127.0.0.1:`port` (that is, no one listens there).
bool port_is_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return bound;
}

// Three workers of two dp ranks each, on a real NATS server and free loopback ports.
class WorkerFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::nats_server_available()) << "nats-server is not installed";
    ASSERT_TRUE(server_.start());
    NatsClientOptions options;
    options.urls = {server_.url()};
    auto client = NatsClient::connect(options);
    ASSERT_TRUE(client.ok()) << client.error().message;
    nats_ = std::move(*client);
    ASSERT_TRUE(nats_->wait_connected(5000));

    base_port_ = testing::free_loopback_port_range(3);
    ASSERT_NE(base_port_, 0);
    config_.nats.namespace_ = "fleet-test";
    config_.workers.count = 3;
    config_.workers.worker_id_base = 500;
    config_.workers.http_base_port = static_cast<uint16_t>(base_port_);
    config_.workers.threads = 1;
    config_.workers.engine.dp_size = 2;
    config_.workers.engine.block_size = 4;
    config_.workers.engine.num_gpu_blocks = 64;
    config_.workers.engine.timing.model = TimingModelKind::kFixed;
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    if (io_thread_.joinable()) io_thread_.join();
  }

  NatsServer server_;
  std::unique_ptr<NatsClient> nats_;
  int base_port_ = 0;
  Config config_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread io_thread_;
  zmq::context_t zmq_;
  test::CapturingEventSink sink_;
  MetricsRegistry metrics_;
};

TEST_F(WorkerFleetTest, StartsTheConfiguredWorkersWithTheirIdsAndPortsAndStopsThem) {
  WorkerFleet fleet(config_, numbered_worker_identities(config_), io_, sink_, *nats_, zmq_,
                    metrics_);
  ASSERT_TRUE(fleet.start().ok());

  ASSERT_EQ(fleet.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(fleet.worker(i).worker_id(), 500 + i);
    EXPECT_EQ(fleet.worker(i).dp_size(), 2u);
    EXPECT_TRUE(fleet.worker(i).ready());
    const int port = base_port_ + static_cast<int>(i);
    EXPECT_EQ(fleet.http_port(i), port);
    EXPECT_FALSE(port_is_free(port)) << "port " << port << " should be taken";
  }

  // The engines run on their own threads: a request to worker 501 finishes.
  std::atomic<bool> finished{false};
  GenerationRequest request;
  request.prompt = {1, 2, 3, 4, 5, 6, 7, 8};
  request.max_tokens = 2;
  GenerationCallbacks callbacks;
  callbacks.on_finish = [&finished](const GenerationFinish&) { finished = true; };
  ASSERT_TRUE(fleet.worker(1).submit(std::move(request), std::move(callbacks)).ok());
  for (int i = 0; i < 500 && !finished; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(finished);
  const auto published = sink_.published();
  ASSERT_FALSE(published.empty());
  EXPECT_EQ(published.front().worker, 501u);

  fleet.stop(std::chrono::seconds(0));
  EXPECT_FALSE(fleet.worker(0).ready());
  GenerationRequest late;
  late.prompt = {1, 2, 3};
  auto refused = fleet.worker(0).submit(std::move(late), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "not_ready");
  for (size_t i = 0; i < 3; ++i) {
    const int port = base_port_ + static_cast<int>(i);
    for (int wait = 0; wait < 200 && !port_is_free(port); ++wait) {  // closed on the io thread
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(port_is_free(port)) << "port " << port << " should be free";
  }
}

// What the scenario runner calls: crash_worker and restart_worker by id.
TEST_F(WorkerFleetTest, ACrashedWorkerRefusesAndItsRestartClearsEachRankOnTheSamePort) {
  WorkerFleet fleet(config_, numbered_worker_identities(config_), io_, sink_, *nats_, zmq_,
                    metrics_);
  ASSERT_TRUE(fleet.start().ok());
  EXPECT_EQ(fleet.crash_worker(999).error().reason, "not_found");
  EXPECT_EQ(fleet.restart_worker(999).error().reason, "not_found");

  ASSERT_TRUE(fleet.crash_worker(501).ok());
  EXPECT_EQ(fleet.crash_worker(501).error().reason, "conflict");
  EXPECT_TRUE(port_is_free(base_port_ + 1)) << "closed before crash_worker returns";
  EXPECT_FALSE(fleet.worker(1).ready());
  EXPECT_EQ(fleet.faults(501), nullptr) << "a crashed worker has no settings";
  EXPECT_NE(fleet.faults(500), nullptr);
  GenerationRequest refused;
  refused.prompt = {1, 2, 3};
  EXPECT_FALSE(fleet.worker(1).submit(std::move(refused), {}).ok());
  const std::vector<WorkerStatus> statuses = fleet.workers();
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_FALSE(statuses[1].running);
  EXPECT_TRUE(statuses[0].running && statuses[2].running);
  EXPECT_TRUE(sink_.cleared().empty());

  auto restarted = fleet.restart_worker(501);
  ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  EXPECT_EQ(*restarted, 501u) << "the same id without Dynamo";
  const auto cleared = sink_.cleared();
  ASSERT_EQ(cleared.size(), 2u) << "one Cleared per dp rank";
  EXPECT_EQ(cleared[0].worker, 501u);
  EXPECT_EQ(cleared[0].rank, 0u);
  EXPECT_EQ(cleared[1].rank, 1u);
  EXPECT_FALSE(port_is_free(base_port_ + 1)) << "listening again on the same port";
  EXPECT_TRUE(fleet.worker(1).ready());
  std::atomic<bool> finished{false};
  GenerationRequest request;
  request.prompt = {1, 2, 3, 4, 5, 6, 7, 8};
  request.max_tokens = 2;
  GenerationCallbacks callbacks;
  callbacks.on_finish = [&finished](const GenerationFinish&) { finished = true; };
  ASSERT_TRUE(fleet.worker(1).submit(std::move(request), std::move(callbacks)).ok());
  for (int i = 0; i < 500 && !finished; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(finished) << "the restarted worker serves";
  // A restart of a running worker bounces it; after stop() nothing is crashed or restarted.
  ASSERT_TRUE(fleet.restart_worker(500).ok());
  EXPECT_EQ(sink_.cleared().size(), 4u);
  fleet.stop(std::chrono::seconds(0));
  EXPECT_EQ(fleet.crash_worker(502).error().reason, "stopped");
  EXPECT_EQ(fleet.restart_worker(502).error().reason, "stopped");
}

}  // namespace
}  // namespace kvmock
