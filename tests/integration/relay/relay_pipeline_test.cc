// The relay half of kvmockd end to end: engine ZMQ in (a real socket), router events out
// on a real nats-server, through the same pipeline, outbox and publisher the daemon uses.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <thread>
#include <zmq_addon.hpp>

#include "core/events/active_load_codec.h"
#include "core/events/engine_payload_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/kv_query_codec.h"
#include "core/events/router_event_codec.h"
#include "core/events/subjects.h"
#include "core/indexer/radix_tree.h"
#include "daemon/relayed_engine.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/event_subscriber.h"
#include "tests/support/nats_server.h"
#include "tests/support/zmq_test_support.h"
#include "transport/nats/indexer_query_service.h"
#include "transport/nats/kv_event_pipeline.h"
#include "transport/nats/nats_publisher.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {
namespace {

using testing::EventSubscriber;
using testing::NatsServer;
using testing::RawEngine;
using testing::wait_until;

constexpr uint32_t kBlockSize = 16;
constexpr WorkerId kWorker = 42;

// Block i of a long chain: hash 1000+i, parent 1000+i-1, tokens i*16 .. i*16+15.
EngineBlockStored chain_block(uint64_t i) {
  EngineBlockStored s;
  s.block_hashes = {1000 + i};
  if (i > 0) s.parent_block_hash = 1000 + i - 1;
  s.token_ids.resize(kBlockSize);
  std::iota(s.token_ids.begin(), s.token_ids.end(), static_cast<TokenId>(i * kBlockSize));
  s.block_size = kBlockSize;
  s.medium = "GPU";
  return s;
}

std::vector<uint8_t> store_payload(uint64_t i,
                                   EngineEventEncoding encoding = EngineEventEncoding::kMap,
                                   EngineHashEncoding hashes = EngineHashEncoding::kUint64) {
  EngineBatch batch;
  batch.ts = 1760000000.0 + static_cast<double>(i);
  batch.dp_rank = 0;
  batch.events.emplace_back(chain_block(i));
  return encode_engine_payload(batch, {encoding, hashes});
}

uint64_t expected_tokens_hash(uint64_t i) { return tokens_hash(chain_block(i).token_ids); }

struct RelayRig {
  explicit RelayRig(bool jetstream = false, uint64_t heartbeat_ms = 10000,
                    uint64_t debounce_ms = KvEventPipelineOptions{}.debounce_ms) {
    EXPECT_TRUE(server.start());
    client = testing::connect_test_client(server.url());
    if (!client) {
      ADD_FAILURE() << "no NATS connection";
      return;
    }
    NatsPublisherOptions publisher_options;
    publisher_options.jetstream = jetstream;
    publisher_options.stream.stream = jetstream_stream_name("dynamo", "backend");
    publisher_options.stream.subjects = {publisher_options.stream.stream + ".*"};
    publisher_options.ack_timeout_ms = 1000;
    publisher = std::make_unique<NatsPublisher>(*client, outbox, publisher_options);
    KvEventPipelineOptions options;
    options.jetstream = jetstream;
    options.heartbeat_ms = heartbeat_ms;
    options.debounce_ms = debounce_ms;
    pipeline = std::make_unique<KvEventPipeline>(outbox, options, metrics);
    queries = std::make_unique<IndexerQueryService>(
        *client, [this](const WorkerKvQueryRequest& request) { return pipeline->query(request); },
        IndexerQueryServiceOptions{}, metrics);
    EXPECT_TRUE(queries->serve(kWorker).ok());
    publisher->start();
    pipeline->start();
  }
  ~RelayRig() {
    if (relay) relay->stop();
    if (queries) queries->stop();
    pipeline->stop();
    publisher->stop(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  }
  void follow(const std::string& endpoint, const std::string& replay_endpoint = "") {
    RelayConfig config;
    config.endpoint = endpoint;
    config.replay_endpoint = replay_endpoint;
    config.worker_id = kWorker;
    config.block_size = kBlockSize;
    relay = std::make_unique<RelayedEngine>(config, zmq, *pipeline, outbox, metrics);
    ASSERT_TRUE(relay->start().ok());
  }

  NatsServer server;
  std::unique_ptr<NatsClient> client;
  MetricsRegistry metrics;
  Outbox outbox{100000};
  std::unique_ptr<NatsPublisher> publisher;
  std::unique_ptr<KvEventPipeline> pipeline;
  std::unique_ptr<IndexerQueryService> queries;
  zmq::context_t zmq{1};
  std::unique_ptr<RelayedEngine> relay;
};

TEST(RelayPipeline, EveryEngineEncodingArrivesOnCoreNatsNumberedAndRehashed) {
  RelayRig rig;
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  // vLLM map, vLLM positional, SGLang positional with signed hashes: one chain.
  engine.send_batch(0, store_payload(0, EngineEventEncoding::kMap));
  engine.send_batch(1, store_payload(1, EngineEventEncoding::kPositional));
  engine.send_batch(2,
                    store_payload(2, EngineEventEncoding::kPositional, EngineHashEncoding::kInt64));
  for (uint64_t i = 0; i < 3; ++i) {
    auto event = router.next();
    ASSERT_TRUE(event.has_value()) << "event " << i;
    EXPECT_EQ(event->worker_id, kWorker);
    EXPECT_EQ(event->event.event_id, i + 1);
    const auto& stored = std::get<StoreData>(event->event.data);
    ASSERT_EQ(stored.blocks.size(), 1u);
    EXPECT_EQ(stored.blocks[0].block_hash, 1000 + i);
    EXPECT_EQ(stored.blocks[0].tokens_hash, expected_tokens_hash(i));
    EXPECT_EQ(stored.parent_hash, i == 0 ? std::nullopt : std::optional<uint64_t>(1000 + i - 1));
    EXPECT_EQ(router.last_envelope().sequence, i);
    EXPECT_EQ(router.last_envelope().topic, "kv-events");
  }
  EXPECT_EQ(rig.pipeline->block_count(kWorker, 0), 3u);
}

TEST(RelayPipeline, JetStreamStoresTheEventsAsJsonInOrder) {
  RelayRig rig(/*jetstream=*/true);
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  constexpr uint64_t kCount = 50;
  for (uint64_t i = 0; i < kCount; ++i) engine.send_batch(i, store_payload(i));
  ASSERT_TRUE(
      wait_until([&] { return rig.publisher->acked() >= kCount; }, std::chrono::seconds(10)));

  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, rig.client->connection(), nullptr), NATS_OK);
  const std::string stream = jetstream_stream_name("dynamo", "backend");
  for (uint64_t seq = 1; seq <= kCount; ++seq) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, nullptr), NATS_OK);
    EXPECT_EQ(std::string(natsMsg_GetSubject(msg)), stream + ".kv-events");
    auto event = decode_router_event_json(
        std::string_view(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    ASSERT_TRUE(event.ok());
    EXPECT_EQ(event->event.event_id, seq);
    EXPECT_EQ(std::get<StoreData>(event->event.data).blocks[0].tokens_hash,
              expected_tokens_hash(seq - 1));
  }
  jsCtx_Destroy(js);
}

