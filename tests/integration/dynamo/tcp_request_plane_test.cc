// The Dynamo TCP request plane end to end: a frontend written from the wire description
// (tests/support/dynamo_frontend_client.h) against DynamoTcpRequestServer with the
// worker endpoints over a fake generating worker.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "core/dynamo/request_frame.h"
#include "tests/integration/dynamo/fake_generating_worker.h"
#include "tests/support/dynamo_frontend_client.h"
#include "transport/dynamo/tcp_request_server.h"
#include "transport/dynamo/worker_endpoints.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::DynamoFrontendClient;
using testing::FakeGeneratingWorker;

constexpr uint64_t kInstance = 0x694d99c0acbd2001;
const std::string kGeneratePath = "694d99c0acbd2001/generate";

std::string generate_body(std::vector<uint32_t> tokens, json max_tokens) {
  return json{{"model", "/models/tiny"},
              {"token_ids", tokens},
              {"stop_conditions",
               {{"max_tokens", max_tokens},
                {"stop", nullptr},
                {"stop_token_ids_hidden", {2}},
                {"min_tokens", nullptr},
                {"ignore_eos", nullptr}}},
              {"eos_token_ids", {2}},
              {"annotations", json::array()},
              {"routing", {{"dp_rank", 0}}}}
      .dump();
}

class DynamoTcpRequestPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override { start(1u << 20); }

  void start(size_t max_message_bytes) {
    CallHomeSettings call_home;
    call_home.max_message_bytes = max_message_bytes;
    dispatcher_ = std::make_unique<DynamoRequestDispatcher>(io_, call_home, metrics_);
    IndexerQueryEndpointOptions query_options;
    query_options.max_answer_bytes = 4096;
    serve_dynamo_worker(*dispatcher_, kInstance, worker_, GenerateEndpointOptions{16, 2},
                        {query_rank0(), query_rank0()}, query_options);
    DynamoTcpServerSettings settings;
    settings.host = "127.0.0.1";
    settings.max_message_bytes = max_message_bytes;
    settings.stalled_frame_timeout = 300ms;
    server_ = std::make_unique<DynamoTcpRequestServer>(io_, *dispatcher_, settings);
    auto port = server_->start();
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    for (auto& thread : io_threads_) thread = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    server_->stop();
    work_.reset();
    io_.stop();
    for (auto& thread : io_threads_) thread.join();
  }

  IndexerQuery query_rank0() {
    return [](const WorkerKvQueryRequest& request) -> WorkerKvQueryResponse {
      if (request.start_event_id && *request.start_event_id > 100) {
        return QueryTooNew{*request.start_event_id, request.end_event_id.value_or(0), 100};
      }
      if (request.start_event_id && *request.start_event_id == 50) {
        // Far more than the 4096-byte answer limit.
        QueryEvents big;
        for (uint64_t i = 0; i < 200; ++i) {
          RouterEvent event;
          event.worker_id = request.worker_id;
          event.event.event_id = i;
          StoreData store;
          store.blocks.push_back(StoredBlock{i * 7, i * 11, {}});
          event.event.data = store;
          big.events.push_back(event);
        }
        return big;
      }
      QueryTreeDump dump;
      RouterEvent event;
      event.worker_id = request.worker_id;
      event.event.dp_rank = request.dp_rank;
      StoreData store;
      store.blocks.push_back(StoredBlock{111, 222, {}});
      event.event.data = store;
      dump.events.push_back(event);
      dump.last_event_id = 9;
      return dump;
    };
  }

  uint64_t errors(const std::string& reason) {
    return metrics_
        .counter("kvmock_dynamo_request_plane_errors_total",
                 "Dynamo request-plane requests or frames refused, by reason.",
                 {{"reason", reason}})
        .value();
  }

  // A full generate round trip on connection `connection`; returns the response.
  testing::FrontendResponse generate(DynamoFrontendClient& client, size_t connection = 0) {
    auto sent = client.send_request(kGeneratePath, generate_body({1, 450, 4996, 7}, 3), connection);
    EXPECT_EQ(client.read_ack(connection), std::optional<std::string>(""));
    auto stream = client.stream_for(sent.subject);
    if (!stream) return {};
    return stream->read_all();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread io_threads_[2];
  MetricsRegistry metrics_;
  FakeGeneratingWorker worker_{kInstance};
  std::unique_ptr<DynamoRequestDispatcher> dispatcher_;
  std::unique_ptr<DynamoTcpRequestServer> server_;
  uint16_t port_ = 0;
};

