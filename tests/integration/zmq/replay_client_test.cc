#include "transport/zmq/replay_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <zmq_addon.hpp>

#include "tests/support/zmq_test_support.h"
#include "transport/zmq/seq_frame.h"

namespace kvmock {
namespace {

using testing::bind_ephemeral;

using Frames = std::vector<std::vector<uint8_t>>;

std::vector<uint8_t> seq_bytes(uint64_t seq) {
  const auto frame = encode_seq_frame(seq);
  return {frame.begin(), frame.end()};
}

// A ROUTER that answers the first request with a script of reply messages (the frames
// after the requester's identity) and records the request's frames.
class ScriptedReplayServer {
 public:
  ScriptedReplayServer(zmq::context_t& context, std::vector<Frames> script)
      : socket_(context, zmq::socket_type::router), script_(std::move(script)) {
    socket_.set(zmq::sockopt::linger, 0);
    endpoint_ = bind_ephemeral(socket_);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedReplayServer() { join(); }
  const std::string& endpoint() const { return endpoint_; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  // The request's frames after the identity; read only after join().
  const Frames& request() const { return request_; }

 private:
  void serve() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::seconds(5));
    if ((item.revents & ZMQ_POLLIN) == 0) return;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket_, std::back_inserter(frames));
    for (size_t i = 1; i < frames.size(); ++i) {
      request_.emplace_back(frames[i].data<uint8_t>(),
                            frames[i].data<uint8_t>() + frames[i].size());
    }
    for (const Frames& message : script_) {
      std::vector<zmq::const_buffer> out = {zmq::buffer(frames[0].data(), frames[0].size())};
      for (const auto& frame : message) out.push_back(zmq::buffer(frame));
      (void)zmq::send_multipart(socket_, out);
    }
  }

  zmq::socket_t socket_;
  const std::vector<Frames> script_;
  std::string endpoint_;
  Frames request_;
  std::thread thread_;  // last: starts once everything above is set
};

std::unique_ptr<ScriptedReplayServer> serve(zmq::context_t& context, std::vector<Frames> script) {
  return std::make_unique<ScriptedReplayServer>(context, std::move(script));
}

TEST(ReplayClientTest, SendsDelimiterAndStartSeqAndAcceptsBothReplyLayouts) {
  zmq::context_t context;
  auto server = serve(context, {
                                   {{}, {'t'}, seq_bytes(4), {0x91}},  // with topic
                                   {{}, seq_bytes(5), {0x92}},         // without
                                   {{}, {}, seq_bytes(kReplayEndSeq), {}},
                               });
  ReplayRequest request;
  request.endpoint = server->endpoint();
  request.start_seq = 4;
  auto result = fetch_replay(context, request);
  server.reset();
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->complete);
  ASSERT_EQ(result->batches.size(), 2u);
  EXPECT_EQ(result->batches[0].seq, 4u);
  EXPECT_EQ(result->batches[0].payload, std::vector<uint8_t>{0x91});
  EXPECT_EQ(result->batches[1].seq, 5u);
  EXPECT_EQ(result->batches[1].payload, std::vector<uint8_t>{0x92});
  EXPECT_EQ(result->malformed_replies, 0u);
}

TEST(ReplayClientTest, RequestIsAnEmptyDelimiterThenTheStartSeq) {
  zmq::context_t context;
  auto server = serve(context, {{{}, seq_bytes(kReplayEndSeq), {}}});
  ReplayRequest request;
  request.endpoint = server->endpoint();
  request.start_seq = 0x0102;
  auto result = fetch_replay(context, request);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->complete);
  server->join();
  ASSERT_EQ(server->request().size(), 2u);
  EXPECT_TRUE(server->request()[0].empty());
  EXPECT_EQ(server->request()[1], seq_bytes(0x0102));
}

TEST(ReplayClientTest, MalformedRepliesAreSkippedAndCounted) {
  zmq::context_t context;
  auto server = serve(context, {
                                   {{1}, seq_bytes(1), {0x90}},             // no delimiter
                                   {{}, {1, 2, 3}, {0x90}},                 // 3-byte seq
                                   {{}, seq_bytes(1)},                      // 2 frames
                                   {{}, seq_bytes(1), {}},                  // empty payload
                                   {{}, seq_bytes(kReplayEndSeq), {0x90}},  // half an end
                                   {{}, seq_bytes(1), {0x91}},
                                   {{}, seq_bytes(kReplayEndSeq), {}},
                               });
  ReplayRequest request;
  request.endpoint = server->endpoint();
  request.start_seq = 1;
  auto result = fetch_replay(context, request);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->complete);
  ASSERT_EQ(result->batches.size(), 1u);
  EXPECT_EQ(result->batches[0].payload, std::vector<uint8_t>{0x91});
  EXPECT_EQ(result->malformed_replies, 5u);
}

TEST(ReplayClientTest, StopsAtTheFirstSeqTheCallerAlreadyHas) {
  zmq::context_t context;
  auto server = serve(context, {
                                   {{}, {}, seq_bytes(2), {0x92}},
                                   {{}, {}, seq_bytes(3), {0x93}},
                                   {{}, {}, seq_bytes(4), {0x94}},
                               });
  ReplayRequest request;
  request.endpoint = server->endpoint();
  request.start_seq = 2;
  request.stop_before_seq = 3;
  auto result = fetch_replay(context, request);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->complete);  // no end marker was needed
  ASSERT_EQ(result->batches.size(), 1u);
  EXPECT_EQ(result->batches[0].seq, 2u);
}

TEST(ReplayClientTest, GivesUpAtTheDeadlineWithWhatArrived) {
  zmq::context_t context;
  auto server = serve(context, {{{}, {}, seq_bytes(7), {0x97}}});  // and never an end marker
  ReplayRequest request;
  request.endpoint = server->endpoint();
  request.start_seq = 7;
  request.timeout_ms = 200;
  const auto started = std::chrono::steady_clock::now();
  auto result = fetch_replay(context, request);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->complete);
  EXPECT_EQ(result->batches.size(), 1u);
  EXPECT_GE(took, std::chrono::milliseconds(190));
  EXPECT_LT(took, std::chrono::milliseconds(1000));
}

TEST(ReplayClientTest, StopsAtTheBatchCap) {
  zmq::context_t context;
  auto server = serve(context, {
                                   {{}, {}, seq_bytes(0), {0x90}},
                                   {{}, {}, seq_bytes(1), {0x91}},
                                   {{}, {}, seq_bytes(2), {0x92}},
                               });
  ReplayRequest request;
  request.endpoint = server->endpoint();
  request.max_batches = 2;
  auto result = fetch_replay(context, request);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->complete);
  EXPECT_EQ(result->batches.size(), 2u);
}

TEST(ReplayClientTest, UnparsableEndpointIsAnError) {
  zmq::context_t context;
  ReplayRequest request;
  request.endpoint = "nonsense://x";
  auto result = fetch_replay(context, request);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "replay_connect");
}

}  // namespace
}  // namespace kvmock
