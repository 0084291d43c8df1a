#include "core/kv/block_pool.h"

#include <algorithm>
#include <unordered_set>

namespace kvmock {

BlockPool::BlockPool(uint64_t capacity, bool publish_events)
    : capacity_(std::min<uint64_t>(capacity, kNil - 1)), publish_events_(publish_events) {}

SlotId BlockPool::first_copy(BlockHash hash) const {
  const SlotId* first = first_copy_.find(hash);
  return first == nullptr ? kNil : *first;
}

uint32_t BlockPool::copies(BlockHash hash) const {
  uint32_t count = 0;
  for (SlotId id = first_copy(hash); id != kNil; id = slots_[id].next_copy) ++count;
  return count;
}

SlotId BlockPool::pick_copy(BlockHash hash) const {
  const SlotId first = first_copy(hash);
  for (SlotId id = first; id != kNil; id = slots_[id].next_copy) {
    if (!is_inactive(slots_[id])) return id;
  }
  return first;
}

BlockPool::PrefixMatch BlockPool::match_prefix(std::span<const BlockHash> hashes) const {
  PrefixMatch match;
  for (BlockHash hash : hashes) {
    SlotId id = pick_copy(hash);
    if (id == kNil) break;
    ++match.blocks;
    if (!is_inactive(slots_[id])) ++match.active_blocks;
  }
  return match;
}

bool BlockPool::allocate(std::span<const BlockHash> prefix, uint32_t fresh,
                         std::vector<SlotId>* out) {
  return try_allocate(prefix, fresh, out) == Allocation::kDone;
}

BlockPool::Allocation BlockPool::try_allocate(std::span<const BlockHash> prefix, uint32_t fresh,
                                              std::vector<SlotId>* out) {
  // Count, without touching anything, the inactive prefix copies this call would
  // reactivate: they stop being evictable, so they cannot pay for the fresh slots.
  uint64_t reactivated = 0;
  std::unordered_set<BlockHash> seen;
  for (BlockHash hash : prefix) {
    SlotId id = pick_copy(hash);
    if (id == kNil) return Allocation::kNoSpace;
    if (is_inactive(slots_[id]) && seen.insert(hash).second) ++reactivated;
  }
  const uint64_t evictable = num_inactive_ - reactivated;
  if (num_free() + evictable < fresh) return Allocation::kNoSpace;

  const size_t first = out->size();
  for (BlockHash hash : prefix) {
    SlotId id = pick_copy(hash);
    Slot& slot = slots_[id];
    if (is_inactive(slot)) lru_unlink(id);
    ++slot.refs;
    out->push_back(id);
  }
  // Free slots first, then one eviction per missing slot. A held eviction still pays
  // for its slot (it becomes free when the copy ends) but cannot be used now.
  std::vector<BlockHash> removed;
  uint64_t pending = 0;
  for (uint32_t i = 0; i < fresh; ++i) {
    if (num_free() == 0 && !evict_oldest(&removed)) {
      ++pending;
      continue;
    }
    SlotId id = take_free_slot();
    slots_[id].state = State::kPrivate;
    out->push_back(id);
  }
  if (publish_events_ && !removed.empty()) events_.push_back(RemoveData{std::move(removed)});
  if (pending > 0) {
    std::vector<SlotId> taken(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
    out->resize(first);
    release(taken);
    return Allocation::kWaitForOffload;
  }
  return Allocation::kDone;
}

void BlockPool::release_held(BlockHash hash) {
  auto it = held_.find(hash);
  if (it == held_.end()) return;
  slots_[it->second] = Slot{};
  free_ids_.push_back(it->second);
  held_.erase(it);
}

void BlockPool::commit(std::optional<BlockHash> parent, std::span<const CommitBlock> blocks) {
  std::optional<StoreData> group;
  auto flush = [&] {
    if (group && publish_events_) events_.push_back(std::move(*group));
    group.reset();
  };
  for (const CommitBlock& block : blocks) {
    if (block.slot >= slots_.size() || slots_[block.slot].state != State::kPrivate) {
      flush();
      parent = block.hash;
      continue;
    }
    Slot& slot = slots_[block.slot];
    slot.state = State::kCached;
    slot.hash = block.hash;
    slot.tokens_hash = block.tokens_hash;
    slot.parent = parent;
    slot.refs = 1;
    slot.next_copy = kNil;
    const auto [first, inserted] = first_copy_.try_emplace(block.hash, block.slot);
    if (inserted) {
      if (!group) {
        group.emplace();
        group->parent_hash = parent;
      }
      group->blocks.push_back(StoredBlock{block.hash, block.tokens_hash, std::nullopt});
    } else {
      append_copy(*first, block.slot);
      flush();  // already visible: the router knows it, so the run of new blocks breaks
    }
    parent = block.hash;
  }
  flush();
}

void BlockPool::release(std::span<const SlotId> slots) {
  for (auto it = slots.rbegin(); it != slots.rend(); ++it) {
    if (*it < slots_.size()) drop_reference(*it);
  }
}

void BlockPool::drop_reference(SlotId id) {
  Slot& slot = slots_[id];
  switch (slot.state) {
    case State::kFree:
    case State::kHeld:
      return;
    case State::kPrivate:
      slot = Slot{};
      free_ids_.push_back(id);
      return;
    case State::kCached:
      if (slot.refs == 0) return;
      --slot.refs;
      if (is_inactive(slot)) lru_push_newest(id);
      return;
  }
}

bool BlockPool::pin(BlockHash hash) {
  SlotId id = pick_copy(hash);
  if (id == kNil) return false;
  Slot& slot = slots_[id];
  if (is_inactive(slot)) lru_unlink(id);
  ++slot.pins;
  return true;
}

void BlockPool::unpin(BlockHash hash) {
  for (SlotId id = first_copy(hash); id != kNil; id = slots_[id].next_copy) {
    Slot& slot = slots_[id];
    if (slot.pins == 0) continue;
    --slot.pins;
    if (is_inactive(slot)) lru_push_newest(id);
    return;
  }
}

std::vector<KvEventData> BlockPool::take_events() {
  std::vector<KvEventData> out;
  out.swap(events_);
  return out;
}

SlotId BlockPool::take_free_slot() {
  if (!free_ids_.empty()) {
    SlotId id = free_ids_.back();
    free_ids_.pop_back();
    return id;
  }
  slots_.emplace_back();
  return static_cast<SlotId>(slots_.size() - 1);
}

bool BlockPool::evict_oldest(std::vector<BlockHash>* removed) {
  SlotId id = lru_head_;
  lru_unlink(id);
  Slot& slot = slots_[id];
  const bool last_copy = unlink_copy(id);
  if (last_copy) removed->push_back(slot.hash);
  bool hold = false;
  if (observer_ != nullptr) {
    observer_->on_evict(slot.hash, slot.tokens_hash, slot.parent, last_copy);
    hold = observer_->hold_for_copy(slot.hash, last_copy) && held_.count(slot.hash) == 0;
  }
  if (hold) {
    const BlockHash hash = slot.hash;
    slot = Slot{};
    slot.state = State::kHeld;
    held_.emplace(hash, id);
    return false;
  }
  slot = Slot{};
  free_ids_.push_back(id);
  return true;
}

void BlockPool::append_copy(SlotId first, SlotId id) {
  SlotId last = first;
  while (slots_[last].next_copy != kNil) last = slots_[last].next_copy;
  slots_[last].next_copy = id;
}

bool BlockPool::unlink_copy(SlotId id) {
  Slot& slot = slots_[id];
  SlotId* first = first_copy_.find(slot.hash);
  bool last_copy = false;
  if (*first != id) {
    SlotId before = *first;
    while (slots_[before].next_copy != id) before = slots_[before].next_copy;
    slots_[before].next_copy = slot.next_copy;
  } else if (slot.next_copy != kNil) {
    *first = slot.next_copy;
  } else {
    first_copy_.erase(slot.hash);
    last_copy = true;
  }
  slot.next_copy = kNil;
  return last_copy;
}

void BlockPool::lru_push_newest(SlotId id) {
  Slot& slot = slots_[id];
  slot.lru_prev = lru_tail_;
  slot.lru_next = kNil;
  if (lru_tail_ != kNil) {
    slots_[lru_tail_].lru_next = id;
  } else {
    lru_head_ = id;
  }
  lru_tail_ = id;
  ++num_inactive_;
}

void BlockPool::lru_unlink(SlotId id) {
  Slot& slot = slots_[id];
  if (slot.lru_prev != kNil) {
    slots_[slot.lru_prev].lru_next = slot.lru_next;
  } else {
    lru_head_ = slot.lru_next;
  }
  if (slot.lru_next != kNil) {
    slots_[slot.lru_next].lru_prev = slot.lru_prev;
  } else {
    lru_tail_ = slot.lru_prev;
  }
  slot.lru_prev = slot.lru_next = kNil;
  --num_inactive_;
}

}  // namespace kvmock
