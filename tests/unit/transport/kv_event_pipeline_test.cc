// The publishing pipeline without NATS: events in, outbox messages out, timed work driven
// by tick() on a manual clock.
#include "transport/nats/kv_event_pipeline.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "tests/support/manual_clock.h"
#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;
using testing::stored;

std::vector<RouterEvent> one(RouterEvent event) {
  std::vector<RouterEvent> events;
  events.push_back(std::move(event));
  return events;
}

// The router events queued in `outbox` (core NATS plane), oldest first.
std::vector<RouterEvent> drain_events(Outbox& outbox) {
  std::vector<OutboundMessage> messages;
  outbox.pop_batch(messages, 1000, milliseconds(0));
  std::vector<RouterEvent> events;
  for (const OutboundMessage& message : messages) {
    auto envelope = decode_event_envelope_msgpack(message.data);
    EXPECT_TRUE(envelope.ok());
    if (!envelope) continue;
    auto event = decode_router_event_msgpack(envelope->payload);
    EXPECT_TRUE(event.ok());
    if (event) events.push_back(*event);
  }
  return events;
}

struct PipelineRig {
  explicit PipelineRig(uint64_t batching_timeout_ms, size_t outbox_capacity = 1000)
      : outbox(outbox_capacity, clock) {
    KvEventPipelineOptions options;
    options.batching_timeout_ms = batching_timeout_ms;
    options.outbox_full_wait = milliseconds(0);  // no real-time waits in unit tests
    pipeline = std::make_unique<KvEventPipeline>(outbox, options, metrics, clock);
  }
  uint64_t rejections() {
    return metrics.counter("kvmock_indexer_rejected_events_total", "").value();
  }

  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox;
  std::unique_ptr<KvEventPipeline> pipeline;
};

TEST(KvEventPipeline, ABatchLeavesAtItsTimeoutWhenTheClockSaysSo) {
  PipelineRig rig(/*batching_timeout_ms=*/10);
  EXPECT_EQ(rig.pipeline->publish(7, 0, one(stored(7, 0, std::nullopt, {{10, 100}}))), 0u);
  EXPECT_EQ(rig.pipeline->tick(), std::optional<milliseconds>(milliseconds(10)));
  rig.clock.advance(milliseconds(9));
  rig.pipeline->tick();
  EXPECT_EQ(rig.outbox.size(), 0u);
  rig.clock.advance(milliseconds(1));
  EXPECT_EQ(rig.pipeline->tick(), std::nullopt);
  const auto events = drain_events(rig.outbox);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.event_id, 1u);
  EXPECT_EQ(rig.pipeline->block_count(7, 0), 1u);
}

TEST(KvEventPipeline, IndexerRejectionsAreCountedOnThePublishTheTimerAndTheShutdownPaths) {
  PipelineRig unbatched(0);
  unbatched.pipeline->publish(7, 0, one(stored(7, 0, 999, {{10, 100}})));
  EXPECT_EQ(unbatched.rejections(), 1u);

  PipelineRig timed(10);
  timed.pipeline->publish(7, 0, one(stored(7, 0, 999, {{10, 100}})));
  timed.clock.advance(milliseconds(10));
  timed.pipeline->tick();
  EXPECT_EQ(timed.rejections(), 1u);

  PipelineRig flushed(10);
  flushed.pipeline->publish(7, 0, one(stored(7, 0, 999, {{10, 100}})));
  flushed.pipeline->stop();  // the batch is still pending: the shutdown flush sends it
  EXPECT_EQ(drain_events(flushed.outbox).size(), 1u);
  EXPECT_EQ(flushed.rejections(), 1u);
}

TEST(KvEventPipeline, AConfiguredWorkerAnswersAnEmptyTreeBeforeItsFirstEvent) {
  PipelineRig rig(0);
  rig.pipeline->add_worker(7, 2);
  EXPECT_EQ(rig.pipeline->query({7, 1, std::nullopt, std::nullopt}),
            WorkerKvQueryResponse(QueryTreeDump{{}, 0}));
  EXPECT_TRUE(std::holds_alternative<QueryError>(rig.pipeline->query({7, 2, 1, std::nullopt})));
  EXPECT_TRUE(std::holds_alternative<QueryError>(rig.pipeline->query({8, 0, 1, std::nullopt})));
  // An opened channel that published nothing is not in the shutdown report.
  EXPECT_TRUE(rig.pipeline->progress().empty());
  rig.pipeline->publish(7, 1, one(stored(7, 1, std::nullopt, {{10, 100}})));
  const auto progress = rig.pipeline->progress();
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].dp_rank, 1u);
  EXPECT_EQ(progress[0].last_event_id, 1u);
}

