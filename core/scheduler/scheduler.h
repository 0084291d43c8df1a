// The vLLM-style continuous-batching scheduler of one engine (one dp rank), after
// Dynamo's E2 core (docs/ARCHITECTURE.md#scheduler) and docs/ARCHITECTURE.md#simulation.
//
// One pass:
//  1. Running requests, in admission order, take the token budget
//     (max_num_batched_tokens) first. A request that cannot get KV preempts a victim
//     (LIFO: newest running; FIFO: oldest): the victim's blocks are released leaf
//     first, its progress is reset (generated tokens are kept and recomputed), it goes
//     to the front of waiting, and tokens it was given in this pass are refunded.
//  2. Unless this pass preempted, waiting requests are admitted in strict FIFO order
//     while fewer than max_num_seqs run. Admission needs
//       blocks(whole sequence) - active cached prefix blocks <= capacity - active blocks,
//     and a fully cached sequence still recomputes its last block. A request whose
//     whole sequence exceeds the pool is finished with error "exceeds_kv_capacity".
//  3. Every running request whose known tokens are all computed emits one token at
//     the end of the pass (so a request whose prefill ends here emits its first token
//     here). The new token's KV is allocated when it is scheduled in the next pass.
//     A request that reaches max_tokens (or max_model_len) finishes "length" and
//     releases its blocks; a request with output length 0 finishes without a token.
//     Otherwise, from min_tokens on, a token at the drawn EOS position or in
//     stop_token_ids finishes it "stop" (vLLM's check_stop order).
//
// A full block becomes cached and visible (Stored) in the pass whose decision
// computes its last token, so later requests of the same pass can hit it.
// Without prefix caching blocks get random identities and no events are produced.
//
// max_num_seqs 0 and max_num_batched_tokens 0 mean unlimited. Time-free: the pass
// reports BatchStats and the engine prices it.
//
// G2 (args.g2.enabled() and prefix caching on; core/kv/g2_tier.h): an allocation
// whose evictions are held for a G1->G2 copy makes the request wait (a waiting one
// stops admission, a running one skips the pass) instead of preempting. At admission,
// after the G1 prefix match, the contiguous continuation held in G2 is onboarded: the
// G1 prefix is pinned, destination slots are reserved, one G2->G1 transfer starts and
// the request is parked; when advance_transfers() sees it finish, the blocks become
// cached in G1 (Stored on the device tier for blocks new to G1) and the request goes
// back to the front of waiting, where they count as prefix hits.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include "core/common/result.h"
#include "core/engine/engine_args.h"
#include "core/engine/pass_output.h"
#include "core/engine/request.h"
#include "core/kv/block_pool.h"
#include "core/kv/g2_tier.h"
#include "core/timing/timing_model.h"

namespace kvmock {

// Everything one pass decided.
struct SchedulerPass {
  BatchStats batch;
  std::vector<RequestOutput> outputs;
  std::vector<KvEventData> events;  // in the order the pool made them
  ForwardPassMetrics fpm;           // wall_time_secs left 0
};

// A KV event with the storage tier it belongs to.
struct TieredEvent {
  StorageTier tier = StorageTier::kDevice;
  KvEventData data;
};

class Scheduler {
 public:
  explicit Scheduler(const EngineArgs& args);

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues `request` at the back of waiting. Errors (reason):
  //   "duplicate_request_id"  a live request has this id
  //   "empty_prompt"
  //   "prompt_too_long"       prompt >= max_model_len (when set)
  //   "exceeds_kv_capacity"   the prompt alone needs more blocks than the pool has
  //   "exceeds_batch_budget"  chunked prefill is off and the prompt exceeds the budget
  Result<bool> add(Request request);

  // Removes a live request and frees its blocks; the next pass reports it finished
  // with `reason`: kAbort for a cancellation, kStop when a stop string matched (the
  // detokenizer's check, outside the engine). Returns false for an unknown id.
  bool cancel(RequestId id, FinishReason reason = FinishReason::kAbort);

  // Runs one scheduling pass.
  SchedulerPass run_pass();

  // Moves the G2 links to `now_ms` (never backwards), finishing transfers, and returns
  // the events that produced, in order: host_pinned Stored/Removed of finished
  // offloads, then device Stored of finished onboards. Empty without G2.
  std::vector<TieredEvent> advance_transfers(double now_ms);

  // Earliest instant a G2 transfer in flight finishes; nullopt when none (or no G2).
  std::optional<double> next_transfer_deadline_ms() const;

