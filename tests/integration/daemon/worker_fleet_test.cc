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

}  // namespace
}  // namespace kvmock