TEST_F(DynamoTcpRequestPlaneTest, TwoPipelinedRequestsStreamTokensWithFinishReasonAndUsage) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  auto first = client.send_request(kGeneratePath, generate_body({1, 450, 4996, 7, 8}, 4));
  auto second = client.send_request(kGeneratePath, generate_body({1, 450}, nullptr));
  EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
  EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));

  auto first_stream = client.stream_for(first.subject);
  ASSERT_NE(first_stream, nullptr);
  const auto a = first_stream->read_all();
  EXPECT_EQ(a.protocol_error, "");
  EXPECT_FALSE(a.error.has_value());
  ASSERT_EQ(a.items.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(a.items[i].contains("data")) << a.items[i].dump();
    EXPECT_EQ(a.items[i]["data"]["token_ids"], json::array({1000 + i}));
  }
  for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(a.items[i]["data"].contains("finish_reason"));
  const json& last = a.items[3]["data"];
  EXPECT_EQ(last["finish_reason"], "length");
  EXPECT_EQ(last["completion_usage"]["prompt_tokens"], 5);
  EXPECT_EQ(last["completion_usage"]["completion_tokens"], 4);
  EXPECT_EQ(last["completion_usage"]["total_tokens"], 9);
  EXPECT_EQ(last["completion_usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  EXPECT_TRUE(a.complete_final);
  EXPECT_TRUE(a.sentinel);

  auto second_stream = client.stream_for(second.subject);
  ASSERT_NE(second_stream, nullptr);
  const auto b = second_stream->read_all();
  EXPECT_EQ(b.protocol_error, "");
  // max_tokens null: the endpoint's default (16).
  ASSERT_EQ(b.items.size(), 16u);
  EXPECT_EQ(b.items.back()["data"]["completion_usage"]["prompt_tokens_details"]["cached_tokens"],
            2);
  EXPECT_TRUE(b.sentinel);

  const auto requests = worker_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].eos_token_ids, (std::vector<TokenId>{2, 2}));
  EXPECT_EQ(requests[1].max_tokens, 16u);
}

TEST_F(DynamoTcpRequestPlaneTest, StopMidStreamCancelsTheRequestAndEndsWithoutSentinel) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  auto sent = client.send_request(kGeneratePath, generate_body({1, 2, 3}, 100000));
  EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
  auto stream = client.stream_for(sent.subject);
  ASSERT_NE(stream, nullptr);
  ASSERT_TRUE(stream->read_prologue());
  ASSERT_TRUE(stream->read_item().has_value());
  stream->send_stop();
  EXPECT_TRUE(worker_.wait_cancelled(1, 5s));
  const auto rest = stream->read_all();
  EXPECT_FALSE(rest.sentinel);
  EXPECT_FALSE(rest.complete_final);
  EXPECT_FALSE(rest.timed_out);  // the worker closed the stream
  // The connection goes on serving.
  EXPECT_TRUE(generate(client).sentinel);
}

TEST_F(DynamoTcpRequestPlaneTest, KillAndHangUpCancelToo) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  auto killed = client.send_request(kGeneratePath, generate_body({1, 2, 3}, 100000));
  auto dropped = client.send_request(kGeneratePath, generate_body({1, 2, 3}, 100000));
  auto killed_stream = client.stream_for(killed.subject);
  auto dropped_stream = client.stream_for(dropped.subject);
  ASSERT_NE(killed_stream, nullptr);
  ASSERT_NE(dropped_stream, nullptr);
  ASSERT_TRUE(killed_stream->read_prologue());
  killed_stream->send_kill();
  ASSERT_TRUE(dropped_stream->read_prologue());
  dropped_stream->close();
  EXPECT_TRUE(worker_.wait_cancelled(1, 5s));
  EXPECT_TRUE(worker_.wait_cancelled(2, 5s));
}

