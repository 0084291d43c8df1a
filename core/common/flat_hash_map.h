// An open-addressing hash map for small trivially-copyable keys and values (block hashes,
// node indices) on hot paths: one flat array, linear probing, power-of-two capacity,
// backward-shift deletion (no tombstones, so lookups stay short however much is erased).
// std::unordered_map allocates a node per element and divides by a prime per lookup; at
// millions of block updates per second that dominates.
//
// Contract differences from std::unordered_map: inserting may move every element, so
// pointers returned by find()/try_emplace() are valid only until the next insertion;
// erase() may move other elements, so do not erase while iterating with for_each.
// Keys are hashed with the Hash functor and then mixed, so identity hashes are fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace kvmock {

// splitmix64 finalizer: spreads any 64-bit value over all bits.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class FlatHashMap {
 public:
  FlatHashMap() = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return slots_.size(); }

  // Removes every element; keeps the capacity for reuse.
  void clear() {
    if (size_ == 0) return;
    for (Slot& slot : slots_) slot.used = 0;
    size_ = 0;
  }

  // Removes every element and frees the table.
  void release() {
    std::vector<Slot>().swap(slots_);
    size_ = 0;
    mask_ = 0;
  }

  // Makes room for `count` elements without further growth.
  void reserve(size_t count) {
    size_t wanted = 8;
    while (wanted * kMaxLoadNum < count * kMaxLoadDen) wanted *= 2;
    if (wanted > slots_.size()) rehash(wanted);
  }

  Value* find(const Key& key) {
    const size_t index = locate(key);
    return index == kNotFound ? nullptr : &slots_[index].value;
  }
  const Value* find(const Key& key) const {
    const size_t index = locate(key);
    return index == kNotFound ? nullptr : &slots_[index].value;
  }
  bool contains(const Key& key) const { return locate(key) != kNotFound; }

  // Inserts (key, value) if key is absent. Returns the stored value and whether it was
  // inserted (false: the existing value is returned unchanged).
  std::pair<Value*, bool> try_emplace(const Key& key, Value value) {
    if ((size_ + 1) * kMaxLoadDen > slots_.size() * kMaxLoadNum) {
      rehash(slots_.empty() ? 8 : slots_.size() * 2);
    }
    size_t index = home(key);
    while (slots_[index].used) {
      if (slots_[index].key == key) return {&slots_[index].value, false};
      index = (index + 1) & mask_;
    }
    slots_[index].used = 1;
    slots_[index].key = key;
    slots_[index].value = std::move(value);
    ++size_;
    return {&slots_[index].value, true};
  }

  // The value of `key`, value-initialized first if absent.
  Value& operator[](const Key& key) { return *try_emplace(key, Value{}).first; }

  // Removes `key`; returns whether it was present.
  bool erase(const Key& key) {
    size_t hole = locate(key);
    if (hole == kNotFound) return false;
    // Backward shift: pull later members of the probe run into the hole when the hole
    // lies on their path from their home slot.
    size_t next = (hole + 1) & mask_;
    while (slots_[next].used) {
      const size_t want = home(slots_[next].key);
      const bool stays = hole <= next ? (hole < want && want <= next)  // want in (hole, next]
                                      : (hole < want || want <= next);
      if (!stays) {
        slots_[hole] = std::move(slots_[next]);
        hole = next;
      }
      next = (next + 1) & mask_;
    }
    slots_[hole].used = 0;
    --size_;
    return true;
  }

  // Calls fn(key, value) for every element, in table order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].used) fn(slots_[i].key, slots_[i].value);
    }
  }

 private:
  // The occupancy flag lives in the slot (in what would be padding for the usual key and
  // value types) so a probe touches one cache line, not two.
  struct Slot {
    Key key{};
    Value value{};
    uint8_t used = 0;
  };
  static constexpr size_t kNotFound = SIZE_MAX;
  // Grow beyond 3/4 full: linear probing degrades quickly past that.
  static constexpr size_t kMaxLoadNum = 3;
  static constexpr size_t kMaxLoadDen = 4;

  size_t home(const Key& key) const { return mix64(Hash{}(key)) & mask_; }

  size_t locate(const Key& key) const {
    if (size_ == 0) return kNotFound;
    size_t index = home(key);
    while (slots_[index].used) {
      if (slots_[index].key == key) return index;
      index = (index + 1) & mask_;
    }
    return kNotFound;
  }

  void rehash(size_t new_capacity) {
    std::vector<Slot> old_slots(new_capacity);
    old_slots.swap(slots_);
    mask_ = new_capacity - 1;
    size_ = 0;
    for (size_t i = 0; i < old_slots.size(); ++i) {
      if (!old_slots[i].used) continue;
      size_t index = home(old_slots[i].key);
      while (slots_[index].used) index = (index + 1) & mask_;
      slots_[index] = std::move(old_slots[i]);
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace kvmock
