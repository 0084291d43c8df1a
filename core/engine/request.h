// A generation request as the engine receives it, and the sequence state the
// scheduler keeps for it while it waits, runs, is preempted and finishes
// (docs/ARCHITECTURE.md#scheduler).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/engine/engine_args.h"
#include "core/events/router_event.h"
#include "core/kv/block_pool.h"
#include "core/tokens/block_hash.h"

namespace kvmock {

inline constexpr TokenId kDefaultOutputVocabEnd = 32000;

// Chosen by the caller and unique among the engine's live requests.
using RequestId = uint64_t;

struct Request {
  RequestId id = 0;
  std::vector<TokenId> prompt;
  uint32_t max_tokens = 0;  // output length; 0 completes after prefill with no token
  // Exact output ids (e.g. from a response trace). When non-empty its length is the
  // output length and max_tokens is ignored (Dynamo's rule: the plan wins).
  std::vector<TokenId> planned_output;
  std::string lora_name;   // salts the block-hash seed; empty: the base model
  uint32_t lora_id = 0;    // vLLM's lora_int_id, carried into KV events; 0: none
  std::string cache_salt;  // salts the block-hash seed
  // Synthesized output ids are ids of the model's vocabulary, [0, output_vocab_end), and
  // never one of `excluded_output_tokens` (a Dynamo frontend ends a stream at an EOS id,
  // so a request's EOS ids go here).
  TokenId output_vocab_end = kDefaultOutputVocabEnd;
  std::vector<TokenId> excluded_output_tokens;
  // When set and not empty, synthesized ids are drawn from this list instead of the range
  // above: a real model's readable words (TextCodec::output_vocabulary), so the output
  // detokenizes to text a client can show. Shared by every request of a worker.
  std::shared_ptr<const std::vector<TokenId>> output_vocabulary;
  double arrival_ms = 0;  // caller's clock; carried for reports, not used for ordering
  // vLLM's stop conditions (SamplingParams). Unless ignore_eos, the engine's output-length
  // distribution may place an EOS before max_tokens (finish "stop"). A generated id in
  // stop_token_ids finishes "stop" too. Neither fires before min_tokens output tokens.
  bool ignore_eos = false;
  uint32_t min_tokens = 0;
  std::vector<TokenId> stop_token_ids;
  // vLLM's per-request seed: when set, output ids and the EOS draw depend on (seed, prompt
  // ids, position) only, not on the engine's seed or the request id, so the same prompt and
  // seed give the same output on any worker and rank.
  std::optional<uint64_t> seed;
  // The caller's own handle of the request (the daemon's slot of its per-request state),
  // handed back unchanged in every RequestOutput so the caller finds its state without a
  // lookup by id; the engine does not read it.
  uint32_t handle = 0;
};

enum class RequestStatus : uint8_t { kWaiting, kRunning, kPreempted, kFinished };

// Output token `position` (0-based) of a request without planned output: a
// deterministic id in [1000, 32000) from (seed, id, position), as Dynamo's live engine
// does with a different mixer.
TokenId synthesize_output_token(uint64_t seed, RequestId id, uint32_t position);

// The same, within [1000, vocab_end) (or [0, vocab_end) for a vocabulary of at most 1000
// ids) and never an id of `excluded`: the next allowed id, wrapping. With the defaults
// (32000, nothing excluded) it equals the function above. When every id is excluded the
// plain hash is returned (there is no valid choice).
TokenId synthesize_output_token(uint64_t seed, RequestId id, uint32_t position, TokenId vocab_end,
                                std::span<const TokenId> excluded);

// The same, drawn from `vocabulary` (non-empty) instead of a range: the next allowed entry,
// wrapping; the plain pick when every entry is excluded.
TokenId synthesize_output_token_from(uint64_t seed, RequestId id, uint32_t position,
                                     std::span<const TokenId> vocabulary,
                                     std::span<const TokenId> excluded);

// Where the EOS of `request` falls: its output length counting the EOS token, drawn from
// args.distribution, deterministic in (engine_seed, request id), or in (request seed, prompt
// ids) when the request has a seed. nullopt when there is no EOS before max_tokens: the
// distribution is kMaxTokens, the request sets ignore_eos or has a planned output, or the
// draw (raised to min_tokens and 1) reaches max_tokens.
std::optional<uint32_t> eos_output_length(const OutputLengthArgs& args, const Request& request,
                                          uint64_t engine_seed);

// The longest sequence (prompt + max_tokens) an engine with `args` can ever finish:
// max_model_len when set, and never more than its KV cache holds (num_gpu_blocks ×
// block_size), as vLLM refuses to start with a max_model_len its cache cannot hold;
// without chunked prefill also at most max_num_batched_tokens (vLLM's rule too). A
// request past it can only fail, so intakes refuse it up front.
uint64_t max_context_tokens(const EngineArgs& args);

// The scheduler's view of one request. Tokens are the prompt followed by the tokens
// generated so far; `num_computed` of them have KV in the pool. Blocks are the pool
// slots holding this sequence's KV, in order; the first `num_committed_blocks` are
// cached (published), the rest private.
//
// The prompt is held once: it is moved into tokens() (request().prompt is left empty),
// because a queued prompt of a million tokens would otherwise cost its size twice.
class RequestState {
 public:
  explicit RequestState(Request request);