TEST_F(DynamoTcpRequestPlaneTest, BadGenerateBodiesGetAnErrorPrologue) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  const std::vector<std::string> bodies = {
      R"({"token_ids":"no"})", R"({"token_ids":[]})", "[1,2]",
      json{{"token_ids", {1}}, {"routing", {{"dp_rank", 2}}}}.dump(),  // dp size is 2
  };
  for (const std::string& body : bodies) {
    auto sent = client.send_request(kGeneratePath, body);
    EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
    auto stream = client.stream_for(sent.subject);
    ASSERT_NE(stream, nullptr);
    std::string error;
    EXPECT_FALSE(stream->read_prologue(&error)) << body;
    EXPECT_NE(error.find("invalid generate request"), std::string::npos) << error;
    EXPECT_TRUE(stream->closed_without_more());
  }
  EXPECT_EQ(errors("bad_request"), bodies.size());
  worker_.refuse(true);
  auto sent = client.send_request(kGeneratePath, generate_body({1}, 2));
  auto stream = client.stream_for(sent.subject);
  ASSERT_NE(stream, nullptr);
  std::string error;
  EXPECT_FALSE(stream->read_prologue(&error));
  EXPECT_NE(error.find("queue_full"), std::string::npos) << error;
}

TEST_F(DynamoTcpRequestPlaneTest, UnknownPathAndBadHeadersAreRefusedOnTheResponseStream) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  auto unknown = client.send_request("1234/generate", generate_body({1}, 2));
  EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
  auto stream = client.stream_for(unknown.subject);
  ASSERT_NE(stream, nullptr);
  std::string error;
  EXPECT_FALSE(stream->read_prologue(&error));
  EXPECT_EQ(error, "Unknown endpoint: 1234/generate");
  EXPECT_EQ(errors("unknown_endpoint"), 1u);

  std::string payload;
  auto bad_headers = client.make_request(&payload, generate_body({1}, 2));
  client.send_raw(testing::frontend_encode_request_frame(kGeneratePath, "not json", payload));
  EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
  stream = client.stream_for(bad_headers.subject);
  ASSERT_NE(stream, nullptr);
  EXPECT_FALSE(stream->read_prologue(&error));
  EXPECT_EQ(errors("bad_headers"), 1u);

  // The same connection still serves.
  EXPECT_TRUE(generate(client).sentinel);
}

TEST_F(DynamoTcpRequestPlaneTest, UnanswerableFramesCloseOnlyTheirConnection) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));  // 0: garbage two-part payload
  ASSERT_TRUE(client.connect(port_));  // 1: control header not JSON
  ASSERT_TRUE(client.connect(port_));  // 2: frame over the 1 MiB limit
  ASSERT_TRUE(client.connect(port_));  // 3: truncated frame, then EOF
  ASSERT_TRUE(client.connect(port_));  // 4: a good one, all along

  client.send_raw(testing::frontend_encode_request_frame(kGeneratePath, "{}", "xyz"), 0);
  auto ack = client.read_ack(0);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(*ack, "");
  EXPECT_TRUE(client.connection_closed(0));

  client.send_raw(testing::frontend_encode_request_frame(
                      kGeneratePath, "{}", testing::frontend_encode_two_part("nope", "{}")),
                  1);
  ack = client.read_ack(1);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->find("control header"), std::string::npos) << *ack;
  EXPECT_TRUE(client.connection_closed(1));

  std::string oversized = dynamo::encode_request_frame({kGeneratePath, {}, ""});
  oversized.resize(oversized.size() - 4);
  for (int shift = 3; shift >= 0; --shift) {
    oversized.push_back(static_cast<char>(((2u << 20) >> (8 * shift)) & 0xff));
  }
  client.send_raw(oversized, 2);
  ack = client.read_ack(2);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->find("Read error"), std::string::npos) << *ack;
  EXPECT_TRUE(client.connection_closed(2));

  std::string payload;
  client.make_request(&payload, generate_body({1}, 2));
  const std::string frame = testing::frontend_encode_request_frame(kGeneratePath, "{}", payload);
  client.send_raw(frame.substr(0, frame.size() / 2), 3);
  client.shutdown_send(3);
  EXPECT_TRUE(client.connection_closed(3));

  EXPECT_TRUE(generate(client, 4).sentinel);
  EXPECT_EQ(errors("bad_payload"), 1u);
  EXPECT_EQ(errors("bad_control"), 1u);
  EXPECT_EQ(errors("too_large"), 1u);
  EXPECT_EQ(errors("truncated"), 1u);
}

TEST_F(DynamoTcpRequestPlaneTest, StalledFrameIsClosedAfterTheTimeout) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  client.send_raw(std::string("\x00\x19", 2) + "694d", 0);
  EXPECT_TRUE(client.connection_closed(0, 5s));
  EXPECT_EQ(errors("stalled_frame"), 1u);
}

