// One simulated inference engine (one worker, one dp rank): the scheduler, its G1
// block pool and a timing model. The live driver and offline replay both drive it the
// same way:
//
//   EngineCore engine(args, worker_id, dp_rank, std::move(timing));
//   engine.add_request(request);              // any time between passes
//   while (engine.has_work()) {
//     PassOutput pass = engine.step(now_ms);  // decides the pass instantly
//     publish(pass.events);                   // vLLM makes KV visible at pass start
//     wait until pass.end_ms (wall clock) or advance a virtual clock to it;
//     deliver(pass.outputs);                  // tokens are stamped at pass end
//     now_ms = pass.end_ms;
//   }
//
// Core is time-free: `now_ms` comes from the caller and the engine never reads a clock.
// With the G2 tier on (args.g2, core/kv/g2_tier.h) KV transfers progress with that
// clock: step() first moves them to now_ms. A driver with no pass to run should wake
// at next_transfer_deadline_ms() and step() then; has_work() stays true meanwhile.
// With dp_size > 1 the driver builds one EngineCore per rank (each has its own pool,
// scheduler and event stream). args.seed drives output-token synthesis and, without
// prefix caching, block identities, so a run is reproducible from its inputs.
// Not thread-safe; the owner serializes calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/common/result.h"
#include "core/engine/engine_args.h"
#include "core/engine/pass_output.h"
#include "core/engine/request.h"
#include "core/events/router_event.h"
#include "core/scheduler/scheduler.h"
#include "core/timing/timing_model.h"

namespace kvmock {

struct PassOutput {
  double start_ms = 0;  // the now_ms given to step()
  // start_ms + (prefill + decode) / speedup_ratio; equals start_ms when speedup is 0 or
  // the pass did no model work. Exception (G2 only): a pass that scheduled nothing
  // while a transfer is in flight ends at the earliest transfer deadline, so a driver
  // that steps from end_ms to end_ms makes virtual time progress ("stall advance").
  double end_ms = 0;
  double prefill_ms = 0;  // modeled, after speedup
  double decode_ms = 0;   // modeled, after speedup
  // KV events of the pass in order: worker/dp_rank set, event_id 0 (the publishing
  // pipeline numbers them). Empty without prefix caching. Storage tier device, except
  // with G2: events of transfers that finished by start_ms come first, host_pinned for
  // G2 Stored/Removed (engine medium "CPU_PINNED") and device for onboarded blocks.
  std::vector<RouterEvent> events;
  std::vector<RequestOutput> outputs;
  EngineMetrics metrics;  // as of the end of the pass
  ForwardPassMetrics fpm;
};

class EngineCore {
 public:
  // `timing` must not be null (see make_timing_model). args.block_size 0 is treated
  // as 1; config validation is expected to reject it first.
  EngineCore(const EngineArgs& args, WorkerId worker_id, DpRank dp_rank,
             std::unique_ptr<TimingModel> timing);

  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  // Queues a request; it is considered from the next step(). Returns true, or an Error
  // with one of the reasons listed at Scheduler::add ("duplicate_request_id",
  // "empty_prompt", "prompt_too_long", "exceeds_kv_capacity", "exceeds_batch_budget").
  Result<bool> add_request(Request request);

  // Drops a waiting or running request and frees its KV. The next step() reports it
  // finished with FinishReason::kAbort. False when the id is not live.
  bool cancel(RequestId id);
  // The same, reported as FinishReason::kStop: the request's text matched a stop string
  // (vLLM checks those in the detokenizer, outside the engine core).
  bool stop(RequestId id);

  // vLLM's reset_prefix_cache: forgets every cached block (G1 and G2), as sleep mode
  // discards the KV cache. Refused (false) while has_work(): vLLM refuses it while blocks
  // are in use. The caller publishes the Cleared event: the pool logs nothing for it.
  bool reset_prefix_cache();

  // Finishes the G2 transfers due by `now_ms`, then runs one pass that starts at
  // `now_ms` (caller's clock, monotonic).
  PassOutput step(double now_ms);

  // True while a request is live (including one parked for a G2 onboard), an output
  // is not yet reported, or a G2 transfer is queued or in flight. When false, step()
  // would do nothing; the driver may sleep until the next add_request().
  bool has_work() const { return scheduler_->has_work(); }

  // The earliest instant a G2 transfer in flight finishes (nullopt when none or G2 is
  // off). Stepping at that instant finishes it, emits its events and may admit the
  // request it was holding up.
  std::optional<double> next_transfer_deadline_ms() const {
    return scheduler_->next_transfer_deadline_ms();
  }

  // Load for ActiveLoad: both are G1 blocks that cannot be evicted (held by requests,
  // pinned or being computed), Dynamo's "active blocks".
  uint64_t active_decode_blocks() const { return scheduler_->pool().num_active(); }
  uint64_t kv_used_blocks() const { return scheduler_->pool().num_active(); }

  EngineMetrics metrics() const { return scheduler_->metrics(); }
  // True when this engine has a G2 tier (args.g2.enabled() with prefix caching on);
  // fixed at construction.
  bool g2_enabled() const { return scheduler_->g2() != nullptr; }
  WorkerId worker_id() const { return worker_id_; }
  DpRank dp_rank() const { return dp_rank_; }
  const EngineArgs& args() const { return args_; }

 private:
  EngineArgs args_;
  WorkerId worker_id_;
  DpRank dp_rank_;
  std::unique_ptr<TimingModel> timing_;
  std::unique_ptr<Scheduler> scheduler_;  // replaced whole by reset_prefix_cache()
};

}  // namespace kvmock
