#include "core/kv/g2_tier.h"

#include <algorithm>

namespace kvmock {

G2Tier::G2Tier(const G2Args& args, uint32_t block_size, BlockPool* g1)
    : args_(args),
      block_size_(block_size),
      g1_(g1),
      host_(args.num_blocks),
      offload_link_(args.bandwidth_g1_to_g2_gbps),
      onboard_link_(args.bandwidth_g2_to_g1_gbps) {
  if (args_.offload_batch_size == 0) args_.offload_batch_size = 1;
  g1_->set_eviction_observer(this);
}

G2Tier::~G2Tier() { g1_->set_eviction_observer(nullptr); }

void G2Tier::on_evict(BlockHash hash, uint64_t tokens_hash, std::optional<BlockHash> parent,
                      bool /*last_copy*/) {
  evicted_ = PendingBlock{hash, tokens_hash, parent};
}

bool G2Tier::hold_for_copy(BlockHash hash, bool last_copy) {
  std::optional<PendingBlock> block;
  block.swap(evicted_);
  // Another G1 copy still serves it, or G2 has (or will have) it: no copy needed.
  if (!last_copy || !block || block->hash != hash) return false;
  if (host_.contains(hash) || copying_.count(hash) != 0) return false;
  copying_.insert(hash);
  queue_.push_back(*block);
  return true;
}

uint64_t G2Tier::bytes_for(size_t blocks) const {
  return static_cast<uint64_t>(blocks) * block_size_ * args_.kv_bytes_per_token;
}

void G2Tier::flush() {
  while (!queue_.empty() && offloads_.size() < args_.offload_batch_size) {
    const size_t n = std::min<size_t>(queue_.size(), args_.offload_batch_size);
    std::vector<PendingBlock> batch(queue_.begin(),
                                    queue_.begin() + static_cast<std::ptrdiff_t>(n));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    const TransferId id = offload_link_.start(offload_link_.now_ms(), bytes_for(n));
    offloads_.emplace(id, std::move(batch));
  }
}

std::vector<TransferId> G2Tier::advance_to(double now_ms) {
  // A finished offload frees slots for the queue, whose batches start at the finish
  // instant; loop until the link has caught up with now_ms.
  bool stalled = false;  // a deadline produced no completion (rounding): go to now_ms
  for (;;) {
    const std::optional<double> deadline = offload_link_.next_deadline_ms();
    const double until = !stalled && deadline && *deadline < now_ms ? *deadline : now_ms;
    const std::vector<BandwidthLink::Completion> done = offload_link_.advance_to(until);
    for (const BandwidthLink::Completion& c : done) {
      auto it = offloads_.find(c.id);
      if (it == offloads_.end()) continue;
      bytes_offloaded_ += bytes_for(it->second.size());
      for (const PendingBlock& b : it->second) {
        copying_.erase(b.hash);
        switch (host_.insert(b.hash, b.tokens_hash, b.parent)) {
          case HostPool::Insert::kStored:
            ++blocks_offloaded_;
            break;
          case HostPool::Insert::kDuplicate:
            break;
          case HostPool::Insert::kFull:
            ++offloads_dropped_;
            break;
        }
        g1_->release_held(b.hash);
      }
      offloads_.erase(it);
    }
    flush();
    if (!(until < now_ms)) break;
    stalled = done.empty();
  }

  std::vector<TransferId> finished;
  for (const BandwidthLink::Completion& c : onboard_link_.advance_to(now_ms)) {
    auto it = onboards_.find(c.id);
    if (it == onboards_.end()) continue;
    bytes_onboarded_ += it->second;
    onboards_.erase(it);
    finished.push_back(c.id);
  }
  return finished;
}

TransferId G2Tier::start_onboard(std::span<const BlockHash> hashes) {
  for (BlockHash h : hashes) host_.pin(h);
  const uint64_t bytes = bytes_for(hashes.size());
  const TransferId id = onboard_link_.start(onboard_link_.now_ms(), bytes);
  onboards_.emplace(id, bytes);
  return id;
}

void G2Tier::finish_onboard(std::span<const BlockHash> hashes) {
  for (BlockHash h : hashes) host_.unpin(h);
}

std::optional<double> G2Tier::next_deadline_ms() const {
  const std::optional<double> a = offload_link_.next_deadline_ms();
  const std::optional<double> b = onboard_link_.next_deadline_ms();
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

bool G2Tier::busy() const { return !offloads_.empty() || !queue_.empty() || !onboards_.empty(); }

G2Stats G2Tier::stats() const {
  G2Stats s;
  s.total_blocks = host_.capacity();
  s.used_blocks = host_.size();
  s.pinned_blocks = host_.num_pinned();
  s.offloads_in_flight = offloads_.size();
  s.onboards_in_flight = onboards_.size();
  s.offload_queued_blocks = queue_.size();
  s.bytes_offloaded = bytes_offloaded_;
  s.bytes_onboarded = bytes_onboarded_;
  s.blocks_offloaded = blocks_offloaded_;
  s.offloads_dropped = offloads_dropped_;
  return s;
}

}  // namespace kvmock