  const Request& request() const { return request_; }
  RequestId id() const { return request_.id; }
  uint32_t prompt_len() const { return prompt_len_; }
  uint32_t len() const { return static_cast<uint32_t>(tokens_.size()); }
  uint32_t max_output() const { return max_output_; }
  uint32_t num_generated() const { return len() - prompt_len(); }
  const std::vector<TokenId>& tokens() const { return tokens_; }

  // Whether generation is over: max_output reached or, when max_model_len > 0, the
  // sequence is that long.
  bool generation_complete(uint32_t max_model_len) const;

  // Appends the next output token (planned or synthesized from `seed`, or from the
  // request's own seed) and returns it.
  TokenId append_output(uint64_t seed);

  // Whether the last appended token ends the request with "stop" (vLLM's check_stop after
  // the length check): the drawn EOS position is reached, or it is a stop_token_ids entry;
  // never before min_tokens. `matched` gets the stop token.
  bool stopped_by_last_token(std::optional<TokenId>* matched) const;
  // Sets the output length at which an EOS ends the request (see eos_output_length).
  void set_eos_length(std::optional<uint32_t> length) { eos_length_ = length; }

  // Makes sure the sequence and content hashes of every full block are known. With
  // `random_ids` (prefix caching off) blocks get fresh random identities instead, so
  // no two sequences ever share one.
  void update_hashes(uint32_t block_size, std::mt19937_64* random_ids);
  const std::vector<BlockHash>& sequence_hashes() const { return seq_hashes_; }
  const std::vector<uint64_t>& content_hashes() const { return content_hashes_; }

  // Mutable scheduling state, owned by the scheduler.
  RequestStatus status = RequestStatus::kWaiting;
  uint32_t num_computed = 0;
  std::vector<SlotId> blocks;
  uint32_t num_committed_blocks = 0;
  uint32_t num_preemptions = 0;
  uint32_t admission_cached_tokens = 0;         // prefix credit for the next first allocation
  std::optional<uint32_t> first_cached_tokens;  // credit at the first admission
  // Set when a G2 onboard for this admission attempt finished, so the request does
  // not onboard again before it runs; cleared by preemption.
  bool g2_onboarded = false;
  // This request's entry in the outputs of the pass numbered `output_pass` (the
  // scheduler's count): found without a lookup by id.
  uint64_t output_pass = 0;
  uint32_t output_slot = 0;

 private:
  Request request_;
  uint32_t prompt_len_;
  uint32_t max_output_;
  std::optional<uint32_t> eos_length_;
  std::vector<TokenId> tokens_;
  // With a per-request seed: the prompt's hash, standing in for the request id in output
  // synthesis so that ids do not depend on which engine serves it.
  uint64_t prompt_key_ = 0;
  uint64_t hash_seed_;
  std::vector<BlockHash> seq_hashes_;
  std::vector<uint64_t> content_hashes_;
};

}  // namespace kvmock