  // True while a request is live (waiting, running or parked for an onboard), an
  // output is waiting to be reported, or a G2 transfer is queued or in flight.
  bool has_work() const {
    return !requests_.empty() || !pending_outputs_.empty() || (g2_ && g2_->busy());
  }

  const BlockPool& pool() const { return pool_; }
  BlockPool& pool() { return pool_; }
  uint32_t num_running() const { return static_cast<uint32_t>(running_.size()); }
  uint32_t num_waiting() const { return static_cast<uint32_t>(waiting_.size()); }
  uint32_t num_onboarding() const { return static_cast<uint32_t>(parked_.size()); }
  // Null when G2 is off.
  const G2Tier* g2() const { return g2_.get(); }
  EngineMetrics metrics() const;

 private:
  enum class Outcome : uint8_t { kScheduled, kSkipped, kBlocked, kCurrentPreempted };

  // Work given to one request in the current pass (for refunds on preemption).
  struct Scheduled {
    RequestState* request;
    uint32_t tokens;
    uint32_t prompt_tokens;  // prompt tokens computed
    uint32_t prompt_before;  // prompt tokens already in KV
  };

  // Gives `r` up to `*budget` tokens. From the running phase it may preempt; `cursor`
  // is the running-phase index, adjusted when a victim before it leaves.
  Outcome schedule(RequestState* r, bool from_waiting, uint64_t* budget, size_t* cursor);
  void preempt(RequestState* victim, uint64_t* budget, size_t* cursor);
  // A request parked while its G2 continuation is copied into G1.
  struct Parked {
    RequestState* request;
    uint32_t prefix_blocks;           // G1 prefix hit, pinned meanwhile
    uint32_t blocks;                  // onboarded blocks, after the prefix
    std::vector<SlotId> destination;  // reserved private G1 slots
  };
  enum class Onboard : uint8_t { kNone, kStarted, kBlocked };

  void admit_waiting(uint64_t* budget, SchedulerPass* pass);
  // Starts onboarding r's G2 continuation after `prefix_blocks` G1 hits (of `limit`
  // matchable blocks), if there is one.
  Onboard try_onboard(RequestState* r, uint32_t prefix_blocks, uint32_t limit);
  // Undoes the pins and reservation of a parked request.
  void unpark(const Parked& p);
  void emit_ready_tokens(SchedulerPass* pass);
  void fill_prefill_stats(SchedulerPass* pass) const;
  void fill_queue_stats(SchedulerPass* pass) const;
  void finish(RequestState* r, FinishReason reason, std::string_view error, SchedulerPass* pass);
  // Drops a live request (destroying it) and its share of the LoRA count.
  void forget(std::unordered_map<RequestId, std::unique_ptr<RequestState>>::iterator it);
  // True when admitting `r` would put one LoRA adapter too many in the running batch.
  bool lora_slot_taken(const RequestState& r) const;
  RequestOutput& output_for(RequestState* r, SchedulerPass* pass);
  std::mt19937_64* random_ids() { return args_.enable_prefix_caching ? nullptr : &rng_; }

  EngineArgs args_;  // block_size >= 1
  BlockPool pool_;
  std::unique_ptr<G2Tier> g2_;                     // after pool_: observes it, so must die first
  std::unordered_map<TransferId, Parked> parked_;  // by onboard transfer
  std::unordered_map<RequestId, TransferId> parked_ids_;  // request -> transfer
  uint64_t onboard_hit_tokens_ = 0;
  std::mt19937_64 rng_;  // block identities without prefix caching
  std::unordered_map<RequestId, std::unique_ptr<RequestState>> requests_;
  std::deque<RequestState*> waiting_;
  std::vector<RequestState*> running_;          // admission order
  std::vector<RequestOutput> pending_outputs_;  // cancellations not yet reported
  std::vector<Scheduled> scheduled_;            // this pass
  // Numbers the passes, from 1, for RequestState::output_pass.
  uint64_t pass_number_ = 0;
  // emit_ready_tokens' working lists, kept to reuse their storage from pass to pass.
  std::vector<RequestState*> ready_;
  std::vector<uint32_t> decode_lengths_;
  bool preempted_this_pass_ = false;
  uint64_t preemptions_total_ = 0;
  uint64_t cache_queries_tokens_ = 0;
  uint64_t cache_hits_tokens_ = 0;
  uint64_t lora_requests_ = 0;  // live requests naming a LoRA adapter
};

}  // namespace kvmock
