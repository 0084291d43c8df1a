// `kvmockd run` under a small descriptor limit (`ulimit -n 96` before exec): flooding a
// worker port with idle connections exhausts the descriptors; once the clients leave, the
// worker port and the admin port serve again, and /metrics counts the accept errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

#include "tests/integration/http/raw_connection.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

TEST(HttpFdExhaustion, PortsServeAgainAfterDescriptorsRunOut) {
  testing::NatsServer nats;
  ASSERT_TRUE(nats.start());
  const auto admin_port = static_cast<uint16_t>(testing::free_loopback_port());
  const auto worker_port = static_cast<uint16_t>(testing::free_loopback_port());
  const std::string config = testing::write_temp_file(
      "nats:\n  url: " + nats.url() +
      "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) +
      "\nworkers:\n  count: 1\n  http_base_port: " + std::to_string(worker_port) +
      "\n  engine:\n    num_gpu_blocks: 64\n");
  testing::ChildProcess daemon(
      {"/bin/sh", "-c",
       "ulimit -n 96 && exec " + testing::kvmockd_path() + " run --config " + config});
  ASSERT_TRUE(testing::wait_for_status(admin_port, "/ready", 200, std::chrono::seconds(10)))
      << daemon.output();

  {
    std::vector<std::unique_ptr<testing::RawConnection>> flood;
    for (int i = 0; i < 200; ++i)
      flood.push_back(std::make_unique<testing::RawConnection>(worker_port));
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  EXPECT_TRUE(testing::wait_for_status(worker_port, "/health", 200, std::chrono::seconds(10)))
      << daemon.output();
  EXPECT_TRUE(testing::wait_for_status(admin_port, "/ready", 200, std::chrono::seconds(10)));
  const auto metrics = testing::http_request(admin_port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find(R"(kvmock_http_accept_errors_total{listener="openai",port=")" +
                              std::to_string(worker_port) + R"(",errno="EMFILE"})"),
            std::string::npos)
      << metrics.body.substr(0, 2000);
  EXPECT_NE(daemon.output().find("accept failed (EMFILE"), std::string::npos) << daemon.output();
  daemon.signal(SIGTERM);
  daemon.wait(std::chrono::seconds(15));
  ::unlink(config.c_str());
}

}  // namespace
}  // namespace kvmock
