// The (owner, block_hash) entries of one radix tree node (docs/wire-formats.md#radix-tree).
//
// A node of a worker's own tree has exactly one entry, and a router's tree has one per
// worker holding the block, so one entry is kept in place and more move to a list on the
// heap. A std::vector per node cost 24 bytes in the node plus a 32-byte heap block for
// the single entry; this costs 24 bytes in all while there is one entry. The list keeps
// its capacity when the node is cleared and reused, as the vector did.
//
// The entries are contiguous (view()); their order is the order of insertion until an
// entry is removed (swap_remove moves the last entry into the hole).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/events/router_event.h"

namespace kvmock {

struct OwnerEntry {
  uint32_t owner = 0;
  BlockHash block_hash = 0;
  bool operator==(const OwnerEntry&) const = default;
};

class NodeOwners {
 public:
  NodeOwners() = default;
  NodeOwners(const NodeOwners& other) { *this = other; }
  NodeOwners& operator=(const NodeOwners& other) {
    if (this == &other) return *this;
    clear();
    for (const OwnerEntry& entry : other.view()) push_back(entry);
    return *this;
  }
  NodeOwners(NodeOwners&&) noexcept = default;
  NodeOwners& operator=(NodeOwners&&) noexcept = default;
  ~NodeOwners() = default;

  std::span<const OwnerEntry> view() const {
    if (spilled()) return *more_;
    return {&first_, first_.owner == kNone ? 0u : 1u};
  }
  std::span<OwnerEntry> view() {
    if (spilled()) return *more_;
    return {&first_, first_.owner == kNone ? 0u : 1u};
  }
  auto begin() const { return view().begin(); }
  auto end() const { return view().end(); }
  size_t size() const { return view().size(); }
  bool empty() const { return size() == 0; }

  // `entry.owner` must not be UINT32_MAX (it marks the place as empty).
  void push_back(const OwnerEntry& entry) {
    if (spilled()) {
      more_->push_back(entry);
    } else if (first_.owner == kNone) {
      first_ = entry;
    } else {
      if (!more_) more_ = std::make_unique<std::vector<OwnerEntry>>();
      more_->assign({first_, entry});
      first_ = OwnerEntry{kNone, 0};
    }
  }

  // Removes entry `index`, moving the last entry into its place.
  void swap_remove(size_t index) {
    std::span<OwnerEntry> entries = view();
    entries[index] = entries.back();
    if (spilled()) {
      more_->pop_back();
    } else {
      first_ = OwnerEntry{kNone, 0};
    }
  }

  void clear() {
    first_ = OwnerEntry{kNone, 0};
    if (more_) more_->clear();
  }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  // From a second entry on, every entry is in *more_ and first_ is empty, until *more_ is
  // emptied again.
  bool spilled() const { return more_ && !more_->empty(); }

  OwnerEntry first_{kNone, 0};
  std::unique_ptr<std::vector<OwnerEntry>> more_;
};

}  // namespace kvmock
