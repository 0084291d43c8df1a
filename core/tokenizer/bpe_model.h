// The BPE model of a Hugging Face tokenizer: turns one pre-tokenized piece into ids by
// starting from its characters and applying the file's merges, lowest rank first. Covers
// the options real files use: ignore_merges (a piece that is itself a vocabulary entry is
// one token), byte_fallback (unknown characters become <0xNN> byte tokens), unk_token
// and fuse_unk, continuing_subword_prefix and end_of_word_suffix. Dropout is refused: it
// is random, so no id sequence could be reproduced.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/common/flat_hash_map.h"
#include "core/common/result.h"
#include "core/tokens/block_hash.h"

namespace kvmock::tokenizer {

// Hash and equality that let a std::string-keyed map be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using Vocabulary = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // From the "model" object of tokenizer.json. Errors: "unsupported" (another model type,
  // dropout), "bad_tokenizer" (missing fields, a merge whose parts or result are not in
  // the vocabulary).
  static Result<std::unique_ptr<BpeModel>> from_json(const nlohmann::json& spec);

  // Appends the ids of one piece (valid UTF-8).
  void tokenize(std::string_view piece, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  const std::string* id_to_token(TokenId id) const;
  // One past the largest vocabulary id.
  uint32_t id_bound() const { return static_cast<uint32_t>(id_to_token_.size()); }

 private:
  struct MergeResult {
    uint32_t rank = 0;
    TokenId merged = 0;
  };
  struct IdentityHash {
    size_t operator()(uint64_t key) const { return key; }
  };
  static uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(left) << 32) | right;
  }
  const MergeResult* find_merge(TokenId left, TokenId right) const {
    return merges_.find(pair_key(left, right));
  }
  std::optional<TokenId> char_id(std::string_view text) const;
  void merge_symbols(std::vector<struct BpeSymbol>& symbols) const;

  Vocabulary vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> id_present_;
  FlatHashMap<uint64_t, MergeResult, IdentityHash> merges_;
  // Ids of single code points below kDirectChars (all byte-level characters, Latin,
  // Cyrillic...), looked up without hashing; -1 when absent.
  static constexpr char32_t kDirectChars = 0x800;
  std::vector<int64_t> direct_char_ids_;
  std::array<std::optional<TokenId>, 256> byte_fallback_ids_{};
  std::optional<TokenId> unk_id_;
  bool has_unk_token_ = false;
  std::string unk_token_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
};

}  // namespace kvmock::tokenizer
