// Dynamo's NATS request plane against a real nats-server: the request goes as a NATS
// request on `{ns}_{comp}.{endpoint}-{id:x}`, the empty reply is the ACK, and the tokens
// come back over the same call-home TCP stream as on the TCP plane.
#include "transport/dynamo/nats_request_plane.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>
#include <utility>

#include "tests/integration/dynamo/fake_generating_worker.h"
#include "tests/support/dynamo_frontend_client.h"
#include "tests/support/nats_server.h"
#include "transport/dynamo/worker_endpoints.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kInstance = 0x1d2c3b4a;

class DynamoNatsRequestPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::nats_server_available()) << "nats-server is not installed";
    ASSERT_TRUE(nats_server_.start());
    NatsClientOptions options;
    options.urls = {nats_server_.url()};
    auto client = NatsClient::connect(options);
    ASSERT_TRUE(client.ok()) << client.error().message;
    nats_ = std::move(*client);
    ASSERT_TRUE(nats_->wait_connected(5000));
    ASSERT_EQ(natsConnection_ConnectTo(&requester_, nats_server_.url().c_str()), NATS_OK);

    dispatcher_ = std::make_unique<DynamoRequestDispatcher>(io_, CallHomeSettings{}, metrics_);
    serve_dynamo_worker(*dispatcher_, kInstance, worker_, GenerateEndpointOptions{}, {}, {});
    plane_ = std::make_unique<DynamoNatsRequestPlane>(*nats_, *dispatcher_, "dynamo", "backend");
    ASSERT_TRUE(plane_->serve_instance(kInstance).ok());
    ASSERT_TRUE(nats_->flush(5000).ok());
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (plane_) plane_->stop();
    if (requester_) natsConnection_Destroy(requester_);
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  // Sends `payload` as a NATS request; returns the reply's text, or nullopt on timeout.
  std::optional<std::string> request(const std::string& subject, const std::string& payload) {
    natsMsg* reply = nullptr;
    if (natsConnection_Request(&reply, requester_, subject.c_str(), payload.data(),
                               static_cast<int>(payload.size()), 5000) != NATS_OK) {
      return std::nullopt;
    }
    std::string text(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    return text;
  }

  testing::NatsServer nats_server_;
  std::unique_ptr<NatsClient> nats_;
  natsConnection* requester_ = nullptr;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread io_thread_;
  MetricsRegistry metrics_;
  testing::FakeGeneratingWorker worker_{kInstance};
  std::unique_ptr<DynamoRequestDispatcher> dispatcher_;
  std::unique_ptr<DynamoNatsRequestPlane> plane_;
};

TEST_F(DynamoNatsRequestPlaneTest, SubjectIsNamespaceComponentEndpointAndHexId) {
  EXPECT_EQ(DynamoNatsRequestPlane::subject("dynamo", "backend", "generate", 0x694d99c0acbd2001),
            "dynamo_backend.generate-694d99c0acbd2001");
}

TEST_F(DynamoNatsRequestPlaneTest, GenerateIsAckedEmptyAndStreamsOverCallHome) {
  testing::DynamoFrontendClient frontend;
  std::string payload;
  const auto sent = frontend.make_request(
      &payload, json{{"token_ids", {1, 2, 3}}, {"stop_conditions", {{"max_tokens", 3}}}}.dump());
  EXPECT_EQ(request("dynamo_backend.generate-1d2c3b4a", payload), std::optional<std::string>(""));
  auto stream = frontend.stream_for(sent.subject);
  ASSERT_NE(stream, nullptr);
  const auto response = stream->read_all();
  EXPECT_EQ(response.protocol_error, "");
  ASSERT_EQ(response.items.size(), 3u);
  EXPECT_EQ(response.items[2]["data"]["finish_reason"], "length");
  EXPECT_EQ(response.items[2]["data"]["completion_usage"]["prompt_tokens_details"]["cached_tokens"],
            3);
  EXPECT_TRUE(response.sentinel);
  EXPECT_EQ(metrics_
                .counter("kvmock_dynamo_requests_total", "",
                         {{"plane", "nats"}, {"endpoint", "generate"}})
                .value(),
            1u);
}

// Issue #17: the stop conditions and the seed of a PreprocessedRequest reach the worker, and
// the worker's vLLM finish reasons go back in Dynamo's words ("abort" is "cancelled").
TEST_F(DynamoNatsRequestPlaneTest, StopConditionsReachTheWorkerAndFinishReasonsUseDynamosWords) {
  testing::DynamoFrontendClient frontend;
  const json body = {
      {"token_ids", {1, 2, 3}},
      {"stop_conditions",
       {{"max_tokens", 2}, {"min_tokens", 1}, {"ignore_eos", true}, {"stop_token_ids", {9, 10}}}},
      {"sampling_options", {{"seed", 77}}}};
  for (const auto& [reason, wire] : {std::pair<std::string, std::string>{"stop", "stop"},
                                     {"abort", "cancelled"},
                                     {"length", "length"}}) {
    worker_.finish_with(reason);
    std::string payload;
    const auto sent = frontend.make_request(&payload, body.dump());
    ASSERT_EQ(request("dynamo_backend.generate-1d2c3b4a", payload), std::optional<std::string>(""));
    auto stream = frontend.stream_for(sent.subject);
    ASSERT_NE(stream, nullptr);
    const auto response = stream->read_all();
    ASSERT_FALSE(response.items.empty()) << reason;
    EXPECT_EQ(response.items.back()["data"]["finish_reason"], wire) << reason;
  }
  const auto requests = worker_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].stop_token_ids, (std::vector<TokenId>{9, 10}));
  EXPECT_EQ(requests[0].min_tokens, 1u);
  EXPECT_TRUE(requests[0].ignore_eos);
  EXPECT_EQ(requests[0].seed, 77u);
}

TEST_F(DynamoNatsRequestPlaneTest, GarbagePayloadIsRepliedWithTheError) {
  const auto reply = request("dynamo_backend.generate-1d2c3b4a", "garbage");
  ASSERT_TRUE(reply.has_value());
  EXPECT_NE(reply->find("Invalid request payload"), std::string::npos) << *reply;
  // The plane goes on serving.
  testing::DynamoFrontendClient frontend;
  std::string payload;
  const auto sent =
      frontend.make_request(&payload, R"({"token_ids":[1],"stop_conditions":{"max_tokens":1}})");
  EXPECT_EQ(request("dynamo_backend.generate-1d2c3b4a", payload), std::optional<std::string>(""));
  auto stream = frontend.stream_for(sent.subject);
  ASSERT_NE(stream, nullptr);
  EXPECT_TRUE(stream->read_all().sentinel);
}

}  // namespace
}  // namespace kvmock
