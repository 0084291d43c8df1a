// The JetStream publisher's messages between the outbox and their acknowledgement, kept in
// outbox order (docs/ARCHITECTURE.md, publishing pipeline).
//
// Many messages are in flight at once; the order in the stream still follows the outbox
// because of three rules the publisher keeps with this window's help:
//   1. Only the first message not yet stored is a candidate for re-sending, and after any
//      trouble (a refusal, a missing acknowledgement, a lost connection) every message from
//      there on is sent again, in order, on a fresh connection (`rewind`). Stored ones come
//      back as duplicates (same Nats-Msg-Id), so nothing is stored twice, and what the
//      server kept from the broken connection is a prefix of what is re-sent.
//   2. After a rewind only one message is in flight until the server has stored one
//      (slow start): a server that is up but not yet taking messages (JetStream still
//      starting, the stream being re-created) refuses that one message instead of
//      refusing a window and storing whatever follows the refusals.
//   3. The limit then grows by one for each message stored, up to `max_in_flight`.
//
// Thread-safety: `record` is called from nats.c's acknowledgement thread, everything else
// from the publisher thread; one mutex guards the entries.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "transport/nats/outbox.h"

namespace kvmock {

class JetStreamWindow {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit JetStreamWindow(size_t max_in_flight);

  // Messages held: unsent, in flight, or stored but behind an unstored one.
  size_t size() const;
  // Sent and still waiting for a verdict.
  size_t in_flight() const;
  // The current limit on messages in flight (1 after a rewind).
  size_t limit() const;
  // True when another message may be sent now.
  bool has_room() const;

  // Adds a message at the back, unsent.
  void append(OutboundMessage message);
  // The first message not yet sent, or nullptr. The pointer stays valid until the
  // message is retired or taken back.
  const OutboundMessage* next_unsent() const;
  // Marks next_unsent() as sent at `now`. Returns true when it had been sent before (a
  // re-send).
  bool mark_sent(TimePoint now);
  // Marks next_unsent() as done without an acknowledgement (a core publish).
  void mark_delivered();

  // The verdict for a message in flight with this Nats-Msg-Id. One publish gets one
  // verdict, and on one connection they come in publish order, so the search starts
  // after the last message matched: the common case costs one comparison and no index,
  // and two messages with one id take one verdict each. Returns false when no message
  // in flight has the id (a late or stray verdict, ignored).
  bool record(std::string_view msg_id, bool stored);

  // Removes the stored (or delivered) messages at the front and returns how many were
  // durable, how many were not.
  struct Retired {
    size_t durable = 0;
    size_t core = 0;
  };
  Retired retire();

  // True when a sent message was refused since the last rewind.
  bool refused() const;
  // When the oldest message still waiting for a verdict was sent.
  std::optional<TimePoint> oldest_waiting_since() const;

  // After trouble: every message not stored is unsent again and the limit drops to 1.
  void rewind();
  // Takes every message not stored, in order (at shutdown, to return to the outbox).
  std::vector<OutboundMessage> take_unstored();

 private:
  enum class State : uint8_t { kUnsent, kWaiting, kRefused, kStored };
  struct Entry {
    OutboundMessage message;
    State state = State::kUnsent;
    TimePoint sent_at{};
    bool sent_before = false;
  };

  // Moves the cursor past what is no longer unsent.
  void skip_stored();

  const size_t max_in_flight_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
  uint64_t front_sequence_ = 1;  // sequence number of entries_.front()
  size_t cursor_ = 0;            // index of the first unsent entry
  size_t in_flight_ = 0;
  size_t limit_ = 1;
  bool refused_ = false;
  uint64_t next_verdict_sequence_ = 1;  // where record() starts looking
};

}  // namespace kvmock
