// The publishing pipeline without NATS: events in, outbox messages out, timed work driven
// by tick() on a manual clock.
#include "transport/nats/kv_event_pipeline.h"

#include <gtest/gtest.h>

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
  explicit PipelineRig(uint64_t batching_timeout_ms) {
    KvEventPipelineOptions options;
    options.batching_timeout_ms = batching_timeout_ms;
    pipeline = std::make_unique<KvEventPipeline>(outbox, options, metrics, clock);
  }
  uint64_t rejections() {
    return metrics.counter("kvmock_indexer_rejected_events_total", "").value();
  }

  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox{1000, clock};
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

}  // namespace
}  // namespace kvmock
