// The JetStream publisher's window: slow start, verdicts by id, and in-order re-sending
// after trouble, without a server.
#include "transport/nats/jetstream_window.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvmock {
namespace {

using TimePoint = JetStreamWindow::TimePoint;

OutboundMessage durable(const std::string& id) {
  OutboundMessage m;
  m.subject = std::make_shared<const std::string>("s.kv-events");
  m.durable = true;
  m.msg_id = id;
  return m;
}

OutboundMessage core() {
  OutboundMessage m;
  m.subject = std::make_shared<const std::string>("load");
  return m;
}

// Sends whatever the window allows and returns the ids sent, in order.
std::vector<std::string> send_allowed(JetStreamWindow& window, TimePoint now = TimePoint{}) {
  std::vector<std::string> sent;
  while (window.has_room() && window.next_unsent() != nullptr) {
    sent.push_back(window.next_unsent()->msg_id);
    window.mark_sent(now);
  }
  return sent;
}

TEST(JetStreamWindow, StartsWithOneInFlightAndOpensOneMorePerStoredMessage) {
  JetStreamWindow window(3);
  for (const char* id : {"a", "b", "c", "d", "e", "f"}) window.append(durable(id));
  EXPECT_EQ(send_allowed(window), std::vector<std::string>{"a"});
  EXPECT_FALSE(window.has_room());
  EXPECT_TRUE(window.record("a", true));
  EXPECT_EQ(window.limit(), 2u);
  EXPECT_EQ(send_allowed(window), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(window.record("b", true));
  EXPECT_TRUE(window.record("c", true));
  EXPECT_EQ(window.limit(), 3u) << "capped at max_in_flight";
  EXPECT_EQ(send_allowed(window), (std::vector<std::string>{"d", "e", "f"}));
  const JetStreamWindow::Retired retired = window.retire();
  EXPECT_EQ(retired.durable, 3u);
  EXPECT_EQ(window.size(), 3u);
  EXPECT_EQ(window.in_flight(), 3u);
}

TEST(JetStreamWindow, OnlyTheStoredPrefixRetires) {
  JetStreamWindow window(8);
  for (const char* id : {"a", "b", "c"}) window.append(durable(id));
  send_allowed(window);
  window.record("a", true);
  send_allowed(window);
  EXPECT_TRUE(window.record("c", true)) << "out of order";
  EXPECT_EQ(window.retire().durable, 1u) << "b has no verdict yet";
  EXPECT_TRUE(window.record("b", true));
  EXPECT_EQ(window.retire().durable, 2u);
  EXPECT_EQ(window.size(), 0u);
}

TEST(JetStreamWindow, RewindResendsFromTheFirstUnstoredInOrderSkippingStoredOnes) {
  JetStreamWindow window(8);
  for (const char* id : {"a", "b", "c", "d"}) window.append(durable(id));
  send_allowed(window);  // a
  window.record("a", true);
  window.retire();
  EXPECT_EQ(send_allowed(window), (std::vector<std::string>{"b", "c"}));
  window.record("c", true);  // b lost, c stored behind it
  EXPECT_EQ(send_allowed(window), std::vector<std::string>{"d"});
  window.rewind();
  EXPECT_EQ(window.limit(), 1u);
  EXPECT_EQ(window.in_flight(), 0u);
  ASSERT_NE(window.next_unsent(), nullptr);
  EXPECT_EQ(window.next_unsent()->msg_id, "b");
  EXPECT_TRUE(window.mark_sent(TimePoint{})) << "b is a re-send";
  ASSERT_NE(window.next_unsent(), nullptr);
  EXPECT_EQ(window.next_unsent()->msg_id, "d") << "c was stored: not sent again";
  window.record("b", true);
  EXPECT_EQ(send_allowed(window), std::vector<std::string>{"d"});
  window.record("d", true);
  EXPECT_EQ(window.retire().durable, 3u);
  EXPECT_EQ(window.size(), 0u);
}

TEST(JetStreamWindow, AVerdictForAMessageNotInFlightIsIgnored) {
  JetStreamWindow window(8);
  for (const char* id : {"a", "b"}) window.append(durable(id));
  EXPECT_FALSE(window.record("a", true)) << "not sent yet";
  send_allowed(window);
  window.rewind();
  EXPECT_FALSE(window.record("a", true)) << "waiting to be re-sent";
  EXPECT_EQ(window.next_unsent()->msg_id, "a");
  EXPECT_EQ(window.retire().durable, 0u);
}

TEST(JetStreamWindow, ARefusalIsReportedUntilTheRewind) {
  JetStreamWindow window(8);
  window.append(durable("a"));
  send_allowed(window);
  EXPECT_FALSE(window.refused());
  EXPECT_TRUE(window.record("a", false));
  EXPECT_TRUE(window.refused());
  EXPECT_EQ(window.in_flight(), 0u);
  EXPECT_EQ(window.retire().durable, 0u);
  window.rewind();
  EXPECT_FALSE(window.refused());
  EXPECT_EQ(window.next_unsent()->msg_id, "a");
}

TEST(JetStreamWindow, ASecondVerdictForOnePublishIsIgnored) {
  JetStreamWindow window(8);
  window.append(durable("a"));
  send_allowed(window);
  EXPECT_TRUE(window.record("a", true));
  EXPECT_FALSE(window.record("a", false));
  EXPECT_FALSE(window.refused());
  EXPECT_EQ(window.retire().durable, 1u);
}

TEST(JetStreamWindow, AnUnknownIdIsALateVerdict) {
  JetStreamWindow window(8);
  EXPECT_FALSE(window.record("nobody", true));
  window.append(durable("a"));
  send_allowed(window);
  window.record("a", true);
  window.retire();
  EXPECT_FALSE(window.record("a", true)) << "retired messages are forgotten";
}

TEST(JetStreamWindow, TwoMessagesWithOneIdTakeOneVerdictEachInOrder) {
  JetStreamWindow window(8);
  window.append(durable("w"));
  send_allowed(window);
  window.record("w", true);
  for (const char* id : {"x", "x", "y"}) window.append(durable(id));
  send_allowed(window);  // x, x (limit 2)
  EXPECT_TRUE(window.record("x", false));
  EXPECT_TRUE(window.record("x", true));
  EXPECT_TRUE(window.refused()) << "the first x";
  EXPECT_EQ(window.retire().durable, 1u) << "w only: the first x was refused";
  EXPECT_FALSE(window.record("x", true)) << "no x left in flight";
}

TEST(JetStreamWindow, VerdictsOutOfPublishOrderStillFindTheirMessages) {
  JetStreamWindow window(8);
  for (const char* id : {"a", "b", "c", "d"}) window.append(durable(id));
  send_allowed(window);
  window.record("a", true);
  send_allowed(window);  // b, c
  window.record("b", true);
  send_allowed(window);  // d
  EXPECT_TRUE(window.record("d", true));
  EXPECT_TRUE(window.record("c", true)) << "found by wrapping around";
  EXPECT_EQ(window.retire().durable, 4u);
}

TEST(JetStreamWindow, CoreMessagesAreDeliveredWithoutAVerdict) {
  JetStreamWindow window(8);
  window.append(core());
  window.append(durable("a"));
  window.mark_delivered();
  EXPECT_EQ(window.next_unsent()->msg_id, "a");
  const JetStreamWindow::Retired retired = window.retire();
  EXPECT_EQ(retired.core, 1u);
  EXPECT_EQ(retired.durable, 0u);
}

TEST(JetStreamWindow, TheOldestWaitingMessageTimesTheAcknowledgement) {
  JetStreamWindow window(8);
  EXPECT_FALSE(window.oldest_waiting_since().has_value());
  for (const char* id : {"a", "b"}) window.append(durable(id));
  const TimePoint t1 = TimePoint{} + std::chrono::seconds(1);
  window.mark_sent(t1);
  window.record("a", true);
  const TimePoint t2 = TimePoint{} + std::chrono::seconds(2);
  window.mark_sent(t2);
  ASSERT_TRUE(window.oldest_waiting_since().has_value());
  EXPECT_EQ(*window.oldest_waiting_since(), t2);
}

TEST(JetStreamWindow, TakeUnstoredReturnsEverythingNotStoredInOrder) {
  JetStreamWindow window(8);
  for (const char* id : {"a", "b", "c"}) window.append(durable(id));
  send_allowed(window);
  window.record("a", true);
  send_allowed(window);  // b, c
  window.record("c", true);
  const std::vector<OutboundMessage> rest = window.take_unstored();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].msg_id, "b");
  EXPECT_EQ(window.size(), 0u);
  EXPECT_EQ(window.next_unsent(), nullptr);
}

}  // namespace
}  // namespace kvmock