TEST(RelayPipeline, NatsOutageLosesAndDuplicatesNothingOnJetStream) {
  RelayRig rig(/*jetstream=*/true);
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  constexpr uint64_t kCount = 4000;
  std::thread sender([&] {
    for (uint64_t i = 0; i < kCount; ++i) {
      engine.send_batch(i, store_payload(i));
      if (i % 200 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  rig.server.stop();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ASSERT_TRUE(rig.server.start());
  sender.join();
  ASSERT_TRUE(
      wait_until([&] { return rig.publisher->acked() >= kCount; }, std::chrono::seconds(60)))
      << "acked " << rig.publisher->acked() << " retries " << rig.publisher->retries()
      << " last error: " << rig.publisher->last_error() << " outbox " << rig.outbox.size()
      << " in flight " << rig.publisher->in_flight() << " relay decode errors "
      << rig.relay->decode_errors();
  ASSERT_TRUE(rig.client->wait_connected(5000));

  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, rig.client->connection(), nullptr), NATS_OK);
  const std::string stream = jetstream_stream_name("dynamo", "backend");
  jsStreamInfo* info = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&info, js, stream.c_str(), nullptr, nullptr), NATS_OK);
  EXPECT_EQ(info->State.Msgs, kCount);
  jsStreamInfo_Destroy(info);
  for (uint64_t seq = 1; seq <= kCount; ++seq) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, nullptr), NATS_OK);
    auto event = decode_router_event_json(
        std::string_view(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    ASSERT_TRUE(event.ok());
    ASSERT_EQ(event->event.event_id, seq) << "out of order or duplicated";
  }
  jsCtx_Destroy(js);
}

