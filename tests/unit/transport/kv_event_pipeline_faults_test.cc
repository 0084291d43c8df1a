// Event faults in the publishing pipeline (docs/faults.md#event-faults), without NATS:
// what reaches the outbox is dropped, repeated or delayed as drawn, while the channel's
// local indexer keeps every event, so a query for the missing ids returns exactly them.
#include <gtest/gtest.h>

#include <set>

#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "core/faults/event_faults.h"
#include "tests/support/manual_clock.h"
#include "tests/support/router_event_builders.h"
#include "transport/nats/kv_event_pipeline.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;
using testing::stored;

constexpr WorkerId kWorker = 7;

std::vector<RouterEvent> one(RouterEvent event) {
  std::vector<RouterEvent> events;
  events.push_back(std::move(event));
  return events;
}

// Event `i`: one block of its own, so every event applies on its own.
RouterEvent block_event(uint64_t i) {
  return stored(kWorker, 0, std::nullopt, {{100 + i, 5000 + i}});
}

std::vector<OutboundMessage> drain(Outbox& outbox) {
  std::vector<OutboundMessage> messages;
  outbox.pop_batch(messages, 100000, milliseconds(0));
  return messages;
}

RouterEvent decode(const OutboundMessage& message) {
  auto envelope = decode_event_envelope_msgpack(message.data);
  EXPECT_TRUE(envelope.ok());
  if (!envelope) return {};
  auto event = decode_router_event_msgpack(envelope->payload);
  EXPECT_TRUE(event.ok());
  return event ? *event : RouterEvent{};
}

std::vector<EventId> ids(const std::vector<OutboundMessage>& messages) {
  std::vector<EventId> out;
  for (const OutboundMessage& message : messages) out.push_back(decode(message).event.event_id);
  return out;
}

EventFaults faults(double drop, double duplicate, double delay_ms, uint64_t seed = 11) {
  EventFaults f;
  f.drop_rate = drop;
  f.duplicate_rate = duplicate;
  f.delay_ms = delay_ms;
  f.seed = seed;
  return f;
}

struct FaultRig {
  explicit FaultRig(bool jetstream = false) : outbox(100000, clock) {
    KvEventPipelineOptions options;
    options.jetstream = jetstream;
    options.outbox_full_wait = milliseconds(0);
    pipeline = std::make_unique<KvEventPipeline>(outbox, options, metrics, clock);
  }
  uint64_t injected(const char* type) {
    return metrics
        .counter("kvmock_faults_injected_total", "",
                 {{"worker_id", std::to_string(kWorker)}, {"type", type}})
        .value();
  }

  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox;
  std::unique_ptr<KvEventPipeline> pipeline;
};

TEST(KvEventPipelineFaults, DroppedIdsAreGapsAndTheIndexerReturnsExactlyTheMissingEvents) {
  FaultRig rig;
  rig.pipeline->set_event_faults(kWorker, faults(30, 0, 0));
  constexpr uint64_t kCount = 300;
  for (uint64_t i = 1; i <= kCount; ++i) rig.pipeline->publish(kWorker, 0, one(block_event(i)));

  const std::vector<EventId> sent = ids(drain(rig.outbox));
  std::set<EventId> missing;
  for (EventId id = 1; id <= kCount; ++id) missing.insert(id);
  for (EventId id : sent) missing.erase(id);
  // In order, each once; the ones missing are those the seed drew, and about 30% of all.
  EXPECT_TRUE(std::is_sorted(sent.begin(), sent.end()));
  EXPECT_EQ(sent.size() + missing.size(), kCount);
  for (EventId id = 1; id <= kCount; ++id) {
    EXPECT_EQ(missing.count(id) == 1,
              draw_event_fate(faults(30, 0, 0), kWorker, 0, id) == EventFate::kDrop)
        << id;
  }
  EXPECT_GT(missing.size(), kCount / 5);
  EXPECT_LT(missing.size(), kCount * 2 / 5);
  EXPECT_EQ(rig.injected("event_drop"), missing.size());

  // The indexer applied every event and answers each gap with the event that was not sent.
  EXPECT_EQ(rig.pipeline->block_count(kWorker, 0), kCount);
  EXPECT_EQ(rig.pipeline->last_event_id(kWorker, 0), kCount);
  for (EventId id : missing) {
    const WorkerKvQueryResponse answer = rig.pipeline->query({kWorker, 0, id, id});
    ASSERT_TRUE(std::holds_alternative<QueryEvents>(answer)) << id;
    const auto& events = std::get<QueryEvents>(answer).events;
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].event.event_id, id);
    const auto& store = std::get<StoreData>(events[0].event.data);
    EXPECT_EQ(store.blocks.at(0).block_hash, 100 + id);
  }
}

