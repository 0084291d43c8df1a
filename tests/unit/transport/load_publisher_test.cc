// Load debounce and heartbeat, driven by a manual clock: no sleeping, exact times.
#include "transport/nats/load_publisher.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "core/events/active_load_codec.h"
#include "core/events/envelope_codec.h"
#include "tests/support/manual_clock.h"

namespace kvmock {
namespace {

using std::chrono::milliseconds;

struct LoadRig {
  explicit LoadRig(uint64_t debounce_ms, uint64_t heartbeat_ms)
      : publisher(writer, LoadPublisherOptions{"dynamo", debounce_ms, heartbeat_ms}, metrics,
                  clock) {}
  // The loads queued so far, oldest first (and checks their envelope).
  std::vector<ActiveLoad> drain() {
    std::vector<OutboundMessage> messages;
    outbox.pop_batch(messages, 100000, milliseconds(0));
    std::vector<ActiveLoad> loads;
    for (const OutboundMessage& message : messages) {
      EXPECT_EQ(*message.subject, "namespace.dynamo.kv_metrics");
      auto envelope = decode_event_envelope_msgpack(message.data);
      EXPECT_TRUE(envelope.ok());
      if (!envelope) continue;
      EXPECT_EQ(envelope->topic, "kv_metrics");
      EXPECT_EQ(envelope->published_at, clock.unix_ms());
      EXPECT_EQ(envelope->sequence, next_sequence++);
      auto load = decode_active_load_msgpack(envelope->payload);
      EXPECT_TRUE(load.ok());
      if (load) loads.push_back(*load);
    }
    return loads;
  }

  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox{100000, clock};
  OutboxWriter writer{outbox, metrics};
  LoadPublisher publisher;
  uint64_t next_sequence = 0;
};

ActiveLoad load_of(WorkerId worker, uint64_t blocks) {
  return ActiveLoad{worker, 0, blocks, std::nullopt, blocks};
}

TEST(LoadPublisher, ABurstOfChangesIsPublishedOnceWithItsLastValueAfterTheDebounce) {
  LoadRig rig(/*debounce_ms=*/5, /*heartbeat_ms=*/10000);
  EXPECT_EQ(rig.publisher.tick(0), std::nullopt);
  EXPECT_TRUE(rig.publisher.update(load_of(7, 1), 0));   // due at 5, before "never"
  EXPECT_FALSE(rig.publisher.update(load_of(7, 2), 1));  // due at 6: the timer looks at 5
  EXPECT_EQ(rig.publisher.tick(4), std::optional<uint64_t>(5));
  EXPECT_TRUE(rig.drain().empty());
  rig.clock.advance(milliseconds(5));
  rig.publisher.tick(5);
  const auto loads = rig.drain();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0], load_of(7, 2));
}

TEST(LoadPublisher, TheHeartbeatRepeatsTheLastValueWithoutAChange) {
  LoadRig rig(/*debounce_ms=*/1, /*heartbeat_ms=*/400);
  rig.publisher.update(load_of(7, 3), 0);
  rig.publisher.tick(1);
  ASSERT_EQ(rig.drain().size(), 1u);
  // Quiet: the next look is the heartbeat, 400 ms after the publish.
  EXPECT_EQ(rig.publisher.tick(2), std::optional<uint64_t>(401));
  rig.publisher.tick(400);
  EXPECT_TRUE(rig.drain().empty());
  rig.clock.advance(milliseconds(401));
  rig.publisher.tick(401);
  const auto heartbeat = rig.drain();
  ASSERT_EQ(heartbeat.size(), 1u);
  EXPECT_EQ(heartbeat[0], load_of(7, 3));
}

TEST(LoadPublisher, AFlappingLoadIsPublishedAtMostOncePerDebounceAndEndsOnItsLastValue) {
  // A relay at capacity: its block count flaps between two values on every batch, nine
  // times a millisecond for 100 ms. The timer thread is modelled as it runs: it ticks when
  // poked (update() returned true) or when the time its last tick returned has come.
  LoadRig rig(/*debounce_ms=*/1, /*heartbeat_ms=*/10000);
  std::optional<uint64_t> next = rig.publisher.tick(0);
  uint64_t wakeups = 0;
  auto run_timer = [&](uint64_t now, bool poked) {
    if (poked || (next && *next <= now)) next = rig.publisher.tick(now);
  };
  for (uint64_t now = 0; now < 100; ++now) {
    bool poked = false;
    for (uint64_t flap = 0; flap < 9; ++flap) {
      if (rig.publisher.update(load_of(7, 40 + (now + flap) % 2), now)) {
        ++wakeups;
        poked = true;
      }
    }
    run_timer(now, poked);
  }
  run_timer(100, rig.publisher.update(load_of(7, 99), 100));
  for (uint64_t now = 101; now < 110; ++now) run_timer(now, false);
  const auto loads = rig.drain();
  ASSERT_FALSE(loads.empty());
  EXPECT_LE(loads.size(), 101u);  // at most one per millisecond, plus the last change
  EXPECT_EQ(loads.back(), load_of(7, 99));
  for (size_t i = 0; i + 1 < loads.size(); ++i) {
    EXPECT_TRUE(loads[i].kv_used_blocks == 40u || loads[i].kv_used_blocks == 41u) << i;
  }
  // The timer was woken by the first change only: after that it looks once per debounce
  // period on its own while the loads keep changing.
  EXPECT_EQ(wakeups, 1u);
}

// With the outbox full the timer waits to queue a load; the engines' update() calls must
// not wait with it (they did: tick() held the lock update() needs while it waited).
TEST(LoadPublisher, UpdateDoesNotWaitWhileTheTimerWaitsForOutboxRoom) {
  test::ManualClock clock;
  MetricsRegistry metrics;
  Outbox outbox{1, clock};
  OutboxWriter writer{outbox, metrics};
  LoadPublisher publisher(writer, LoadPublisherOptions{"dynamo", 0, 10000}, metrics, clock);
  ASSERT_TRUE(outbox.try_push(OutboundMessage{}));  // full
  publisher.update(load_of(7, 1), 0);
  std::thread timer([&] { publisher.tick(0); });  // waits for room
  auto updated = std::async(std::launch::async, [&] { publisher.update(load_of(7, 2), 1); });
  const bool returned = updated.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  outbox.close();  // ends the timer's wait either way
  timer.join();
  EXPECT_TRUE(returned) << "update() waited for the outbox";
}

}  // namespace
}  // namespace kvmock