TEST(KvEventPipeline, LoadsAreDebouncedOnTheManualClock) {
  PipelineRig rig(0);
  rig.pipeline->tick();  // nothing known yet
  rig.pipeline->update_load(ActiveLoad{7, 0, 1, std::nullopt, 1});
  rig.pipeline->update_load(ActiveLoad{7, 0, 2, std::nullopt, 2});
  EXPECT_EQ(rig.outbox.size(), 0u);
  rig.clock.advance(milliseconds(1));
  rig.pipeline->tick();
  EXPECT_EQ(rig.outbox.size(), 1u);
}

TEST(KvEventPipeline, AChannelOpenedWithClearFirstStartsWithClearedBeforeItsFirstEvent) {
  PipelineRig rig(0);
  rig.pipeline->add_worker(7, 2, WorkerChannelOptions{.clear_first = true});
  rig.pipeline->add_worker(8, 1);
  EXPECT_TRUE(drain_events(rig.outbox).empty());  // nothing until the channel publishes
  rig.pipeline->publish(7, 1, one(stored(7, 1, std::nullopt, {{10, 100}})));
  rig.pipeline->publish(7, 1, one(stored(7, 1, 10, {{11, 101}})));
  rig.pipeline->publish(8, 0, one(stored(8, 0, std::nullopt, {{10, 100}})));
  const auto events = drain_events(rig.outbox);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_TRUE(is_clear(events[0].event.data));
  EXPECT_EQ(events[0].worker_id, 7u);
  EXPECT_EQ(events[0].event.dp_rank, 1u);
  EXPECT_EQ(events[0].event.event_id, 1u);
  EXPECT_TRUE(is_store(events[1].event.data));
  EXPECT_EQ(events[1].event.event_id, 2u);
  EXPECT_EQ(events[2].event.event_id, 3u);
  EXPECT_TRUE(is_store(events[3].event.data));  // worker 8 was opened without it
  EXPECT_EQ(events[3].event.event_id, 1u);
  EXPECT_EQ(rig.pipeline->block_count(7, 1), 2u);
}

TEST(KvEventPipeline, ShutdownEndsTheWaitForOutboxRoomAndCountsWhatWasAbandoned) {
  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox{1, clock};
  KvEventPipeline pipeline(outbox, KvEventPipelineOptions{}, metrics, clock);
  pipeline.publish(7, 0, one(stored(7, 0, std::nullopt, {{10, 100}})));
  ASSERT_EQ(outbox.size(), 1u);
  // The outbox is full and nobody drains it: the next publish waits for room...
  auto blocked = std::async(std::launch::async, [&] {
    pipeline.publish(7, 0, one(stored(7, 0, 10, {{11, 101}})));
  });
  EXPECT_EQ(blocked.wait_for(milliseconds(300)), std::future_status::timeout);
  // ...until shutdown's deadline passes; then it gives up and counts what it dropped.
  pipeline.stop_waiting_at(clock.steady_now());
  ASSERT_EQ(blocked.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(pipeline.events_abandoned(), 1u);
  EXPECT_EQ(pipeline.events_queued(), 1u);
  EXPECT_EQ(outbox.size(), 1u);
  // Past the deadline nothing waits at all; a closed outbox does the same.
  pipeline.publish(7, 0, one(stored(7, 0, 11, {{12, 102}})));
  EXPECT_EQ(pipeline.events_abandoned(), 2u);
}

TEST(KvEventPipeline, AClosedOutboxEndsTheWaitForRoom) {
  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox{1, clock};
  KvEventPipeline pipeline(outbox, KvEventPipelineOptions{}, metrics, clock);
  pipeline.publish(7, 0, one(stored(7, 0, std::nullopt, {{10, 100}})));
  auto blocked = std::async(std::launch::async, [&] {
    pipeline.publish(7, 0, one(stored(7, 0, 10, {{11, 101}})));
  });
  EXPECT_EQ(blocked.wait_for(milliseconds(300)), std::future_status::timeout);
  outbox.close();
  ASSERT_EQ(blocked.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(pipeline.events_abandoned(), 1u);
}

}  // namespace
}  // namespace kvmock