TEST(RelayPipeline, SequenceGapIsHealedFromTheEngineReplaySocket) {
  RelayRig rig;
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  // The replay side: an engine-format publisher whose ring holds batches 0..15.
  VllmZmqEventPublisherOptions replay_options;
  replay_options.bind_host = "127.0.0.1";
  replay_options.replay_port = 0;
  auto replay = VllmZmqEventPublisher::start(rig.zmq, replay_options);
  ASSERT_TRUE(replay.ok());
  for (uint64_t i = 0; i < 16; ++i) ASSERT_TRUE((*replay)->publish(store_payload(i)).ok());
  ASSERT_TRUE(wait_until([&] { return (*replay)->counters().published.load() >= 16; }));

  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint(), (*replay)->replay_endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t i = 0; i < 10; ++i) engine.send_batch(i, store_payload(i));
  engine.send_batch(15, store_payload(15));  // 10..14 never arrive live
  for (uint64_t i = 0; i < 16; ++i) {
    auto event = router.next();
    ASSERT_TRUE(event.has_value()) << "event " << i;
    EXPECT_EQ(event->event.event_id, i + 1);
    EXPECT_EQ(std::get<StoreData>(event->event.data).blocks[0].block_hash, 1000 + i);
  }
  const auto counters = rig.relay->subscriber_counters();
  EXPECT_EQ(counters[0]->gaps.load(), 1u);
  EXPECT_EQ(counters[0]->replayed_batches.load(), 5u);
  EXPECT_EQ(counters[0]->missing_batches.load(), 0u);
  (*replay)->stop();
}

TEST(RelayPipeline, EngineRestartPublishesCleared) {
  RelayRig rig;
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t i = 0; i < 3; ++i) engine.send_batch(i, store_payload(i));
  engine.send_batch(0, store_payload(0));  // the engine came back
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(router.next().has_value());
  auto cleared = router.next();
  ASSERT_TRUE(cleared.has_value());
  EXPECT_TRUE(is_clear(cleared->event.data));
  EXPECT_EQ(cleared->event.event_id, 4u);
  auto restored = router.next();
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->event.event_id, 5u);
  EXPECT_TRUE(is_store(restored->event.data));
  EXPECT_EQ(rig.pipeline->block_count(kWorker, 0), 1u);
}

