// Routers' recovery queries over a real nats-server: against the pipeline's indexers, and
// against a whole daemon whose workers have published nothing yet.
#include "transport/nats/indexer_query_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "config/config_loader.h"
#include "core/events/kv_query_codec.h"
#include "core/events/subjects.h"
#include "daemon/daemon.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/kv_event_pipeline.h"

namespace kvmock {
namespace {

using testing::NatsServer;

// A router's request/reply; nullopt when no reply came (e.g. "no responders", timeout).
std::optional<WorkerKvQueryResponse> ask(NatsClient& client, const WorkerKvQueryRequest& request,
                                         const std::string& ns = "dynamo") {
  const std::string body = encode_worker_kv_query_request_json(request);
  const std::string subject = kv_indexer_query_subject(ns, request.worker_id);
  natsMsg* reply = nullptr;
  const natsStatus s = natsConnection_Request(&reply, client.connection(), subject.c_str(),
                                              body.data(), static_cast<int>(body.size()), 3000);
  if (s != NATS_OK) {
    ADD_FAILURE() << "no reply from " << subject << ": " << natsStatus_GetText(s);
    return std::nullopt;
  }
  auto response = decode_worker_kv_query_response_json(
      std::string_view(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  EXPECT_TRUE(response.ok());
  if (!response) return std::nullopt;
  return *response;
}

// A chain of `count` one-block stores for worker 7, rank 0.
std::vector<RouterEvent> chain(uint64_t count) {
  std::vector<RouterEvent> events;
  for (uint64_t i = 0; i < count; ++i) {
    RouterEvent event;
    event.worker_id = 7;
    StoreData store;
    if (i > 0) store.parent_hash = 1000 + i - 1;
    store.blocks.push_back(StoredBlock{1000 + i, 5000 + i, std::nullopt});
    event.event.data = std::move(store);
    events.push_back(std::move(event));
  }
  return events;
}

struct QueryRig {
  explicit QueryRig(std::vector<std::string> server_args = {}) : server(std::move(server_args)) {
    EXPECT_TRUE(server.start());
    client = testing::connect_test_client(server.url());
    pipeline = std::make_unique<KvEventPipeline>(outbox, KvEventPipelineOptions{}, metrics);
    if (!client) return;
    queries = std::make_unique<IndexerQueryService>(
        *client, [this](const WorkerKvQueryRequest& r) { return pipeline->query(r); },
        IndexerQueryServiceOptions{}, metrics);
  }
  uint64_t queries_with(const std::string& result) {
    return metrics.counter("kvmock_indexer_queries_total", "", {{"result", result}}).value();
  }

  NatsServer server;
  std::unique_ptr<NatsClient> client;
  MetricsRegistry metrics;
  Outbox outbox{100000};
  std::unique_ptr<KvEventPipeline> pipeline;
  std::unique_ptr<IndexerQueryService> queries;
};

TEST(IndexerQueryService, AnAnswerOverTheServersMaxPayloadBecomesAnErrorTheRouterCanActOn) {
  const std::string config = testing::write_temp_file("max_payload: 4096\n");
  QueryRig rig({"-c", config});
  ::unlink(config.c_str());
  ASSERT_TRUE(rig.client && rig.queries);
  ASSERT_EQ(natsConnection_GetMaxPayload(rig.client->connection()), 4096);
  rig.pipeline->publish(7, 0, chain(200));  // a tree dump of ~100 bytes per block
  ASSERT_TRUE(rig.queries->serve(7).ok());

  auto dump = ask(*rig.client, {7, 0, std::nullopt, std::nullopt});
  ASSERT_TRUE(dump.has_value());
  ASSERT_TRUE(std::holds_alternative<QueryError>(*dump));
  const std::string& message = std::get<QueryError>(*dump).message;
  EXPECT_NE(message.find("too large"), std::string::npos) << message;
  EXPECT_NE(message.find("TreeDump"), std::string::npos) << message;
  EXPECT_NE(message.find("4096"), std::string::npos) << message;
  EXPECT_EQ(rig.queries_with("too_large"), 1u);
  EXPECT_EQ(rig.queries_with("ok"), 0u);

  // A range that fits is answered as usual.
  auto tail = ask(*rig.client, {7, 0, 199, std::nullopt});
  ASSERT_TRUE(tail.has_value());
  ASSERT_TRUE(std::holds_alternative<QueryEvents>(*tail));
  EXPECT_EQ(std::get<QueryEvents>(*tail).events.size(), 2u);
  EXPECT_EQ(rig.queries_with("ok"), 1u);
}

TEST(IndexerQueryService, TheTransportNeutralAnswerHonoursTheGivenLimit) {
  QueryRig rig;
  ASSERT_TRUE(rig.queries);
  rig.pipeline->publish(7, 0, chain(3));
  const std::string request = encode_worker_kv_query_request_json({7, 0, std::nullopt, 3});
  const std::string full = rig.queries->answer(request);
  auto decoded = decode_worker_kv_query_response_json(full);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(std::holds_alternative<QueryTreeDump>(*decoded));
  auto limited = decode_worker_kv_query_response_json(rig.queries->answer(request, 64));
  ASSERT_TRUE(limited.ok());
  EXPECT_TRUE(std::holds_alternative<QueryError>(*limited));
  auto bad = decode_worker_kv_query_response_json(rig.queries->answer("not json"));
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE(std::holds_alternative<QueryError>(*bad));
  EXPECT_EQ(std::get<QueryError>(*bad).message.rfind("bad request", 0), 0u);
  EXPECT_EQ(rig.queries_with("ok"), 1u);
  EXPECT_EQ(rig.queries_with("too_large"), 1u);
  EXPECT_EQ(rig.queries_with("error"), 1u);
}

TEST(IndexerQueryService, IdleWorkersAndRelaysOfADaemonAnswerAnEmptyTreeNotNoResponders) {
  NatsServer server;
  ASSERT_TRUE(server.start());
  const int relay_port = testing::free_loopback_port();  // nothing listens: the engine is idle
  auto config = parse_config(
      "", "test",
      {"nats.url=" + server.url(), "admin.listen=", "workers.count=2",
       "workers.worker_id_base=3000", "workers.http_base_port=0", "workers.engine.dp_size=2",
       "relays[0].endpoint=tcp://127.0.0.1:" + std::to_string(relay_port),
       "relays[0].worker_id=9000"},
      {});
  ASSERT_TRUE(config.ok()) << config.error().message;
  Daemon daemon(*config);
  ASSERT_TRUE(daemon.start().ok());
  auto client = testing::connect_test_client(server.url());
  ASSERT_TRUE(client);
  for (const WorkerKvQueryRequest& request :
       {WorkerKvQueryRequest{3000, 0, std::nullopt, std::nullopt},
        WorkerKvQueryRequest{3001, 1, 1, std::nullopt},
        WorkerKvQueryRequest{9000, 0, std::nullopt, std::nullopt}}) {
    auto answer = ask(*client, request);
    ASSERT_TRUE(answer.has_value()) << "worker " << request.worker_id;
    EXPECT_EQ(*answer, WorkerKvQueryResponse(QueryTreeDump{{}, 0}))
        << "worker " << request.worker_id;
  }
  EXPECT_EQ(daemon.shutdown(), 0);
}

}  // namespace
}  // namespace kvmock