TEST(KvEventPipelineFaults, ADuplicateIsTheSameBytesTwiceInARow) {
  FaultRig rig;
  rig.pipeline->set_event_faults(kWorker, faults(0, 100, 0));
  for (uint64_t i = 1; i <= 5; ++i) rig.pipeline->publish(kWorker, 0, one(block_event(i)));
  const auto messages = drain(rig.outbox);
  ASSERT_EQ(messages.size(), 10u);
  for (size_t i = 0; i < 10; i += 2) {
    EXPECT_EQ(messages[i].data, messages[i + 1].data);
    EXPECT_EQ(decode(messages[i]).event.event_id, i / 2 + 1);
  }
  EXPECT_EQ(rig.injected("event_duplicate"), 5u);
  EXPECT_EQ(rig.pipeline->block_count(kWorker, 0), 5u);
}

TEST(KvEventPipelineFaults, AJetStreamDuplicateHasItsOwnMessageIdSoTheServerKeepsIt) {
  FaultRig rig(/*jetstream=*/true);
  rig.pipeline->set_event_faults(kWorker, faults(0, 100, 0));
  rig.pipeline->publish(kWorker, 0, one(block_event(1)));
  const auto messages = drain(rig.outbox);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].data, messages[1].data);
  EXPECT_FALSE(messages[0].msg_id.empty());
  EXPECT_EQ(messages[1].msg_id, messages[0].msg_id + "-dup");
}

TEST(KvEventPipelineFaults, DelayedEventsLeaveAfterTheDelayInOrderEvenWhenTheDelayShrinks) {
  FaultRig rig;
  rig.pipeline->set_event_faults(kWorker, faults(0, 0, 50));
  rig.pipeline->publish(kWorker, 0, one(block_event(1)));
  rig.clock.advance(milliseconds(20));
  rig.pipeline->publish(kWorker, 0, one(block_event(2)));
  EXPECT_EQ(rig.outbox.size(), 0u);
  EXPECT_EQ(rig.pipeline->block_count(kWorker, 0), 2u);  // the indexer does not wait
  EXPECT_EQ(rig.pipeline->tick(), std::optional<milliseconds>(milliseconds(30)));

  rig.clock.advance(milliseconds(29));
  rig.pipeline->tick();
  EXPECT_EQ(rig.outbox.size(), 0u);
  rig.clock.advance(milliseconds(1));
  EXPECT_EQ(rig.pipeline->tick(), std::optional<milliseconds>(milliseconds(20)));
  EXPECT_EQ(ids(drain(rig.outbox)), (std::vector<EventId>{1}));

  // Without a delay, a new event still waits behind the one delayed before it.
  rig.pipeline->set_event_faults(kWorker, faults(0, 0, 0));
  rig.pipeline->publish(kWorker, 0, one(block_event(3)));
  EXPECT_EQ(rig.outbox.size(), 0u);
  rig.clock.advance(milliseconds(20));
  rig.pipeline->tick();
  EXPECT_EQ(ids(drain(rig.outbox)), (std::vector<EventId>{2, 3}));
  rig.pipeline->publish(kWorker, 0, one(block_event(4)));
  EXPECT_EQ(ids(drain(rig.outbox)), (std::vector<EventId>{4}));
  EXPECT_EQ(rig.injected("event_delay"), 2u);
}

TEST(KvEventPipelineFaults, StopSendsWhatIsDelayedAtOnce) {
  FaultRig rig;
  rig.pipeline->set_event_faults(kWorker, faults(0, 0, 60000));
  for (uint64_t i = 1; i <= 3; ++i) rig.pipeline->publish(kWorker, 0, one(block_event(i)));
  EXPECT_EQ(rig.outbox.size(), 0u);
  rig.pipeline->stop();
  EXPECT_EQ(ids(drain(rig.outbox)), (std::vector<EventId>{1, 2, 3}));
}

TEST(KvEventPipelineFaults, OtherWorkersAreUntouchedAndTheSeriesStartAtZero) {
  FaultRig rig;
  rig.pipeline->set_event_faults(kWorker, faults(100, 0, 0));
  EXPECT_NE(rig.metrics.render().find("kvmock_faults_injected_total{worker_id=\"7\","
                                      "type=\"event_duplicate\"} 0"),
            std::string::npos)
      << rig.metrics.render();
  rig.pipeline->publish(8, 0, one(stored(8, 0, std::nullopt, {{1, 2}})));
  rig.pipeline->publish(kWorker, 0, one(block_event(1)));
  const auto messages = drain(rig.outbox);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(decode(messages[0]).worker_id, 8u);
}

}  // namespace
}  // namespace kvmock
