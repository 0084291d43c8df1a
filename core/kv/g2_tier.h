// The host-memory (G2) offload tier of one engine (docs/ARCHITECTURE.md#g2-offload-tier,
// docs/ARCHITECTURE.md#simulation): the G2 pool plus the two processor-sharing links between
// it and the G1 pool.
//
// Offload. Attached to the G1 pool as its EvictionObserver. When G1 evicts the last
// copy of a block that G2 neither holds nor is already copying, the block is queued
// for a G1->G2 copy and its G1 slot is held until the copy ends. flush() starts the
// queue as transfers of up to offload_batch_size blocks, at most offload_batch_size
// transfers in flight. A finished copy registers the blocks in G2 (Stored on the
// host_pinned tier, with the G1 parent; G2 LRU evictions log Removed) and frees the
// held G1 slots.
//
// Onboard. The scheduler asks match() for the G2 continuation of a G1 prefix hit,
// then start_onboard() pins those G2 blocks and starts one G2->G1 transfer; when
// advance_to() reports it finished, the scheduler registers the blocks in G1 and
// calls finish_onboard() to drop the pins.
//
// Transfer size = blocks x block_size x kv_bytes_per_token. Time only moves through
// advance_to(); transfers started in between begin at the links' current time.
// Not thread-safe; pure.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/engine/engine_args.h"
#include "core/kv/bandwidth_link.h"
#include "core/kv/block_pool.h"
#include "core/kv/host_pool.h"

namespace kvmock {

// Counters of one G2 tier; cumulative ones never decrease.
struct G2Stats {
  uint64_t total_blocks = 0;
  uint64_t used_blocks = 0;
  uint64_t pinned_blocks = 0;          // held by onboard transfers
  uint64_t offloads_in_flight = 0;     // G1->G2 transfers started, not finished
  uint64_t onboards_in_flight = 0;     // G2->G1 transfers started, not finished
  uint64_t offload_queued_blocks = 0;  // evicted blocks waiting for a transfer slot
  uint64_t bytes_offloaded = 0;        // cumulative, finished G1->G2 transfers
  uint64_t bytes_onboarded = 0;        // cumulative, finished G2->G1 transfers
  uint64_t blocks_offloaded = 0;       // cumulative, blocks newly stored in G2
  uint64_t offloads_dropped = 0;       // cumulative, copies lost because G2 was all pinned
};

class G2Tier : public EvictionObserver {
 public:
  // `g1` must outlive the tier; the tier registers itself as its eviction observer.
  // args.offload_batch_size 0 is treated as 1.
  G2Tier(const G2Args& args, uint32_t block_size, BlockPool* g1);
  ~G2Tier() override;

  G2Tier(const G2Tier&) = delete;
  G2Tier& operator=(const G2Tier&) = delete;

  // EvictionObserver.
  void on_evict(BlockHash hash, uint64_t tokens_hash, std::optional<BlockHash> parent,
                bool last_copy) override;
  bool hold_for_copy(BlockHash hash, bool last_copy) override;

  // Starts queued offloads as batches, within the in-flight limit.
  void flush();

  // Moves both links to `now_ms`, completes finished offloads (G2 registration, host
  // events, held G1 slots freed, queue restarted) and returns the ids of finished
  // onboard transfers in finish order.
  std::vector<TransferId> advance_to(double now_ms);

  // Leading `hashes` that G2 holds.
  uint32_t match(std::span<const BlockHash> hashes) const { return host_.match_prefix(hashes); }

  // Pins `hashes` (all held by G2; see match()) and starts their G2->G1 transfer.
  TransferId start_onboard(std::span<const BlockHash> hashes);
  // Drops the pins of start_onboard(). Safe to call before the transfer finishes
  // (a cancelled request); the transfer then still runs to its end.
  void finish_onboard(std::span<const BlockHash> hashes);

  // Earliest finish instant of any transfer in flight.
  std::optional<double> next_deadline_ms() const;
  // True while a transfer is in flight or a block waits to be copied.
  bool busy() const;

  // host_pinned-tier events since the last call, in order.
  std::vector<KvEventData> take_events() { return host_.take_events(); }

  const HostPool& host() const { return host_; }
  G2Stats stats() const;

 private:
  struct PendingBlock {
    BlockHash hash;
    uint64_t tokens_hash;
    std::optional<BlockHash> parent;
  };

  uint64_t bytes_for(size_t blocks) const;

  G2Args args_;
  uint32_t block_size_;
  BlockPool* g1_;  // not owned
  HostPool host_;
  BandwidthLink offload_link_;
  BandwidthLink onboard_link_;
  std::optional<PendingBlock> evicted_;    // from on_evict, for hold_for_copy
  std::deque<PendingBlock> queue_;         // waiting for a transfer
  std::unordered_set<BlockHash> copying_;  // queued or in flight
  std::unordered_map<TransferId, std::vector<PendingBlock>> offloads_;  // in flight
  std::unordered_map<TransferId, uint64_t> onboards_;                   // in flight: bytes
  uint64_t bytes_offloaded_ = 0;
  uint64_t bytes_onboarded_ = 0;
  uint64_t blocks_offloaded_ = 0;
  uint64_t offloads_dropped_ = 0;
};

}  // namespace kvmock