TEST_F(DynamoTcpRequestPlaneTest, UnreachableCallHomeCancelsTheRequest) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  const auto body = generate_body({1, 2}, 100000);
  // A control header naming a port nobody listens on (the client's own request port is
  // taken by the server, so use port 1).
  const json info = {
      {"address", "127.0.0.1:1"}, {"subject", "s"}, {"context", "r1"}, {"stream_type", "response"}};
  const json control = {{"id", "r1"},
                        {"request_type", "single_in"},
                        {"response_type", "many_out"},
                        {"connection_info", {{"transport", "tcp_server"}, {"info", info.dump()}}}};
  client.send_raw(testing::frontend_encode_request_frame(
      kGeneratePath, "{}", testing::frontend_encode_two_part(control.dump(), body)));
  EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
  EXPECT_TRUE(worker_.wait_cancelled(1, 5s));
}

TEST_F(DynamoTcpRequestPlaneTest, IndexerQueryAnswersOneBareItemInTheReleaseForm) {
  DynamoFrontendClient client;
  ASSERT_TRUE(client.connect(port_));
  const std::string path = "694d99c0acbd2001/worker_kv_indexer_query_dp1";
  const auto query = [&](const json& body) {
    auto sent = client.send_request(path, body.dump());
    EXPECT_EQ(client.read_ack(), std::optional<std::string>(""));
    auto stream = client.stream_for(sent.subject);
    if (!stream) return testing::FrontendResponse{};
    return stream->read_all();
  };
  auto dump =
      query({{"worker_id", kInstance}, {"start_event_id", nullptr}, {"end_event_id", nullptr}});
  EXPECT_EQ(dump.protocol_error, "");
  ASSERT_EQ(dump.items.size(), 1u);
  ASSERT_TRUE(dump.items[0].contains("TreeDump")) << dump.items[0].dump();
  // Dynamo 1.0: a bare list; the dp rank comes from the endpoint name.
  ASSERT_TRUE(dump.items[0]["TreeDump"].is_array());
  EXPECT_EQ(dump.items[0]["TreeDump"][0]["event"]["dp_rank"], 1);
  EXPECT_EQ(dump.items[0]["TreeDump"][0]["worker_id"], kInstance);
  EXPECT_TRUE(dump.sentinel);

  auto too_new = query({{"worker_id", kInstance}, {"start_event_id", 200}, {"end_event_id", 300}});
  ASSERT_EQ(too_new.items.size(), 1u);
  EXPECT_EQ(too_new.items[0]["TooNew"]["newest_available"], 100);

  auto other = query({{"worker_id", 5}, {"start_event_id", nullptr}, {"end_event_id", nullptr}});
  ASSERT_EQ(other.items.size(), 1u);
  EXPECT_TRUE(other.items[0]["Error"].is_string());

  auto big = query({{"worker_id", kInstance}, {"start_event_id", 50}, {"end_event_id", 60}});
  ASSERT_EQ(big.items.size(), 1u);
  ASSERT_TRUE(big.items[0]["Error"].is_string()) << big.items[0].dump().substr(0, 200);
  EXPECT_NE(big.items[0]["Error"].get<std::string>().find("too large"), std::string::npos);
  EXPECT_EQ(metrics_.counter("kvmock_indexer_queries_total", "", {{"result", "too_large"}}).value(),
            1u);
}

TEST(DynamoQueryForm, ReleaseNamesTheForm) {
  EXPECT_EQ(*query_form_for_release("1.0"), QueryResponseForm::kBareEventLists);
  EXPECT_EQ(*query_form_for_release("1.0.1"), QueryResponseForm::kBareEventLists);
  EXPECT_EQ(*query_form_for_release("1.1"), QueryResponseForm::kWithLastEventId);
  EXPECT_FALSE(query_form_for_release("0.9").ok());
  IndexerQueryEndpointOptions options;
  options.form = QueryResponseForm::kWithLastEventId;
  MetricsRegistry metrics;
  const std::string answer =
      answer_indexer_query(R"({"worker_id":7,"start_event_id":null,"end_event_id":null})", 7, 0,
                           [](const WorkerKvQueryRequest&) -> WorkerKvQueryResponse {
                             return QueryTreeDump{{}, 5};
                           },
                           options, metrics);
  EXPECT_EQ(answer, R"({"TreeDump":{"events":[],"last_event_id":5}})");
}

}  // namespace
}  // namespace kvmock
