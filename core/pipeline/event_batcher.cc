#include "core/pipeline/event_batcher.h"

#include <algorithm>
#include <utility>

namespace kvmock {

namespace {

size_t block_count(const KvEventData& data) {
  if (const auto* store = std::get_if<StoreData>(&data)) return store->blocks.size();
  if (const auto* remove = std::get_if<RemoveData>(&data)) return remove->block_hashes.size();
  return 0;
}

}  // namespace

EventBatcher::EventBatcher(uint64_t timeout_ms)
    : timeout_ms_(std::min(timeout_ms, kMaxBatchingTimeoutMs)) {}

size_t EventBatcher::pending_blocks() const {
  return pending_ ? block_count(pending_->event.data) : 0;
}

std::optional<uint64_t> EventBatcher::next_deadline_ms() const {
  if (!pending_) return std::nullopt;
  return pending_since_ms_ + timeout_ms_;
}

bool EventBatcher::can_merge(const RouterEvent& event) const {
  if (!pending_) return false;
  const RouterEvent& head = *pending_;
  if (head.worker_id != event.worker_id || head.event.dp_rank != event.event.dp_rank ||
      head.storage_tier != event.storage_tier) {
    return false;
  }
  if (pending_blocks() + block_count(event.event.data) > kMaxBatchBlocks) return false;
  if (is_remove(head.event.data) && is_remove(event.event.data)) return true;
  const auto* pending_store = std::get_if<StoreData>(&head.event.data);
  const auto* store = std::get_if<StoreData>(&event.event.data);
  if (pending_store == nullptr || store == nullptr || pending_store->blocks.empty()) return false;
  return store->parent_hash == pending_store->blocks.back().block_hash;
}

void EventBatcher::flush_into(std::vector<RouterEvent>& out) {
  if (!pending_) return;
  out.push_back(std::move(*pending_));
  pending_.reset();
}

std::vector<RouterEvent> EventBatcher::push(RouterEvent event, uint64_t now_ms) {
  std::vector<RouterEvent> out;
  push(std::move(event), now_ms, out);
  return out;
}

void EventBatcher::push(RouterEvent event, uint64_t now_ms, std::vector<RouterEvent>& out) {
  if (!enabled()) {
    out.push_back(std::move(event));
    return;
  }
  if (pending_ && now_ms >= pending_since_ms_ + timeout_ms_) flush_into(out);
  if (is_clear(event.event.data)) {
    flush_into(out);
    out.push_back(std::move(event));
    return;
  }
  if (can_merge(event)) {
    KvEventData& into = pending_->event.data;
    if (auto* remove = std::get_if<RemoveData>(&into)) {
      auto& from = std::get<RemoveData>(event.event.data).block_hashes;
      remove->block_hashes.insert(remove->block_hashes.end(), from.begin(), from.end());
    } else {
      auto& from = std::get<StoreData>(event.event.data).blocks;
      auto& blocks = std::get<StoreData>(into).blocks;
      blocks.insert(blocks.end(), std::make_move_iterator(from.begin()),
                    std::make_move_iterator(from.end()));
    }
    ++merged_;
  } else {
    flush_into(out);
    pending_ = std::move(event);
    pending_since_ms_ = now_ms;
  }
  if (pending_blocks() >= kMaxBatchBlocks) flush_into(out);
}

std::vector<RouterEvent> EventBatcher::poll(uint64_t now_ms) {
  std::vector<RouterEvent> out;
  if (pending_ && now_ms >= pending_since_ms_ + timeout_ms_) flush_into(out);
  return out;
}

std::vector<RouterEvent> EventBatcher::flush() {
  std::vector<RouterEvent> out;
  flush_into(out);
  return out;
}

}  // namespace kvmock
