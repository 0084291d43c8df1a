// Event faults on JetStream (docs/faults.md#event-faults), through a real nats-server: the
// stream keeps a duplicate (the copy carries its own Nats-Msg-Id, or the server's
// de-duplication would discard it) as the same bytes, and a dropped event is a gap in the
// stored ids that the pipeline's indexer fills.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <thread>

#include "core/events/router_event_codec.h"
#include "core/events/subjects.h"
#include "core/faults/event_faults.h"
#include "tests/support/nats_server.h"
#include "tests/support/router_event_builders.h"
#include "transport/nats/kv_event_pipeline.h"
#include "transport/nats/nats_client.h"
#include "transport/nats/nats_publisher.h"

namespace kvmock {
namespace {

using Clock = std::chrono::steady_clock;
constexpr WorkerId kWorker = 7;

std::unique_ptr<NatsClient> connect_to(const testing::NatsServer& server) {
  NatsClientOptions options;
  options.urls = {server.url()};
  auto client = NatsClient::connect(options);
  EXPECT_TRUE(client.ok());
  return client.ok() ? std::move(*client) : nullptr;
}

// Every message of `stream`, in stored order.
std::vector<std::vector<uint8_t>> stream_contents(NatsClient& client, const std::string& stream) {
  jsCtx* js = nullptr;
  EXPECT_EQ(natsConnection_JetStream(&js, client.connection(), nullptr), NATS_OK);
  std::vector<std::vector<uint8_t>> messages;
  jsStreamInfo* info = nullptr;
  EXPECT_EQ(js_GetStreamInfo(&info, js, stream.c_str(), nullptr, nullptr), NATS_OK);
  const uint64_t last = info ? info->State.LastSeq : 0;
  if (info) jsStreamInfo_Destroy(info);
  for (uint64_t seq = 1; seq <= last; ++seq) {
    natsMsg* msg = nullptr;
    if (js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, nullptr) == NATS_OK) {
      const auto* data = reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg));
      messages.emplace_back(data, data + natsMsg_GetDataLength(msg));
      natsMsg_Destroy(msg);
    }
  }
  jsCtx_Destroy(js);
  return messages;
}

EventId id_of(const std::vector<uint8_t>& json) {
  auto event = decode_router_event_json(
      std::string_view(reinterpret_cast<const char*>(json.data()), json.size()));
  EXPECT_TRUE(event.ok());
  return event.ok() ? event->event.event_id : 0;
}

TEST(KvEventPipelineFaultsJetStream, TheStreamKeepsDuplicatesAndTheIndexerFillsTheGaps) {
  testing::NatsServer server;
  ASSERT_TRUE(server.start());
  auto client = connect_to(server);
  ASSERT_TRUE(client);
  MetricsRegistry metrics;
  Outbox outbox(10000);
  KvEventPipelineOptions pipeline_options;
  pipeline_options.jetstream = true;
  KvEventPipeline pipeline(outbox, pipeline_options, metrics);
  NatsPublisherOptions publisher_options;
  publisher_options.jetstream = true;
  publisher_options.stream.stream = jetstream_stream_name("dynamo", "backend");
  publisher_options.stream.subjects = {publisher_options.stream.stream + ".*"};
  publisher_options.ack_timeout_ms = 1000;
  NatsPublisher publisher(*client, outbox, publisher_options);
  publisher.start();

  EventFaults faults;
  faults.drop_rate = 25;
  faults.duplicate_rate = 25;
  faults.seed = 3;
  pipeline.set_event_faults(kWorker, faults);
  constexpr uint64_t kCount = 200;
  size_t expected_messages = 0;
  for (uint64_t i = 1; i <= kCount; ++i) {
    std::vector<RouterEvent> one;
    one.push_back(testing::stored(kWorker, 0, std::nullopt, {{100 + i, 5000 + i}}));
    pipeline.publish(kWorker, 0, std::move(one));
    const EventFate fate = draw_event_fate(faults, kWorker, 0, i);
    expected_messages += fate == EventFate::kDrop ? 0 : fate == EventFate::kDuplicate ? 2 : 1;
  }
  for (int i = 0; i < 1000 && publisher.acked() < expected_messages; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(publisher.stop(Clock::now() + std::chrono::seconds(2)), 0u);

  const auto stored = stream_contents(*client, publisher_options.stream.stream);
  ASSERT_EQ(stored.size(), expected_messages);
  size_t at = 0;
  size_t gaps = 0;
  size_t repeats = 0;
  for (EventId id = 1; id <= kCount; ++id) {
    const EventFate fate = draw_event_fate(faults, kWorker, 0, id);
    if (fate == EventFate::kDrop) {
      ++gaps;
      // The gap is the indexer's event id, as a router's range query gets it.
      const WorkerKvQueryResponse answer = pipeline.query({kWorker, 0, id, id});
      ASSERT_TRUE(std::holds_alternative<QueryEvents>(answer));
      ASSERT_EQ(std::get<QueryEvents>(answer).events.size(), 1u);
      EXPECT_EQ(std::get<QueryEvents>(answer).events[0].event.event_id, id);
      continue;
    }
    ASSERT_LT(at, stored.size());
    EXPECT_EQ(id_of(stored[at]), id);
    if (fate == EventFate::kDuplicate) {
      ++repeats;
      ASSERT_LT(at + 1, stored.size());
      EXPECT_EQ(stored[at + 1], stored[at]) << "event " << id;
      ++at;
    }
    ++at;
  }
  EXPECT_EQ(at, stored.size());
  EXPECT_GT(gaps, 0u);
  EXPECT_GT(repeats, 0u);
}

}  // namespace
}  // namespace kvmock
