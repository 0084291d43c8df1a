#include "transport/nats/jetstream_window.h"

#include <algorithm>

namespace kvmock {

JetStreamWindow::JetStreamWindow(size_t max_in_flight)
    : max_in_flight_(std::max<size_t>(1, max_in_flight)) {}

size_t JetStreamWindow::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

size_t JetStreamWindow::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

size_t JetStreamWindow::limit() const {
  std::lock_guard lock(mutex_);
  return limit_;
}

bool JetStreamWindow::has_room() const {
  std::lock_guard lock(mutex_);
  return in_flight_ < limit_;
}

void JetStreamWindow::append(OutboundMessage message) {
  std::lock_guard lock(mutex_);
  Entry& entry = entries_.emplace_back();
  entry.message = std::move(message);
  const uint64_t sequence = front_sequence_ + entries_.size() - 1;
  if (entry.message.msg_id.empty()) return;  // a core message: no verdict will come
  auto [it, inserted] = by_id_.try_emplace(entry.message.msg_id, sequence);
  if (inserted) return;
  // The same id again (the server will take it for a duplicate): chain it, so the one
  // verdict the server gives for both reaches both.
  Entry* last = entry_at(it->second);
  while (last->next_with_same_id != 0) last = entry_at(last->next_with_same_id);
  last->next_with_same_id = sequence;
}

const OutboundMessage* JetStreamWindow::next_unsent() const {
  std::lock_guard lock(mutex_);
  return cursor_ < entries_.size() ? &entries_[cursor_].message : nullptr;
}

bool JetStreamWindow::mark_sent(TimePoint now) {
  std::lock_guard lock(mutex_);
  if (cursor_ >= entries_.size()) return false;
  Entry& entry = entries_[cursor_];
  const bool resent = entry.sent_before;
  entry.state = State::kWaiting;
  entry.sent_at = now;
  entry.sent_before = true;
  ++in_flight_;
  skip_stored();
  return resent;
}

void JetStreamWindow::mark_delivered() {
  std::lock_guard lock(mutex_);
  if (cursor_ >= entries_.size()) return;
  entries_[cursor_].state = State::kStored;
  skip_stored();
}

void JetStreamWindow::skip_stored() {
  // Messages stored before a rewind are not sent again.
  while (cursor_ < entries_.size() && entries_[cursor_].state != State::kUnsent) ++cursor_;
}

JetStreamWindow::Entry* JetStreamWindow::entry_at(uint64_t sequence) {
  if (sequence < front_sequence_ || sequence - front_sequence_ >= entries_.size()) return nullptr;
  return &entries_[sequence - front_sequence_];
}

bool JetStreamWindow::record(std::string_view msg_id, bool stored) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(msg_id);
  if (it == by_id_.end()) return false;
  for (Entry* entry = entry_at(it->second); entry != nullptr;
       entry = entry->next_with_same_id != 0 ? entry_at(entry->next_with_same_id) : nullptr) {
    const bool waiting = entry->state == State::kWaiting;
    if (stored) {
      if (entry->state == State::kStored) continue;
      // A verdict from before a rewind may store a message that waits to be re-sent: it
      // is stored all the same, and the cursor skips it.
      entry->state = State::kStored;
      skip_stored();
      if (waiting) {
        --in_flight_;
        limit_ = std::min(max_in_flight_, limit_ + 1);
      }
    } else if (waiting) {
      entry->state = State::kRefused;
      --in_flight_;
      refused_ = true;
    }
  }
  return true;
}

void JetStreamWindow::forget_id(const Entry& entry, uint64_t sequence) {
  if (entry.message.msg_id.empty()) return;
  auto it = by_id_.find(entry.message.msg_id);
  if (it == by_id_.end() || it->second != sequence) return;
  if (entry.next_with_same_id != 0) {
    // Re-key on the next entry's own string: this entry's is about to go.
    const uint64_t next = entry.next_with_same_id;
    by_id_.erase(it);
    by_id_.emplace(entry_at(next)->message.msg_id, next);
  } else {
    by_id_.erase(it);
  }
}

void JetStreamWindow::release_front() {
  forget_id(entries_.front(), front_sequence_);
  entries_.pop_front();
  ++front_sequence_;
  if (cursor_ > 0) --cursor_;
}

JetStreamWindow::Retired JetStreamWindow::retire() {
  std::lock_guard lock(mutex_);
  Retired retired;
  while (!entries_.empty() && entries_.front().state == State::kStored) {
    ++(entries_.front().message.durable ? retired.durable : retired.core);
    release_front();
  }
  return retired;
}

bool JetStreamWindow::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

std::optional<JetStreamWindow::TimePoint> JetStreamWindow::oldest_waiting_since() const {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < cursor_; ++i) {
    if (entries_[i].state == State::kWaiting) return entries_[i].sent_at;
  }
  return std::nullopt;
}

void JetStreamWindow::rewind() {
  std::lock_guard lock(mutex_);
  cursor_ = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& entry = entries_[i];
    if (entry.state == State::kStored) continue;
    entry.state = State::kUnsent;
    cursor_ = std::min(cursor_, i);
  }
  in_flight_ = 0;
  limit_ = 1;
  refused_ = false;
}

std::vector<OutboundMessage> JetStreamWindow::take_unstored() {
  std::lock_guard lock(mutex_);
  std::vector<OutboundMessage> unstored;
  for (Entry& entry : entries_) {
    if (entry.state != State::kStored) unstored.push_back(std::move(entry.message));
  }
  entries_.clear();
  by_id_.clear();
  front_sequence_ = 1;
  cursor_ = 0;
  in_flight_ = 0;
  limit_ = 1;
  refused_ = false;
  return unstored;
}

}  // namespace kvmock
