#include "core/tokenizer/bpe_model.h"

#include <array>
#include <queue>

#include "core/tokenizer/json_fields.h"
#include "core/tokenizer/unicode_text.h"

namespace kvmock::tokenizer {

// One symbol of a word being merged: a token id and links to its live neighbours, so a
// merge is O(1) and removed symbols are skipped by the links.
struct BpeSymbol {
  TokenId id;
  int32_t prev;
  int32_t next;
  uint32_t length;  // bytes of the piece it covers; 0 once merged into its left neighbour
};

namespace {

// A candidate merge of the symbol at `position` with its right neighbour. The queue pops
// the lowest rank first and, among equal ranks, the leftmost position.
struct MergeCandidate {
  uint32_t rank;
  int32_t position;
  TokenId merged;
  bool operator>(const MergeCandidate& other) const {
    if (rank != other.rank) return rank > other.rank;
    return position > other.position;
  }
};

Result<bool> read_merge(const nlohmann::json& entry, std::string& left, std::string& right) {
  if (entry.is_string()) {
    // Older files write "left right"; the space separates the parts (neither contains one).
    const std::string& text = entry.get_ref<const std::string&>();
    const size_t space = text.find(' ', 1);
    if (space == std::string::npos) {
      return make_error("bad_tokenizer", "BPE merge '" + text + "' has no space");
    }
    left = text.substr(0, space);
    right = text.substr(space + 1);
    return true;
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    left = entry[0].get<std::string>();
    right = entry[1].get<std::string>();
    return true;
  }
  return make_error("bad_tokenizer", "a BPE merge is neither \"a b\" nor [\"a\", \"b\"]");
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::from_json(const nlohmann::json& spec) {
  if (!spec.is_object()) return make_error("bad_tokenizer", "model is not an object");
  if (const nlohmann::json* type = member(spec, "type"); type != nullptr) {
    if (!type->is_string()) return bad_field("model", "type", "a string");
    if (type->get_ref<const std::string&>() != "BPE") {
      return unsupported("model type '" + type->get<std::string>() + "'");
    }
  }
  if (const nlohmann::json* dropout = member(spec, "dropout"); dropout && !dropout->is_null()) {
    return unsupported("BPE option dropout (random merges cannot be reproduced)");
  }
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  const auto optional_string = [&](std::string_view field, std::string& out) -> Result<bool> {
    const nlohmann::json* value = member(spec, field);
    if (value == nullptr || value->is_null()) return false;
    if (!value->is_string()) return bad_field("BPE model", field, "a string");
    out = value->get<std::string>();
    return true;
  };
  auto has_unk = optional_string("unk_token", model->unk_token_);
  if (!has_unk) return has_unk.error();
  model->has_unk_token_ = *has_unk;
  if (auto ok = optional_string("continuing_subword_prefix", model->continuing_subword_prefix_);
      !ok) {
    return ok.error();
  }
  if (auto ok = optional_string("end_of_word_suffix", model->end_of_word_suffix_); !ok) {
    return ok.error();
  }
  for (auto [field, target] :
       {std::pair<std::string_view, bool*>{"byte_fallback", &model->byte_fallback_},
        {"fuse_unk", &model->fuse_unk_},
        {"ignore_merges", &model->ignore_merges_}}) {
    auto value = bool_field(spec, "BPE model", field, false);
    if (!value) return value.error();
    *target = *value;
  }

  const nlohmann::json* vocab = member(spec, "vocab");
  if (vocab == nullptr || !vocab->is_object()) return bad_field("BPE model", "vocab", "an object");
  model->vocab_.reserve(vocab->size());
  for (const auto& [token, id_value] : vocab->items()) {
    if (!id_value.is_number_unsigned() || id_value.get<uint64_t>() >= (1ull << 31)) {
      return make_error("bad_tokenizer", "vocab entry '" + token + "' has no valid id");
    }
    const auto id = static_cast<TokenId>(id_value.get<uint64_t>());
    model->vocab_.emplace(token, id);
    if (id >= model->id_to_token_.size()) {
      model->id_to_token_.resize(id + 1);
      model->id_present_.resize(id + 1, 0);
    }
    model->id_to_token_[id] = token;
    model->id_present_[id] = 1;
  }

  const nlohmann::json* merges = member(spec, "merges");
  if (merges == nullptr || !merges->is_array()) return bad_field("BPE model", "merges", "an array");
  model->merges_.reserve(merges->size());
  const size_t prefix_length = model->continuing_subword_prefix_.size();
  std::string left;
  std::string right;
  uint32_t rank = 0;
  for (const nlohmann::json& entry : *merges) {
    if (auto ok = read_merge(entry, left, right); !ok) return ok.error();
    const auto left_id = model->token_to_id(left);
    const auto right_id = model->token_to_id(right);
    if (!left_id || !right_id) {
      return make_error("bad_tokenizer", "BPE merge '" + left + " " + right +
                                             "' uses a token outside the vocabulary");
    }
    // A right part carrying the continuation prefix loses it inside the merged token.
    const bool strip_prefix =
        prefix_length > 0 &&
        right.compare(0, prefix_length, model->continuing_subword_prefix_) == 0;
    const std::string merged = left + (strip_prefix ? right.substr(prefix_length) : right);
    const auto merged_id = model->token_to_id(merged);
    if (!merged_id) {
      return make_error("bad_tokenizer",
                        "BPE merge result '" + merged + "' is not in the vocabulary");
    }
    // A repeated pair keeps its last rank, as the reference's map insertion does.
    *model->merges_.try_emplace(pair_key(*left_id, *right_id), MergeResult{}).first =
        MergeResult{rank, *merged_id};
    ++rank;
  }

  model->direct_char_ids_.assign(kDirectChars, -1);
  for (const auto& [token, id] : model->vocab_) {
    if (token.empty() || !is_valid_utf8(token)) continue;
    const CodePoint cp = code_point_at(token, 0);
    if (cp.length == token.size() && cp.value < kDirectChars)
      model->direct_char_ids_[cp.value] = id;
  }
  if (model->byte_fallback_) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int byte = 0; byte < 256; ++byte) {
      const std::string name = std::string("<0x") + kHex[byte >> 4] + kHex[byte & 15] + ">";
      model->byte_fallback_ids_[byte] = model->token_to_id(name);
    }
  }
  if (model->has_unk_token_) model->unk_id_ = model->token_to_id(model->unk_token_);
  return model;
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  const auto found = vocab_.find(token);
  if (found == vocab_.end()) return std::nullopt;
  return found->second;
}

const std::string* BpeModel::id_to_token(TokenId id) const {
  if (id >= id_to_token_.size() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

std::optional<TokenId> BpeModel::char_id(std::string_view text) const {
  if (text.size() <= 2) {
    const CodePoint cp = code_point_at(text, 0);
    if (cp.length == text.size() && cp.value < kDirectChars) {
      const int64_t id = direct_char_ids_[cp.value];
      if (id < 0) return std::nullopt;
      return static_cast<TokenId>(id);
    }
  }
  return token_to_id(text);
}

void BpeModel::tokenize(std::string_view piece, std::vector<TokenId>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const auto whole = token_to_id(piece)) {
      out.push_back(*whole);
      return;
    }
  }

  // Initial symbols: one per character (with the word's prefix/suffix decorations), byte
  // tokens for characters outside the vocabulary when byte_fallback, else the unknown
  // token (runs of unknowns fused into one when fuse_unk).
  std::vector<BpeSymbol> symbols;
  symbols.reserve(piece.size());
  const auto add = [&](TokenId id, uint32_t length) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, length});
  };
  std::optional<std::pair<TokenId, uint32_t>> pending_unk;
  const bool decorated = !continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty();
  std::string decorated_char;
  for (size_t pos = 0; pos < piece.size();) {
    const size_t length = code_point_at(piece, pos).length;
    std::string_view character = piece.substr(pos, length);
    if (decorated) {
      decorated_char.clear();
      if (pos > 0) decorated_char += continuing_subword_prefix_;
      decorated_char += character;
      if (pos + length == piece.size()) decorated_char += end_of_word_suffix_;
      character = decorated_char;
    }
    const auto byte_length = static_cast<uint32_t>(length);
    const std::string_view raw = piece.substr(pos, length);
    pos += length;
    if (const auto id = char_id(character)) {
      if (pending_unk) {
        add(pending_unk->first, pending_unk->second);
        pending_unk.reset();
      }
      add(*id, byte_length);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes_known = true;
      for (const char c : raw)
        all_bytes_known = all_bytes_known && byte_fallback_ids_[static_cast<uint8_t>(c)];
      if (all_bytes_known) {
        // As in the reference, byte tokens do not flush a pending unknown first.
        for (const char c : raw) add(*byte_fallback_ids_[static_cast<uint8_t>(c)], 1);
        continue;
      }
    }
    if (!has_unk_token_ || !unk_id_) continue;  // no unknown token: the character is dropped
    if (pending_unk && fuse_unk_) {
      pending_unk->second += byte_length;
    } else {
      if (pending_unk) add(pending_unk->first, pending_unk->second);
      pending_unk = std::pair{*unk_id_, byte_length};
    }
  }
  if (pending_unk) add(pending_unk->first, pending_unk->second);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  merge_symbols(symbols);
  for (const BpeSymbol& symbol : symbols) {
    if (symbol.length != 0) out.push_back(symbol.id);
  }
}

