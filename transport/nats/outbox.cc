#include "transport/nats/outbox.h"

namespace kvmock {

Outbox::Outbox(size_t capacity, const Clock& clock)
    : capacity_(capacity == 0 ? 1 : capacity), clock_(clock) {}

bool Outbox::try_push(OutboundMessage message) {
  return push(std::move(message), std::chrono::milliseconds(0));
}

bool Outbox::push(OutboundMessage message, std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(mutex_);
    if (queue_.size() >= capacity_ && timeout.count() > 0) {
      waits_.fetch_add(1, std::memory_order_relaxed);
      not_full_.wait_for(lock, timeout, [this] { return closed_ || queue_.size() < capacity_; });
    }
    if (closed_ || queue_.size() >= capacity_) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    message.enqueued_at = clock_.steady_now();
    queue_.push_back(std::move(message));
  }
  not_empty_.notify_one();
  return true;
}

size_t Outbox::push_all(std::vector<OutboundMessage>& messages, size_t from,
                        std::chrono::milliseconds timeout) {
  size_t moved = 0;
  const auto now = clock_.steady_now();
  std::unique_lock lock(mutex_);
  for (size_t i = from; i < messages.size(); ++i) {
    if (queue_.size() >= capacity_) {
      waits_.fetch_add(1, std::memory_order_relaxed);
      not_empty_.notify_one();  // let the consumer drain what is already here
      if (!not_full_.wait_for(lock, timeout,
                              [this] { return closed_ || queue_.size() < capacity_; }) ||
          closed_) {
        break;
      }
    }
    messages[i].enqueued_at = now;
    queue_.push_back(std::move(messages[i]));
    ++moved;
  }
  lock.unlock();
  if (moved > 0) not_empty_.notify_one();
  return moved;
}

bool Outbox::wait_for_room(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (queue_.size() < capacity_) return true;
  waits_.fetch_add(1, std::memory_order_relaxed);
  return not_full_.wait_for(lock, timeout, [this] {
    return closed_ || queue_.size() < capacity_;
  }) && !closed_;
}

size_t Outbox::pop_batch(std::vector<OutboundMessage>& out, size_t max,
                         std::chrono::milliseconds timeout) {
  size_t moved = 0;
  {
    std::unique_lock lock(mutex_);
    not_empty_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
    while (moved < max && !queue_.empty()) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
      ++moved;
    }
  }
  if (moved > 0) not_full_.notify_all();
  return moved;
}

void Outbox::return_front(std::vector<OutboundMessage>& messages, size_t from) {
  std::lock_guard lock(mutex_);
  for (size_t i = messages.size(); i > from; --i) queue_.push_front(std::move(messages[i - 1]));
}

void Outbox::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
}

bool Outbox::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

size_t Outbox::size() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

double Outbox::oldest_age_seconds() const {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return 0;
  return std::chrono::duration<double>(clock_.steady_now() - queue_.front().enqueued_at).count();
}

}  // namespace kvmock