TEST(RelayPipeline, AFloodOfMalformedInputLeavesTheRelayUpAndCounted) {
  RelayRig rig;
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  const std::vector<uint8_t> seq0(8, 0);
  for (int i = 0; i < 500; ++i) {
    engine.send_frames({{'t'}});                                      // one frame
    engine.send_frames({{'t'}, seq0});                                // two frames
    engine.send_frames({{'t'}, {1, 2, 3}, {0x90}});                   // short seq
    engine.send_batch(static_cast<uint64_t>(i), {0x93, 0xcb, 0x41});  // truncated msgpack
    // The test's own PUB drops past its send HWM (1000 messages): pace the flood.
    if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  engine.send_batch(500, store_payload(0));
  auto event = router.next();
  const auto counters = rig.relay->subscriber_counters();
  ASSERT_TRUE(event.has_value()) << "messages " << counters[0]->messages << " batches "
                                 << counters[0]->batches << " decode errors "
                                 << rig.relay->decode_errors();
  EXPECT_EQ(event->event.event_id, 1u);
  EXPECT_EQ(rig.relay->decode_errors(), 500u);
  EXPECT_EQ(counters[0]->dropped_for(SubscriberDrop::kFrameCount), 1000u);
  EXPECT_EQ(counters[0]->dropped_for(SubscriberDrop::kSeqSize), 500u);
  const std::string metrics = rig.metrics.render();
  EXPECT_NE(metrics.find("kvmock_relay_decode_errors_total{relay=\"" + engine.endpoint() +
                         "\",worker_id=\"42\",reason=\"truncated\"} 500"),
            std::string::npos)
      << metrics;
}

// NATS request/reply against the worker's local indexer, the way a router recovers.
WorkerKvQueryResponse ask(NatsClient& client, const WorkerKvQueryRequest& request) {
  const std::string body = encode_worker_kv_query_request_json(request);
  natsMsg* reply = nullptr;
  const std::string subject = kv_indexer_query_subject("dynamo", request.worker_id);
  EXPECT_EQ(natsConnection_Request(&reply, client.connection(), subject.c_str(), body.data(),
                                   static_cast<int>(body.size()), 5000),
            NATS_OK);
  if (!reply) return QueryError{"no reply"};
  auto response = decode_worker_kv_query_response_json(
      std::string_view(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  EXPECT_TRUE(response.ok());
  return response.ok() ? *response : WorkerKvQueryResponse{QueryError{"undecodable"}};
}

TEST(RelayPipeline, QueryEndpointAnswersEveryCaseAndRecoveryConverges) {
  RelayRig rig;
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t i = 0; i < 20; ++i) engine.send_batch(i, store_payload(i));
  // The router sees only the first 12 events live (say it missed the rest).
  RadixTree router_tree;
  for (int i = 0; i < 20; ++i) {
    auto event = router.next();
    ASSERT_TRUE(event.has_value());
    if (i < 12) {
      ASSERT_TRUE(router_tree.apply(*event).ok());
    }
  }

  auto events = ask(*rig.client, {kWorker, 0, 13, std::nullopt});
  ASSERT_TRUE(std::holds_alternative<QueryEvents>(events));
  const auto& range = std::get<QueryEvents>(events);
  EXPECT_EQ(range.last_event_id, 20u);
  ASSERT_EQ(range.events.size(), 8u);
  EXPECT_EQ(range.events.front().event.event_id, 13u);
  for (const RouterEvent& e : range.events) ASSERT_TRUE(router_tree.apply(e).ok());
  RadixTree dump_tree;
  auto dump = ask(*rig.client, {kWorker, 0, std::nullopt, std::nullopt});
  ASSERT_TRUE(std::holds_alternative<QueryTreeDump>(dump));
  EXPECT_EQ(std::get<QueryTreeDump>(dump).last_event_id, 20u);
  for (const RouterEvent& e : std::get<QueryTreeDump>(dump).events)
    ASSERT_TRUE(dump_tree.apply(e).ok());
  const WorkerRank owner{kWorker, 0};
  EXPECT_TRUE(router_tree.same_content(dump_tree, owner));
  EXPECT_EQ(dump_tree.block_count(owner), 20u);

  auto too_new = ask(*rig.client, {kWorker, 0, 25, std::nullopt});
  ASSERT_TRUE(std::holds_alternative<QueryTooNew>(too_new));
  EXPECT_EQ(std::get<QueryTooNew>(too_new), (QueryTooNew{25, 20, 20}));
  auto invalid = ask(*rig.client, {kWorker, 0, 9, 3});
  ASSERT_TRUE(std::holds_alternative<QueryInvalidRange>(invalid));
  EXPECT_EQ(std::get<QueryInvalidRange>(invalid), (QueryInvalidRange{9, 3}));
  auto unknown_rank = ask(*rig.client, {kWorker, 7, 1, std::nullopt});
  EXPECT_TRUE(std::holds_alternative<QueryError>(unknown_rank));
}

// ActiveLoad messages on namespace.dynamo.kv_metrics.
class LoadSubscriber {
 public:
  explicit LoadSubscriber(NatsClient& client) {
    EXPECT_EQ(
        natsConnection_SubscribeSync(&sub_, client.connection(), "namespace.dynamo.kv_metrics"),
        NATS_OK);
    natsConnection_Flush(client.connection());
  }
  ~LoadSubscriber() { natsSubscription_Destroy(sub_); }
  std::optional<ActiveLoad> next(int64_t timeout_ms) {
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub_, timeout_ms) != NATS_OK) return std::nullopt;
    auto envelope = decode_event_envelope_msgpack(
        std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                  static_cast<size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
    EXPECT_TRUE(envelope.ok());
    EXPECT_EQ(envelope->topic, "kv_metrics");
    auto load = decode_active_load_msgpack(envelope->payload);
    EXPECT_TRUE(load.ok());
    return load.ok() ? std::optional<ActiveLoad>(*load) : std::nullopt;
  }

 private:
  natsSubscription* sub_ = nullptr;
};

TEST(RelayPipeline, LoadChangesAreDebouncedAndHeartbeatsRepeatTheLastValue) {
  // The ten changes must fall within one debounce window. With the default 1 ms, a
  // descheduled test thread on a loaded machine split them (seen in CI: the first message
  // carried the first change); 200 ms leaves room and stays under the heartbeat.
  RelayRig rig(/*jetstream=*/false, /*heartbeat_ms=*/400, /*debounce_ms=*/200);
  LoadSubscriber loads(*rig.client);
  for (uint64_t v = 1; v <= 10; ++v)
    rig.pipeline->update_load(ActiveLoad{7, 0, v, std::nullopt, v * 2});
  auto first = loads.next(2000);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->worker_id, 7u);
  EXPECT_EQ(first->active_decode_blocks, std::optional<uint64_t>(10));
  EXPECT_EQ(first->kv_used_blocks, std::optional<uint64_t>(20));
  EXPECT_EQ(first->active_prefill_tokens, std::nullopt);
  // No change: nothing until the heartbeat, which repeats the value.
  const auto before = std::chrono::steady_clock::now();
  auto heartbeat = loads.next(2000);
  ASSERT_TRUE(heartbeat.has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(300));
  EXPECT_EQ(*heartbeat, *first);
}

