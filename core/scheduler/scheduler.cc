#include "core/scheduler/scheduler.h"

#include <algorithm>
#include <limits>

namespace kvmock {
namespace {

// The distinct LoRA adapter names of `requests`, sorted.
template <class Requests>
std::vector<std::string> adapter_names(const Requests& requests) {
  std::vector<std::string> names;
  for (const RequestState* r : requests) {
    const std::string& name = r->request().lora_name;
    if (!name.empty()) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Prompt lengths beyond this could overflow the 32-bit token positions.
constexpr size_t kMaxPromptTokens = std::numeric_limits<uint32_t>::max() / 2;

// Population variance of `values`.
template <typename T>
double population_variance(const std::vector<T>& values) {
  if (values.empty()) return 0;
  double mean = 0;
  for (T v : values) mean += static_cast<double>(v);
  mean /= static_cast<double>(values.size());
  double sum = 0;
  for (T v : values) sum += (static_cast<double>(v) - mean) * (static_cast<double>(v) - mean);
  return sum / static_cast<double>(values.size());
}

EngineArgs sanitized(EngineArgs args) {
  if (args.block_size == 0) args.block_size = 1;
  return args;
}

}  // namespace

Scheduler::Scheduler(const EngineArgs& args)
    : args_(sanitized(args)),
      pool_(args_.num_gpu_blocks, args_.enable_prefix_caching),
      rng_(args_.seed) {
  // Without prefix caching blocks have random identities: nothing could be found again.
  if (args_.g2.enabled() && args_.enable_prefix_caching) {
    g2_ = std::make_unique<G2Tier>(args_.g2, args_.block_size, &pool_);
  }
}

Result<bool> Scheduler::add(Request request) {
  const size_t prompt = request.prompt.size();
  if (requests_.count(request.id) != 0) {
    return make_error("duplicate_request_id", "request id is already live");
  }
  if (prompt == 0) return make_error("empty_prompt", "prompt has no tokens");
  if (prompt > kMaxPromptTokens || (args_.max_model_len > 0 && prompt >= args_.max_model_len)) {
    return make_error("prompt_too_long", "prompt length " + std::to_string(prompt) +
                                             " reaches max_model_len " +
                                             std::to_string(args_.max_model_len));
  }
  if (ceil_div(prompt, args_.block_size) > pool_.capacity()) {
    return make_error("exceeds_kv_capacity", "prompt needs more KV blocks than the engine has");
  }
  if (!args_.enable_chunked_prefill && args_.max_num_batched_tokens > 0 &&
      prompt > args_.max_num_batched_tokens) {
    return make_error("exceeds_batch_budget",
                      "prompt exceeds max_num_batched_tokens and chunked prefill is off");
  }
  const std::optional<uint32_t> eos = eos_output_length(args_.output_length, request, args_.seed);
  auto state = std::make_unique<RequestState>(std::move(request));
  state->set_eos_length(eos);
  waiting_.push_back(state.get());
  if (!state->request().lora_name.empty()) ++lora_requests_;
  const RequestId id = state->id();
  requests_.emplace(id, std::move(state));
  return true;
}

bool Scheduler::cancel(RequestId id, FinishReason reason) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  RequestState* r = it->second.get();
  if (auto pos = std::find(running_.begin(), running_.end(), r); pos != running_.end()) {
    running_.erase(pos);
  }
  if (auto pos = std::find(waiting_.begin(), waiting_.end(), r); pos != waiting_.end()) {
    waiting_.erase(pos);
  }
  if (auto p = parked_ids_.find(id); p != parked_ids_.end()) {
    // The transfer runs on (a DMA is not aborted); its completion finds no request.
    auto parked = parked_.find(p->second);
    if (parked != parked_.end()) {
      unpark(parked->second);
      parked_.erase(parked);
    }
    parked_ids_.erase(p);
  }
  pool_.release(r->blocks);
  RequestOutput out;
  out.id = id;
  out.handle = r->request().handle;
  out.finished = true;
  out.finish_reason = reason;
  out.cached_tokens = r->first_cached_tokens.value_or(0);
  out.num_generated = r->num_generated();
  pending_outputs_.push_back(out);
  forget(it);
  return true;
}

SchedulerPass Scheduler::run_pass() {
  SchedulerPass pass;
  pass.outputs.swap(pending_outputs_);
  // One output per running request is the usual pass (a token each), plus a few admitted.
  pass.outputs.reserve(pass.outputs.size() + running_.size() + 4);
  ++pass_number_;  // cancelled requests are gone: their entries are not claimed
  scheduled_.clear();
  preempted_this_pass_ = false;
  uint64_t budget = args_.max_num_batched_tokens == 0 ? std::numeric_limits<uint64_t>::max()
                                                      : args_.max_num_batched_tokens;

  size_t i = 0;
  while (i < running_.size() && budget > 0) {
    const Outcome outcome = schedule(running_[i], /*from_waiting=*/false, &budget, &i);
    if (outcome == Outcome::kBlocked) break;
    if (outcome != Outcome::kCurrentPreempted) ++i;
  }
  if (!preempted_this_pass_) admit_waiting(&budget, &pass);

  fill_prefill_stats(&pass);
  emit_ready_tokens(&pass);
  fill_queue_stats(&pass);
  if (g2_) g2_->flush();
  pass.events = pool_.take_events();
  return pass;
}

std::vector<TieredEvent> Scheduler::advance_transfers(double now_ms) {
  std::vector<TieredEvent> events;
  if (!g2_) return events;
  const std::vector<TransferId> finished = g2_->advance_to(now_ms);
  for (KvEventData& data : g2_->take_events()) {
    events.push_back(TieredEvent{StorageTier::kHostPinned, std::move(data)});
  }
  const uint32_t bs = args_.block_size;
  std::vector<RequestState*> ready;
  for (TransferId id : finished) {
    auto it = parked_.find(id);
    if (it == parked_.end()) continue;  // its request was cancelled
    const Parked& p = it->second;
    RequestState* r = p.request;
    std::vector<BlockPool::CommitBlock> commits;
    commits.reserve(p.blocks);
    for (uint32_t i = 0; i < p.blocks; ++i) {
      const uint32_t b = p.prefix_blocks + i;
      commits.push_back({p.destination[i], r->sequence_hashes()[b], r->content_hashes()[b]});
    }
    std::optional<BlockHash> parent;
    if (p.prefix_blocks > 0) parent = r->sequence_hashes()[p.prefix_blocks - 1];
    pool_.commit(parent, commits);
    onboard_hit_tokens_ += static_cast<uint64_t>(p.blocks) * bs;
    unpark(p);  // the onboarded blocks join the G1 LRU, leaf first
    r->g2_onboarded = true;
    ready.push_back(r);
    parked_ids_.erase(r->id());
    parked_.erase(it);
  }
  for (auto it = ready.rbegin(); it != ready.rend(); ++it) waiting_.push_front(*it);
  for (KvEventData& data : pool_.take_events()) {
    events.push_back(TieredEvent{StorageTier::kDevice, std::move(data)});
  }
  return events;
}

std::optional<double> Scheduler::next_transfer_deadline_ms() const {
  if (!g2_) return std::nullopt;
  return g2_->next_deadline_ms();
}

void Scheduler::unpark(const Parked& p) {
  RequestState* r = p.request;
  pool_.release(p.destination);
  for (uint32_t b = p.prefix_blocks; b-- > 0;) pool_.unpin(r->sequence_hashes()[b]);
  g2_->finish_onboard(
      std::span<const BlockHash>(r->sequence_hashes().data() + p.prefix_blocks, p.blocks));
}

Scheduler::Onboard Scheduler::try_onboard(RequestState* r, uint32_t prefix_blocks, uint32_t limit) {
  if (!g2_ || r->g2_onboarded || prefix_blocks >= limit) return Onboard::kNone;
  const std::span<const BlockHash> hashes = r->sequence_hashes();
  const std::span<const BlockHash> rest = hashes.subspan(prefix_blocks, limit - prefix_blocks);
  const uint32_t blocks = g2_->match(rest);
  if (blocks == 0) return Onboard::kNone;

  // Keep the G1 prefix resident while the rest arrives.
  for (uint32_t b = 0; b < prefix_blocks; ++b) pool_.pin(hashes[b]);
  Parked p{r, prefix_blocks, blocks, {}};
  if (pool_.try_allocate({}, blocks, &p.destination) != BlockPool::Allocation::kDone) {
    for (uint32_t b = prefix_blocks; b-- > 0;) pool_.unpin(hashes[b]);
    return Onboard::kBlocked;
  }
  const TransferId id = g2_->start_onboard(rest.first(blocks));
  parked_ids_[r->id()] = id;
  parked_.emplace(id, std::move(p));
  return Onboard::kStarted;
}

Scheduler::Outcome Scheduler::schedule(RequestState* r, bool from_waiting, uint64_t* budget,
                                       size_t* cursor) {
  const uint32_t bs = args_.block_size;
  const uint32_t cached = r->num_computed == 0 ? r->admission_cached_tokens : 0;
  const uint32_t before = r->num_computed + cached;
  const uint32_t len = r->len();
  if (before >= len) return Outcome::kSkipped;  // nothing to compute (never expected)
  const uint32_t remaining = len - before;
  const uint32_t prompt_before = std::min(before, r->prompt_len());
  const uint32_t prompt_remaining = r->prompt_len() - prompt_before;
  if (!args_.enable_chunked_prefill && prompt_remaining > *budget) return Outcome::kBlocked;
  const uint32_t desired = static_cast<uint32_t>(std::min<uint64_t>(remaining, *budget));
  if (desired == 0) return Outcome::kBlocked;
  const uint32_t after = before + desired;

  r->update_hashes(bs, random_ids());
  const uint32_t prefix_blocks = r->blocks.empty() ? cached / bs : 0;
  const auto target_blocks = static_cast<uint32_t>(ceil_div(after, bs));
  const auto held = static_cast<uint32_t>(r->blocks.size()) + prefix_blocks;
  const uint32_t fresh = target_blocks > held ? target_blocks - held : 0;
  const std::span<const BlockHash> prefix(r->sequence_hashes().data(), prefix_blocks);
  for (;;) {
    const BlockPool::Allocation a = pool_.try_allocate(prefix, fresh, &r->blocks);
    if (a == BlockPool::Allocation::kDone) break;
    // Slots are on their way back from a G1->G2 copy: wait for them, preempt nobody.
    if (a == BlockPool::Allocation::kWaitForOffload) {
      return from_waiting ? Outcome::kBlocked : Outcome::kSkipped;
    }
    if (from_waiting || running_.empty()) return Outcome::kBlocked;
    RequestState* victim =
        args_.preemption_mode == PreemptionMode::kLifo ? running_.back() : running_.front();
    preempt(victim, budget, cursor);
    if (victim == r) return Outcome::kCurrentPreempted;
  }

  // Publish every block this decision completes.
  if (prefix_blocks > 0) r->num_committed_blocks = prefix_blocks;
  const uint32_t full_after = after / bs;
  if (full_after > r->num_committed_blocks) {
    std::vector<BlockPool::CommitBlock> commits;
    commits.reserve(full_after - r->num_committed_blocks);
    for (uint32_t b = r->num_committed_blocks; b < full_after; ++b) {
      commits.push_back({r->blocks[b], r->sequence_hashes()[b], r->content_hashes()[b]});
    }
    std::optional<BlockHash> parent;
    if (r->num_committed_blocks > 0) parent = r->sequence_hashes()[r->num_committed_blocks - 1];
    pool_.commit(parent, commits);
    r->num_committed_blocks = full_after;
  }

  r->num_computed = after;
  *budget -= desired;
  const uint32_t prompt_tokens = std::min(after, r->prompt_len()) - prompt_before;
  scheduled_.push_back(Scheduled{r, desired, prompt_tokens, prompt_before});
  return Outcome::kScheduled;
}

void Scheduler::preempt(RequestState* victim, uint64_t* budget, size_t* cursor) {
  auto pos = std::find(running_.begin(), running_.end(), victim);
  const auto index = static_cast<size_t>(pos - running_.begin());
  running_.erase(pos);
  if (cursor != nullptr && index < *cursor) --*cursor;

  for (auto it = scheduled_.begin(); it != scheduled_.end(); ++it) {
    if (it->request == victim) {
      *budget += it->tokens;
      scheduled_.erase(it);
      break;
    }
  }
  pool_.release(victim->blocks);
  victim->blocks.clear();
  victim->num_committed_blocks = 0;
  victim->num_computed = 0;
  victim->admission_cached_tokens = 0;
  victim->g2_onboarded = false;
  victim->status = RequestStatus::kPreempted;
  ++victim->num_preemptions;
  ++preemptions_total_;
  waiting_.push_front(victim);
  preempted_this_pass_ = true;
}

void Scheduler::admit_waiting(uint64_t* budget, SchedulerPass* pass) {
  const uint32_t bs = args_.block_size;
  // Requests passed over because their LoRA adapter would exceed max_loras keep their
  // place; the ones behind them may still be admitted (vLLM's skipped-waiting queue).
  size_t next = 0;
  while (next < waiting_.size() &&
         (args_.max_num_seqs == 0 || running_.size() < args_.max_num_seqs)) {
    RequestState* r = waiting_[next];
    if (lora_slot_taken(*r)) {
      ++next;
      continue;
    }
    const auto take = [this, next] { waiting_.erase(waiting_.begin() + static_cast<long>(next)); };
    const uint32_t len = r->len();
    const uint64_t blocks_needed = ceil_div(len, bs);
    if (blocks_needed > pool_.capacity()) {
      take();
      finish(r, FinishReason::kError, "exceeds_kv_capacity", pass);
      continue;
    }
    BlockPool::PrefixMatch match;
    size_t limit = 0;
    if (args_.enable_prefix_caching) {
      r->update_hashes(bs, nullptr);
      // A fully cached sequence recomputes its last block to produce logits.
      limit = std::min<size_t>((len - 1) / bs, r->sequence_hashes().size());
      match = pool_.match_prefix(std::span<const BlockHash>(r->sequence_hashes().data(), limit));
    }
    const uint64_t needed = blocks_needed - match.active_blocks;
    const uint64_t available = pool_.capacity() - pool_.num_active();
    if (needed > available) break;

    const Onboard onboard = try_onboard(r, match.blocks, static_cast<uint32_t>(limit));
    if (onboard == Onboard::kBlocked) break;
    if (onboard == Onboard::kStarted) {
      take();
      continue;
    }

    r->admission_cached_tokens = match.blocks * bs;
    if (schedule(r, /*from_waiting=*/true, budget, nullptr) != Outcome::kScheduled) break;
    take();
    running_.push_back(r);
    r->status = RequestStatus::kRunning;
    cache_queries_tokens_ += len;
    cache_hits_tokens_ += r->admission_cached_tokens;
    if (!r->first_cached_tokens) {
      r->first_cached_tokens = r->admission_cached_tokens;
      RequestOutput& out = output_for(r, pass);
      out.admitted = true;
      out.cached_tokens = r->admission_cached_tokens;
    }
  }
}

void Scheduler::fill_prefill_stats(SchedulerPass* pass) const {
  std::vector<uint32_t> prompt_lengths;
  for (const Scheduled& s : scheduled_) {
    if (s.prompt_tokens == 0) continue;
    ++pass->batch.prefill_requests;
    pass->batch.prefill_isl_sum += s.prompt_before + s.prompt_tokens;
    pass->batch.prefill_prefix_sum += s.prompt_before;
    pass->fpm.sum_prefill_tokens += s.prompt_tokens;
    pass->fpm.sum_prefill_kv_tokens += s.prompt_before;
    prompt_lengths.push_back(s.request->prompt_len());
  }
  pass->fpm.num_prefill_requests = pass->batch.prefill_requests;
  pass->fpm.var_prefill_length = population_variance(prompt_lengths);
}

void Scheduler::emit_ready_tokens(SchedulerPass* pass) {
  std::vector<RequestState*>& ready = ready_;
  std::vector<uint32_t>& decode_lengths = decode_lengths_;
  ready.clear();
  decode_lengths.clear();
  for (RequestState* r : running_) {
    if (r->num_computed < r->len()) continue;
    ready.push_back(r);
    if (!r->generation_complete(args_.max_model_len)) decode_lengths.push_back(r->len());
  }
  BatchStats& batch = pass->batch;
  batch.decode_requests = static_cast<uint32_t>(decode_lengths.size());
  for (uint32_t l : decode_lengths) batch.decode_context_sum += l;
  batch.active_kv_tokens = pool_.num_active() * args_.block_size;
  batch.total_kv_tokens = pool_.capacity() * args_.block_size;
  pass->fpm.num_decode_requests = batch.decode_requests;
  pass->fpm.sum_decode_kv_tokens = batch.decode_context_sum;
  pass->fpm.var_decode_kv_tokens = population_variance(decode_lengths);

  for (RequestState* r : ready) {
    if (!r->generation_complete(args_.max_model_len)) {
      const TokenId token = r->append_output(args_.seed);
      RequestOutput& out = output_for(r, pass);
      out.tokens.push_back(token);
      out.first_token = r->num_generated() == 1;
      out.num_generated = r->num_generated();
    }
    std::optional<TokenId> matched;
    FinishReason reason = FinishReason::kNone;
    if (r->generation_complete(args_.max_model_len)) {
      reason = FinishReason::kLength;
    } else if (r->stopped_by_last_token(&matched)) {
      reason = FinishReason::kStop;
    }
    if (reason != FinishReason::kNone) {
      running_.erase(std::find(running_.begin(), running_.end(), r));
      output_for(r, pass).matched_stop_token = matched;
      finish(r, reason, {}, pass);
    }
  }
}

void Scheduler::fill_queue_stats(SchedulerPass* pass) const {
  std::vector<uint32_t> fresh;
  std::vector<uint32_t> preempted;
  for (const RequestState* r : waiting_) {
    if (r->status == RequestStatus::kPreempted) {
      preempted.push_back(r->len());
    } else {
      fresh.push_back(r->prompt_len());
    }
  }
  ForwardPassMetrics& fpm = pass->fpm;
  fpm.num_queued_prefill = static_cast<uint32_t>(fresh.size());
  for (uint32_t l : fresh) fpm.sum_queued_prefill_tokens += l;
  fpm.var_queued_prefill_length = population_variance(fresh);
  fpm.num_queued_decode = static_cast<uint32_t>(preempted.size());
  for (uint32_t l : preempted) fpm.sum_queued_decode_kv_tokens += l;
  fpm.var_queued_decode_kv_tokens = population_variance(preempted);
}

void Scheduler::finish(RequestState* r, FinishReason reason, std::string_view error,
                       SchedulerPass* pass) {
  pool_.release(r->blocks);
  r->blocks.clear();
  r->status = RequestStatus::kFinished;
  RequestOutput& out = output_for(r, pass);
  out.finished = true;
  out.finish_reason = reason;
  out.error = error;
  out.num_generated = r->num_generated();
  forget(requests_.find(r->id()));  // destroys r
}

void Scheduler::forget(std::unordered_map<RequestId, std::unique_ptr<RequestState>>::iterator it) {
  if (!it->second->request().lora_name.empty()) --lora_requests_;
  requests_.erase(it);
}

bool Scheduler::lora_slot_taken(const RequestState& r) const {
  const std::string& adapter = r.request().lora_name;
  if (adapter.empty() || args_.max_loras == 0 || lora_requests_ == 0) return false;
  // vLLM counts the adapters of the running batch (what this pass admitted included).
  std::vector<std::string_view> running;
  for (const RequestState* other : running_) {
    const std::string& name = other->request().lora_name;
    if (name.empty() || std::find(running.begin(), running.end(), name) != running.end()) continue;
    if (name == adapter) return false;
    running.push_back(name);
  }
  return running.size() >= args_.max_loras;
}

RequestOutput& Scheduler::output_for(RequestState* r, SchedulerPass* pass) {
  if (r->output_pass != pass_number_) {
    r->output_pass = pass_number_;
    r->output_slot = static_cast<uint32_t>(pass->outputs.size());
    RequestOutput out;
    out.id = r->id();
    out.handle = r->request().handle;
    out.cached_tokens = r->first_cached_tokens.value_or(0);
    out.num_generated = r->num_generated();
    pass->outputs.push_back(std::move(out));
  }
  return pass->outputs[r->output_slot];
}

EngineMetrics Scheduler::metrics() const {
  EngineMetrics m;
  m.active_blocks = pool_.num_active();
  m.total_blocks = pool_.capacity();
  m.gpu_cache_usage = m.total_blocks == 0 ? 0.0
                                          : static_cast<double>(m.active_blocks) /
                                                static_cast<double>(m.total_blocks);
  m.running_requests = num_running();
  m.waiting_requests = num_waiting();
  if (lora_requests_ > 0) {
    m.running_lora_adapters = adapter_names(running_);
    m.waiting_lora_adapters = adapter_names(waiting_);
  }
  m.preemptions_total = preemptions_total_;
  m.prefix_cache_queries_tokens = cache_queries_tokens_;
  m.prefix_cache_hits_tokens = cache_hits_tokens_;
  m.onboarding_requests = num_onboarding();
  m.g1_held_blocks = pool_.num_held();
  if (g2_) {
    const G2Stats g = g2_->stats();
    m.g2_total_blocks = g.total_blocks;
    m.g2_used_blocks = g.used_blocks;
    m.g2_pinned_blocks = g.pinned_blocks;
    m.g2_usage = g.total_blocks == 0
                     ? 0.0
                     : static_cast<double>(g.used_blocks) / static_cast<double>(g.total_blocks);
    m.offload_transfers_in_flight = g.offloads_in_flight;
    m.onboard_transfers_in_flight = g.onboards_in_flight;
    m.offload_queued_blocks = g.offload_queued_blocks;
    m.g2_bytes_offloaded = g.bytes_offloaded;
    m.g2_bytes_onboarded = g.bytes_onboarded;
    m.g2_blocks_offloaded = g.blocks_offloaded;
    m.g2_offloads_dropped = g.offloads_dropped;
  }
  m.g2_onboard_hit_tokens = onboard_hit_tokens_;
  return m;
}

}  // namespace kvmock
