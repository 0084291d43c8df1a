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
      scheduler_(args) {}

Result<bool> EngineCore::add_request(Request request) { return scheduler_.add(std::move(request)); }

bool EngineCore::cancel(RequestId id) { return scheduler_.cancel(id); }

PassOutput EngineCore::step(double now_ms) {
  SchedulerPass pass = scheduler_.run_pass();
  const PassTiming timing = modeled_pass(*timing_, pass.batch, args_.speedup_ratio);

  PassOutput out;
  out.start_ms = now_ms;
  out.prefill_ms = timing.prefill_ms;
  out.decode_ms = timing.decode_ms;
  out.end_ms = now_ms + timing.total_ms();
  out.events.reserve(pass.events.size());
  for (KvEventData& data : pass.events) {
    RouterEvent event;
    event.worker_id = worker_id_;
    event.storage_tier = StorageTier::kDevice;
    event.event.event_id = 0;
    event.event.data = std::move(data);
    event.event.dp_rank = dp_rank_;
    out.events.push_back(std::move(event));
  }
  out.outputs = std::move(pass.outputs);
  out.metrics = scheduler_.metrics();
  out.fpm = pass.fpm;
  out.fpm.wall_time_secs = timing.total_ms() / 1000.0;
  return out;
}

}  // namespace kvmock