TEST(RelayPipeline, AChangeAfterAQuietSpellIsPublishedAtOnceNotAtTheNextHeartbeat) {
  RelayRig rig(/*jetstream=*/false, /*heartbeat_ms=*/10000);
  LoadSubscriber loads(*rig.client);
  rig.pipeline->update_load(ActiveLoad{7, 0, 1, std::nullopt, 2});
  ASSERT_TRUE(loads.next(2000).has_value());
  // The timer thread now sleeps towards the 10 s heartbeat; the next change must wake it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto before = std::chrono::steady_clock::now();
  rig.pipeline->update_load(ActiveLoad{7, 0, 3, std::nullopt, 6});
  auto second = loads.next(2000);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->active_decode_blocks, std::optional<uint64_t>(3));
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(500));
}

TEST(RelayPipeline, EveryWorkerOfABurstOfChangesIsPublishedWithItsLastValue) {
  RelayRig rig(/*jetstream=*/false, /*heartbeat_ms=*/10000);
  LoadSubscriber loads(*rig.client);
  constexpr uint64_t kWorkers = 50;
  for (uint64_t round = 1; round <= 20; ++round) {
    for (uint64_t w = 0; w < kWorkers; ++w) {
      rig.pipeline->update_load(ActiveLoad{100 + w, 0, round, std::nullopt, round});
    }
  }
  std::map<WorkerId, uint64_t> last;
  while (last.size() < kWorkers || std::any_of(last.begin(), last.end(), [](const auto& entry) {
           return entry.second != 20;
         })) {
    auto load = loads.next(2000);
    ASSERT_TRUE(load.has_value()) << last.size() << " workers seen";
    last[load->worker_id] = load->active_decode_blocks.value_or(0);
  }
  EXPECT_EQ(last.size(), kWorkers);
  EXPECT_EQ(last.begin()->first, 100u);
  EXPECT_EQ(last.rbegin()->first, 100 + kWorkers - 1);
}

TEST(RelayPipeline, AFlappingLoadIsPublishedAtMostOncePerDebounceAndEndsOnItsLastValue) {
  RelayRig rig(/*jetstream=*/false, /*heartbeat_ms=*/10000);
  LoadSubscriber loads(*rig.client);
  // A relay at capacity: its block count flaps between two values on every batch.
  const auto start = std::chrono::steady_clock::now();
  uint64_t flaps = 0;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(100)) {
    const uint64_t blocks = 40 + (flaps++ % 2);
    rig.pipeline->update_load(ActiveLoad{7, 0, blocks, std::nullopt, blocks});
  }
  rig.pipeline->update_load(ActiveLoad{7, 0, 99, std::nullopt, 99});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::vector<uint64_t> published;
  while (published.empty() || published.back() != 99) {
    auto load = loads.next(2000);
    ASSERT_TRUE(load.has_value()) << published.size() << " loads seen, none with 99";
    published.push_back(load->kv_used_blocks.value_or(0));
  }
  EXPECT_GT(flaps, 1000u);
  // At most one publish per millisecond tick the flapping touched (a partial tick at each
  // end), plus the one the last change opened.
  const auto periods = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  EXPECT_LE(published.size(), static_cast<size_t>(periods) + 3) << "over " << periods << " ms";
  EXPECT_TRUE(std::all_of(published.begin(), published.end() - 1,
                          [](uint64_t v) { return v == 40 || v == 41; }));
}

}  // namespace
}  // namespace kvmock