void BpeModel::merge_symbols(std::vector<BpeSymbol>& symbols) const {
  std::priority_queue<MergeCandidate, std::vector<MergeCandidate>, std::greater<>> queue;
  const auto count = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i + 1 < count; ++i) {
    if (const MergeResult* merge = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({merge->rank, i, merge->merged});
    }
  }
  while (!queue.empty()) {
    const MergeCandidate top = queue.top();
    queue.pop();
    BpeSymbol& left = symbols[top.position];
    if (left.length == 0 || left.next == -1) continue;  // merged away, or last symbol
    const int32_t right_index = left.next;
    const BpeSymbol right = symbols[right_index];
    // Skip a stale candidate: one of its symbols changed since it was queued.
    const MergeResult* current = find_merge(left.id, right.id);
    if (current == nullptr || current->merged != top.merged) continue;
    left.id = top.merged;
    left.length += right.length;
    left.next = right.next;
    symbols[right_index].length = 0;
    if (right.next >= 0 && right.next < count) symbols[right.next].prev = top.position;
    if (left.prev >= 0) {
      if (const MergeResult* merge = find_merge(symbols[left.prev].id, left.id)) {
        queue.push({merge->rank, left.prev, merge->merged});
      }
    }
    if (left.next >= 0 && left.next < count) {
      if (const MergeResult* merge = find_merge(left.id, symbols[left.next].id)) {
        queue.push({merge->rank, top.position, merge->merged});
      }
    }
  }
}

}  // namespace kvmock::tokenizer
