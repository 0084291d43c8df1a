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
  entries_.emplace_back().message = std::move(message);
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

bool JetStreamWindow::record(std::string_view msg_id, bool stored) {
  std::lock_guard lock(mutex_);
  const size_t sent = cursor_;  // every message in flight lies before the cursor
  if (sent == 0) return false;
  const size_t start = next_verdict_sequence_ > front_sequence_
                           ? std::min<size_t>(next_verdict_sequence_ - front_sequence_, sent)
                           : 0;
  for (size_t k = 0; k < sent; ++k) {
    const size_t i = start + k < sent ? start + k : start + k - sent;
    Entry& entry = entries_[i];
    if (entry.state != State::kWaiting || entry.message.msg_id != msg_id) continue;
    --in_flight_;
    if (stored) {
      entry.state = State::kStored;
      limit_ = std::min(max_in_flight_, limit_ + 1);
    } else {
      entry.state = State::kRefused;
      refused_ = true;
    }
    next_verdict_sequence_ = front_sequence_ + i + 1;
    return true;
  }
  return false;
}

JetStreamWindow::Retired JetStreamWindow::retire() {
  std::lock_guard lock(mutex_);
  Retired retired;
  while (!entries_.empty() && entries_.front().state == State::kStored) {
    ++(entries_.front().message.durable ? retired.durable : retired.core);
    entries_.pop_front();
    ++front_sequence_;
    if (cursor_ > 0) --cursor_;
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
  next_verdict_sequence_ = front_sequence_ + cursor_;
}

std::vector<OutboundMessage> JetStreamWindow::take_unstored() {
  std::lock_guard lock(mutex_);
  std::vector<OutboundMessage> unstored;
  for (Entry& entry : entries_) {
    if (entry.state != State::kStored) unstored.push_back(std::move(entry.message));
  }
  entries_.clear();
  front_sequence_ = 1;
  next_verdict_sequence_ = 1;
  cursor_ = 0;
  in_flight_ = 0;
  limit_ = 1;
  refused_ = false;
  return unstored;
}

}  // namespace kvmock
