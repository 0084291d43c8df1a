#include "core/engine/engine_core.h"

#include "core/timing/polynomial_timing.h"

namespace kvmock {

EngineCore::EngineCore(const EngineArgs& args, WorkerId worker_id, DpRank dp_rank,
                       std::unique_ptr<TimingModel> timing)
    : args_(args),
      worker_id_(worker_id),
      dp_rank_(dp_rank),
      // A null model would crash every pass; fall back to the default rather than fail.
      timing_(timing ? std::move(timing) : std::make_unique<PolynomialTiming>()),
      scheduler_(std::make_unique<Scheduler>(args)) {}

Result<bool> EngineCore::add_request(Request request) {
  return scheduler_->add(std::move(request));
}

bool EngineCore::cancel(RequestId id) { return scheduler_->cancel(id, FinishReason::kAbort); }

bool EngineCore::stop(RequestId id) { return scheduler_->cancel(id, FinishReason::kStop); }

bool EngineCore::reset_prefix_cache() {
  if (has_work()) return false;
  // A fresh scheduler holds a fresh pool (and G2 tier): nothing cached, nothing owed.
  scheduler_ = std::make_unique<Scheduler>(args_);
  return true;
}

PassOutput EngineCore::step(double now_ms) {
  std::vector<TieredEvent> transfer_events = scheduler_->advance_transfers(now_ms);
  SchedulerPass pass = scheduler_->run_pass();
  const PassTiming timing = modeled_pass(*timing_, pass.batch, args_.speedup_ratio);

  PassOutput out;
  out.start_ms = now_ms;
  out.prefill_ms = timing.prefill_ms;
  out.decode_ms = timing.decode_ms;
  out.end_ms = now_ms + timing.total_ms();
  if (pass.batch.prefill_requests == 0 && pass.batch.decode_requests == 0) {
    const std::optional<double> deadline = scheduler_->next_transfer_deadline_ms();
    if (deadline && *deadline > out.end_ms) out.end_ms = *deadline;
  }
  auto append = [&](StorageTier tier, KvEventData&& data) {
    RouterEvent event;
    event.worker_id = worker_id_;
    event.storage_tier = tier;
    event.event.event_id = 0;
    event.event.data = std::move(data);
    event.event.dp_rank = dp_rank_;
    out.events.push_back(std::move(event));
  };
  out.events.reserve(transfer_events.size() + pass.events.size());
  for (TieredEvent& e : transfer_events) append(e.tier, std::move(e.data));
  for (KvEventData& data : pass.events) append(StorageTier::kDevice, std::move(data));
  out.outputs = std::move(pass.outputs);
  out.metrics = scheduler_->metrics();
  out.fpm = pass.fpm;
  out.fpm.wall_time_secs = timing.total_ms() / 1000.0;
  return out;
}

}  // namespace kvmock
