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
  std::string lora_name;   // salts the block-hash seed
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

  // Appends the next output token (planned or synthesized from `seed`) and returns it.
  TokenId append_output(uint64_t seed);

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

 private:
  Request request_;
  uint32_t prompt_len_;
  uint32_t max_output_;
  std::vector<TokenId> tokens_;
  uint64_t hash_seed_;
  std::vector<BlockHash> seq_hashes_;
  std::vector<uint64_t> content_hashes_;
};

}  // namespace kvmock
