// Bytes as a program of engine operations (configure, add, cancel, step). The engine
// must never crash, must keep active blocks within capacity, and must drain to zero
// active blocks once every request is cancelled.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/engine/engine_core.h"
#include "core/timing/polynomial_timing.h"

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  kvmock::EngineArgs args;
  args.block_size = in.byte() % 9;  // 0 is allowed: treated as 1
  args.num_gpu_blocks = in.byte() % 64;
  args.max_num_seqs = in.byte() % 8;
  args.max_num_batched_tokens = in.byte() % 80;
  const uint8_t flags = in.byte();
  args.enable_prefix_caching = flags & 1;
  args.enable_chunked_prefill = flags & 2;
  args.preemption_mode = flags & 4 ? kvmock::PreemptionMode::kFifo : kvmock::PreemptionMode::kLifo;
  args.max_model_len = flags & 8 ? in.byte() % 64 : 0;
  args.speedup_ratio = (flags >> 4) % 4;
  if (flags & 0x40) {  // G2 tier: tiny, with slow or instant links
    args.g2.num_blocks = 1 + args.num_gpu_blocks % 16;
    args.g2.kv_bytes_per_token = 1000;
    args.g2.offload_batch_size = 1 + args.max_num_seqs % 3;
    const double gbps = flags & 0x80 ? 0.0 : 0.01;
    args.g2.bandwidth_g1_to_g2_gbps = gbps;
    args.g2.bandwidth_g2_to_g1_gbps = gbps;
  }
  kvmock::EngineCore engine(args, 1, 0, std::make_unique<kvmock::PolynomialTiming>());

  double now = 0;
  kvmock::RequestId next_id = 0;
  while (!in.done()) {
    const uint8_t op = in.byte();
    if (op % 4 == 0) {
      kvmock::Request r;
      r.id = (op & 0x80) ? in.byte() % 8 : next_id++;  // sometimes a duplicate id
      r.prompt.resize(in.byte() % 100);
      for (auto& t : r.prompt) t = in.byte() % 3;
      r.max_tokens = in.byte() % 20;
      (void)engine.add_request(std::move(r));
    } else if (op % 4 == 1) {
      (void)engine.cancel(in.byte() % (next_id + 1));
    } else {
      const kvmock::PassOutput pass = engine.step(now);
      if (pass.end_ms < now) std::abort();
      if (pass.metrics.active_blocks > engine.metrics().total_blocks) std::abort();
      if (pass.metrics.g2_used_blocks > pass.metrics.g2_total_blocks) std::abort();
      if (auto deadline = engine.next_transfer_deadline_ms(); deadline && *deadline < now) {
        std::abort();  // transfers due by now were finished by step(now)
      }
      now = pass.end_ms;
    }
  }
  for (kvmock::RequestId id = 0; id <= next_id; ++id) (void)engine.cancel(id);
  for (kvmock::RequestId id = 0; id < 8; ++id) (void)engine.cancel(id);
  // In-flight G2 copies still hold G1 slots: let them finish.
  for (int i = 0; i < 1000; ++i) {
    now = engine.step(now).end_ms;
    if (!engine.has_work()) break;
  }
  if (engine.active_decode_blocks() != 0 || engine.has_work()) std::abort();
  return 0;
}