namespace kvmock {
namespace {

// One engine message with a wild seq (2^40 ahead) in an otherwise steady stream: the
// router sees every real batch once and no Cleared, and the drop is counted by reason.
TEST(RelayPipeline, ACorruptedSeqIsDroppedAndCountedWithoutAFalseRestart) {
  RelayRig rig;
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint());
  ASSERT_TRUE(engine.wait_for_subscriber());
  for (uint64_t i = 0; i < 3; ++i) engine.send_batch(i, store_payload(i));
  engine.send_batch(3 + (uint64_t{1} << 40), store_payload(50));
  for (uint64_t i = 3; i < 6; ++i) engine.send_batch(i, store_payload(i));
  for (uint64_t i = 0; i < 6; ++i) {
    auto event = router.next();
    ASSERT_TRUE(event.has_value()) << "event " << i;
    EXPECT_EQ(event->event.event_id, i + 1);
    EXPECT_TRUE(is_store(event->event.data)) << "event " << i;
  }
  EXPECT_EQ(rig.pipeline->block_count(kWorker, 0), 6u);
  const std::string labels = "{relay=\"" + engine.endpoint() + "\",worker_id=\"42\"";
  const std::string metrics = rig.metrics.render();
  EXPECT_NE(
      metrics.find("kvmock_relay_dropped_messages_total" + labels + ",reason=\"corrupted_seq\"} 1"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kvmock_relay_missing_batches_total" + labels + "} 0"), std::string::npos);
  EXPECT_NE(metrics.find("kvmock_relay_restarts_total" + labels + "} 0"), std::string::npos);
}

// A replay socket that answers garbage: the gap is counted under its own reason.
TEST(RelayPipeline, AGarbageReplayAnswerIsCountedAsABadAnswer) {
  RelayRig rig;
  zmq::socket_t replay(rig.zmq, zmq::socket_type::router);
  replay.set(zmq::sockopt::linger, 0);
  const std::string replay_endpoint = testing::bind_ephemeral(replay);
  std::thread server([&] {
    zmq::pollitem_t item{replay.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::seconds(5));
    if ((item.revents & ZMQ_POLLIN) == 0) return;
    std::vector<zmq::message_t> request;
    (void)zmq::recv_multipart(replay, std::back_inserter(request));
    const std::vector<uint8_t> wild_seq = {0x7f, 0x13, 0, 0, 0, 0, 0, 1};
    const std::vector<uint8_t> junk = {0xc1, 0xc1};
    std::array<zmq::const_buffer, 4> answer = {zmq::buffer(request[0].data(), request[0].size()),
                                               zmq::const_buffer(nullptr, 0), zmq::buffer(wild_seq),
                                               zmq::buffer(junk)};
    (void)zmq::send_multipart(replay, answer);
  });
  EventSubscriber router(*rig.client, kv_events_subject("dynamo", "backend", "kv-events"));
  RawEngine engine(rig.zmq);
  rig.follow(engine.endpoint(), replay_endpoint);
  ASSERT_TRUE(engine.wait_for_subscriber());
  engine.send_batch(0, store_payload(0));
  engine.send_batch(4, store_payload(4));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(router.next().has_value());
  server.join();
  const std::string labels = "{relay=\"" + engine.endpoint() + "\",worker_id=\"42\"";
  const std::string metrics = rig.metrics.render();
  EXPECT_NE(
      metrics.find("kvmock_relay_replay_failures_total" + labels + ",reason=\"bad_answer\"} 1"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kvmock_relay_replay_failures_total" + labels + ",reason=\"evicted\"} 0"),
            std::string::npos);
  EXPECT_NE(metrics.find("kvmock_relay_missing_batches_total" + labels + "} 3"), std::string::npos);
}

}  // namespace
}  // namespace kvmock