namespace kvmock {
namespace {

std::vector<EventId> ids_of(const std::vector<RouterEvent>& events) {
  std::vector<EventId> ids;
  for (const RouterEvent& e : events) ids.push_back(e.event.event_id);
  return ids;
}

// Defect 6 of the reliability probe: a full outbox used to block every mock worker's
// engine thread (requests hung while /health said 200). A mock worker's channel now holds
// its events, in order, and the sink reports the outbox full until they are queued.
TEST(KvEventPipeline, AMockWorkerChannelHoldsItsEventsInOrderWhileTheOutboxIsFull) {
  PipelineRig rig(0, /*outbox_capacity=*/2);
  rig.pipeline->add_worker(7, 1, WorkerChannelOptions{.hold_when_outbox_full = true});
  EXPECT_FALSE(rig.pipeline->outbox_full());
  for (uint64_t i = 0; i < 5; ++i) {
    // Returns at once although the outbox has room for two: nothing blocks the source.
    rig.pipeline->publish(7, 0, one(stored(7, 0, std::nullopt, {{10 + i, 100 + i}})));
  }
  EXPECT_TRUE(rig.pipeline->outbox_full());
  EXPECT_EQ(rig.pipeline->events_held(), 3u);
  EXPECT_EQ(rig.pipeline->block_count(7, 0), 5u);  // the indexer knows them all already

  std::vector<RouterEvent> delivered = drain_events(rig.outbox);
  rig.pipeline->tick();  // room again: the next two held events move in
  EXPECT_EQ(rig.pipeline->events_held(), 1u);
  for (const RouterEvent& e : drain_events(rig.outbox)) delivered.push_back(e);
  rig.pipeline->publish(7, 0, one(stored(7, 0, std::nullopt, {{20, 200}})));  // behind the held
  rig.pipeline->tick();
  for (const RouterEvent& e : drain_events(rig.outbox)) delivered.push_back(e);
  EXPECT_FALSE(rig.pipeline->outbox_full());
  EXPECT_EQ(ids_of(delivered), (std::vector<EventId>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(rig.metrics.counter("kvmock_pipeline_events_held_total", "").value(), 4u);
}

TEST(KvEventPipeline, ARelayChannelStillWaitsForRoomAndShutdownCountsWhatItAbandons) {
  PipelineRig rig(0, /*outbox_capacity=*/1);
  rig.pipeline->add_worker(7, 1);                         // a relay's channel: no holding
  rig.pipeline->stop_waiting_at(rig.clock.steady_now());  // shutdown: waits end at once
  rig.pipeline->publish(7, 0, one(stored(7, 0, std::nullopt, {{10, 100}})));
  rig.pipeline->publish(7, 0, one(stored(7, 0, std::nullopt, {{11, 101}})));
  EXPECT_FALSE(rig.pipeline->outbox_full());
  EXPECT_EQ(rig.outbox.size(), 1u);
  EXPECT_EQ(rig.pipeline->events_abandoned(), 1u);
}

TEST(KvEventPipeline, StopQueuesHeldEventsAndCountsThoseThatFindNoRoomAsAbandoned) {
  PipelineRig rig(0, /*outbox_capacity=*/1);
  rig.pipeline->add_worker(7, 1, WorkerChannelOptions{.hold_when_outbox_full = true});
  for (uint64_t i = 0; i < 3; ++i)
    rig.pipeline->publish(7, 0, one(stored(7, 0, std::nullopt, {{10 + i, 100 + i}})));
  EXPECT_EQ(rig.pipeline->events_held(), 2u);
  rig.pipeline->stop_waiting_at(rig.clock.steady_now());
  rig.pipeline->stop();
  EXPECT_EQ(rig.pipeline->events_held(), 0u);
  EXPECT_FALSE(rig.pipeline->outbox_full());
  EXPECT_EQ(rig.pipeline->events_abandoned(), 2u);
}

}  // namespace
}  // namespace kvmock
