#include "core/engine/request.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <span>

namespace kvmock {
namespace {

void put_le(uint8_t* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace

TokenId synthesize_output_token(uint64_t seed, RequestId id, uint32_t position) {
  return synthesize_output_token(seed, id, position, kDefaultOutputVocabEnd, {});
}

namespace {

uint64_t output_hash(uint64_t seed, RequestId id, uint32_t position) {
  std::array<uint8_t, 20> bytes{};
  put_le(bytes.data(), seed, 8);
  put_le(bytes.data() + 8, id, 8);
  put_le(bytes.data() + 16, position, 4);
  return xxh3_64(std::span<const uint8_t>(bytes), 0);
}

// Entry `(hash + step) % count` of a candidate list for the first step whose entry is not
// excluded; each excluded id can push the choice one step, so more steps find nothing new.
template <class CandidateAt>
TokenId first_allowed(uint64_t hash, uint64_t count, std::span<const TokenId> excluded,
                      const CandidateAt& candidate_at) {
  const auto is_excluded = [excluded](TokenId t) {
    return std::find(excluded.begin(), excluded.end(), t) != excluded.end();
  };
  const uint64_t max_steps = std::min<uint64_t>(count, excluded.size() + 1);
  for (uint64_t step = 0; step < max_steps; ++step) {
    const TokenId token = candidate_at((hash + step) % count);
    if (!is_excluded(token)) return token;
  }
  return candidate_at(hash % count);
}

}  // namespace

TokenId synthesize_output_token(uint64_t seed, RequestId id, uint32_t position, TokenId vocab_end,
                                std::span<const TokenId> excluded) {
  const TokenId end = std::max<TokenId>(vocab_end, 1);
  const TokenId begin = end > 1000 ? 1000 : 0;
  return first_allowed(output_hash(seed, id, position), end - begin, excluded,
                       [begin](uint64_t i) { return static_cast<TokenId>(begin + i); });
}

TokenId synthesize_output_token_from(uint64_t seed, RequestId id, uint32_t position,
                                     std::span<const TokenId> vocabulary,
                                     std::span<const TokenId> excluded) {
  return first_allowed(output_hash(seed, id, position), vocabulary.size(), excluded,
                       [vocabulary](uint64_t i) { return vocabulary[i]; });
}

namespace {

// Key of a request's output stream: the request id, or with a per-request seed the hash of
// its prompt ids (salted by that seed through output_hash).
uint64_t prompt_hash(std::span<const TokenId> prompt) {
  return xxh3_64(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(prompt.data()),
                                          prompt.size_bytes()),
                 0);
}

// Position of the EOS draw in the output hash: past any real position, so it never equals
// the hash of an output token.
constexpr uint32_t kEosDrawPosition = UINT32_MAX;

}  // namespace

std::optional<uint32_t> eos_output_length(const OutputLengthArgs& args, const Request& request,
                                          uint64_t engine_seed) {
  if (args.distribution == OutputLengthDistribution::kMaxTokens || request.ignore_eos ||
      !request.planned_output.empty()) {
    return std::nullopt;
  }
  const uint64_t hash =
      request.seed ? output_hash(*request.seed, prompt_hash(request.prompt), kEosDrawPosition)
                   : output_hash(engine_seed, request.id, kEosDrawPosition);
  // A uniform draw in [0, 1) from the top 53 bits.
  const double u = static_cast<double>(hash >> 11) * 0x1.0p-53;
  const double mean = std::max<double>(1, args.mean);
  double drawn = 1;
  if (args.distribution == OutputLengthDistribution::kUniform) {
    drawn = 1 + std::floor(u * (2 * mean - 1));
  } else {
    drawn = std::round(-std::log1p(-u) * mean);
  }
  const double floor_len = std::max<double>({1.0, static_cast<double>(request.min_tokens), drawn});
  if (floor_len >= static_cast<double>(request.max_tokens)) return std::nullopt;
  return static_cast<uint32_t>(floor_len);
}

uint64_t max_context_tokens(const EngineArgs& args) {
  uint64_t limit = args.num_gpu_blocks * std::max<uint64_t>(1, args.block_size);
  if (args.max_model_len > 0) limit = std::min<uint64_t>(limit, args.max_model_len);
  if (!args.enable_chunked_prefill && args.max_num_batched_tokens > 0) {
    limit = std::min<uint64_t>(limit, args.max_num_batched_tokens);
  }
  return limit;
}

RequestState::RequestState(Request request)
    : request_(std::move(request)),
      prompt_len_(static_cast<uint32_t>(request_.prompt.size())),
      max_output_(request_.planned_output.empty()
                      ? request_.max_tokens
                      : static_cast<uint32_t>(request_.planned_output.size())),
      tokens_(std::move(request_.prompt)),
      hash_seed_(block_hash_seed(request_.lora_name, request_.cache_salt)) {
  request_.prompt = {};
  if (request_.seed) prompt_key_ = prompt_hash(tokens_);
}

bool RequestState::generation_complete(uint32_t max_model_len) const {
  return num_generated() >= max_output_ || (max_model_len > 0 && len() >= max_model_len);
}

TokenId RequestState::append_output(uint64_t seed) {
  const uint32_t position = num_generated();
  // Room for the output at once, instead of doubling a long prompt's storage on the
  // first token (bounded: max_output may be far more than the request will run).
  constexpr uint32_t kMaxOutputReserve = 1u << 16;
  if (position == 0) {
    tokens_.reserve(size_t{prompt_len_} + std::min(max_output_, kMaxOutputReserve));
  }
  const uint64_t stream_seed = request_.seed ? *request_.seed : seed;
  const uint64_t stream_key = request_.seed ? prompt_key_ : request_.id;
  TokenId token;
  if (position < request_.planned_output.size()) {
    token = request_.planned_output[position];
  } else if (request_.output_vocabulary && !request_.output_vocabulary->empty()) {
    token =
        synthesize_output_token_from(stream_seed, stream_key, position, *request_.output_vocabulary,
                                     request_.excluded_output_tokens);
  } else {
    token = synthesize_output_token(stream_seed, stream_key, position, request_.output_vocab_end,
                                    request_.excluded_output_tokens);
  }
  tokens_.push_back(token);
  return token;
}

bool RequestState::stopped_by_last_token(std::optional<TokenId>* matched) const {
  const uint32_t generated = num_generated();
  if (generated == 0 || generated < request_.min_tokens) return false;
  if (eos_length_ && generated >= *eos_length_) return true;
  const TokenId last = tokens_.back();
  const auto& stops = request_.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), last) != stops.end()) {
    if (matched) *matched = last;
    return true;
  }
  return false;
}

void RequestState::update_hashes(uint32_t block_size, std::mt19937_64* random_ids) {
  if (block_size == 0) return;
  const size_t full = tokens_.size() / block_size;
  while (seq_hashes_.size() < full) {
    const size_t i = seq_hashes_.size();
    if (random_ids != nullptr) {
      content_hashes_.push_back((*random_ids)());
      seq_hashes_.push_back((*random_ids)());
      continue;
    }
    const uint64_t content = tokens_hash(
        std::span<const TokenId>(tokens_).subspan(i * block_size, block_size), hash_seed_);
    content_hashes_.push_back(content);
    seq_hashes_.push_back(i == 0 ? content : next_sequence_hash(seq_hashes_[i - 1], content));
  }
}

}  // namespace kvmock
