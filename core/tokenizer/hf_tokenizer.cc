// Assembles the stages of a tokenizer.json (added tokens, normalizer, pre-tokenizer, BPE
// model, post-processor, decoder) and runs them in the reference library's order.
#include "core/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <unordered_set>

#include "core/tokenizer/added_vocabulary.h"
#include "core/tokenizer/bpe_model.h"
#include "core/tokenizer/json_fields.h"
#include "core/tokenizer/normalizer.h"
#include "core/tokenizer/pre_tokenizer.h"
#include "core/tokenizer/tokenizer_decoder.h"
#include "core/tokenizer/unicode_text.h"

namespace kvmock {

using tokenizer::AddedToken;
using tokenizer::AddedTokenMatcher;
using tokenizer::BpeModel;
using tokenizer::Normalizer;
using tokenizer::Piece;
using tokenizer::PreTokenizer;
using tokenizer::TextSegment;
using tokenizer::TokenDecoder;

namespace {

// What the post-processor adds around a single sequence when special tokens are asked
// for. Every supported processor (TemplateProcessing's single template, Bert, Roberta,
// ByteLevel, and Sequences of them) reduces to fixed ids before and after.
struct SpecialTokenFrame {
  std::vector<TokenId> before;
  std::vector<TokenId> after;
};

Result<std::vector<TokenId>> template_special_ids(const nlohmann::json& spec,
                                                  const std::string& name) {
  const nlohmann::json* specials = tokenizer::member(spec, "special_tokens");
  const nlohmann::json* entry = specials ? tokenizer::member(*specials, name) : nullptr;
  const nlohmann::json* ids = entry ? tokenizer::member(*entry, "ids") : nullptr;
  if (ids == nullptr || !ids->is_array()) {
    return make_error("bad_tokenizer", "TemplateProcessing: special token '" + name +
                                           "' has no ids in special_tokens");
  }
  std::vector<TokenId> out;
  for (const nlohmann::json& id : *ids) {
    if (!id.is_number_unsigned()) {
      return make_error("bad_tokenizer",
                        "TemplateProcessing: special token '" + name + "' has a bad id");
    }
    out.push_back(static_cast<TokenId>(id.get<uint64_t>()));
  }
  return out;
}

Result<SpecialTokenFrame> template_frame(const nlohmann::json& spec) {
  const nlohmann::json* single = tokenizer::member(spec, "single");
  if (single == nullptr || !single->is_array()) {
    return tokenizer::bad_field("TemplateProcessing", "single", "an array");
  }
  SpecialTokenFrame frame;
  bool seen_sequence = false;
  for (const nlohmann::json& piece : *single) {
    if (const nlohmann::json* special = tokenizer::member(piece, "SpecialToken")) {
      auto name = tokenizer::string_field(*special, "TemplateProcessing SpecialToken", "id");
      if (!name) return name.error();
      auto ids = template_special_ids(spec, *name);
      if (!ids) return ids.error();
      auto& side = seen_sequence ? frame.after : frame.before;
      side.insert(side.end(), ids->begin(), ids->end());
    } else if (const nlohmann::json* sequence = tokenizer::member(piece, "Sequence")) {
      auto name = tokenizer::string_field(*sequence, "TemplateProcessing Sequence", "id");
      if (!name) return name.error();
      if (*name != "A" || seen_sequence) {
        return tokenizer::unsupported("TemplateProcessing single template with sequence '" + *name +
                                      "' (only one A is supported)");
      }
      seen_sequence = true;
    } else {
      return make_error(
          "bad_tokenizer",
          "TemplateProcessing: a template piece is neither SpecialToken nor Sequence");
    }
  }
  if (!seen_sequence) {
    return tokenizer::unsupported("TemplateProcessing single template without the sequence A");
  }
  return frame;
}

// Bert and Roberta write their tokens as ["[CLS]", 101].
Result<TokenId> processor_token_id(const nlohmann::json& spec, std::string_view owner,
                                   std::string_view field) {
  const nlohmann::json* pair = tokenizer::member(spec, field);
  if (pair == nullptr || !pair->is_array() || pair->size() != 2 ||
      !(*pair)[1].is_number_unsigned()) {
    return tokenizer::bad_field(owner, field, "a [token, id] pair");
  }
  return static_cast<TokenId>((*pair)[1].get<uint64_t>());
}

Result<SpecialTokenFrame> make_post_processor(const nlohmann::json& spec) {
  auto type = tokenizer::type_of(spec, "post_processor");
  if (!type) return type.error();
  if (*type == "ByteLevel") return SpecialTokenFrame{};  // only adjusts offsets
  if (*type == "TemplateProcessing") return template_frame(spec);
  if (*type == "BertProcessing" || *type == "RobertaProcessing") {
    auto cls = processor_token_id(spec, *type, "cls");
    if (!cls) return cls.error();
    auto sep = processor_token_id(spec, *type, "sep");
    if (!sep) return sep.error();
    return SpecialTokenFrame{{*cls}, {*sep}};
  }
  if (*type == "Sequence") {
    const nlohmann::json* list = tokenizer::member(spec, "processors");
    if (list == nullptr || !list->is_array()) {
      return tokenizer::bad_field("Sequence post_processor", "processors", "an array");
    }
    SpecialTokenFrame combined;
    for (const nlohmann::json& child : *list) {
      auto frame = make_post_processor(child);
      if (!frame) return frame.error();
      // A later processor wraps what the earlier ones produced.
      combined.before.insert(combined.before.begin(), frame->before.begin(), frame->before.end());
      combined.after.insert(combined.after.end(), frame->after.begin(), frame->after.end());
    }
    return combined;
  }
  return tokenizer::unsupported("post_processor type '" + *type + "'");
}

Result<AddedToken> parse_added_token(const nlohmann::json& entry) {
  AddedToken token;
  const nlohmann::json* id = tokenizer::member(entry, "id");
  if (id == nullptr || !id->is_number_unsigned() || id->get<uint64_t>() >= (1ull << 31)) {
    return tokenizer::bad_field("added token", "id", "a token id");
  }
  token.id = static_cast<TokenId>(id->get<uint64_t>());
  auto content = tokenizer::string_field(entry, "added token", "content");
  if (!content) return content.error();
  token.content = std::move(content).value();
  if (!tokenizer::is_valid_utf8(token.content)) {
    return tokenizer::bad_field("added token", "content", "valid UTF-8");
  }
  for (auto [field, target] :
       {std::pair<std::string_view, bool*>{"single_word", &token.single_word},
        {"lstrip", &token.lstrip},
        {"rstrip", &token.rstrip},
        {"special", &token.special}}) {
    auto value = tokenizer::bool_field(entry, "added token", field, false);
    if (!value) return value.error();
    *target = *value;
  }
  // Special tokens are matched on the raw text unless the file says otherwise.
  auto normalized = tokenizer::bool_field(entry, "added token", "normalized", !token.special);
  if (!normalized) return normalized.error();
  token.normalized = *normalized;
  return token;
}

}  // namespace

struct HfTokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<TokenDecoder> decoder;
  SpecialTokenFrame special_frame;
  std::vector<AddedToken> added_tokens;
  std::unordered_map<TokenId, size_t> added_by_id;  // index into added_tokens
  tokenizer::Vocabulary added_by_content;
  std::unordered_set<std::string> special_contents;
  AddedTokenMatcher raw_matcher;         // tokens with normalized=false, found in the input
  AddedTokenMatcher normalized_matcher;  // tokens with normalized=true, found after normalizing
  uint32_t vocab_size = 0;

  Result<std::unique_ptr<Impl>> static build(const nlohmann::json& root);
  Result<bool> encode_segment(std::string_view text, bool at_origin,
                              std::vector<TokenId>& ids) const;
};

Result<std::unique_ptr<HfTokenizer::Impl>> HfTokenizer::Impl::build(const nlohmann::json& root) {
  if (!root.is_object()) return make_error("bad_tokenizer", "tokenizer.json is not an object");
  auto impl = std::make_unique<Impl>();
  for (const char* field : {"truncation", "padding"}) {
    if (const nlohmann::json* value = tokenizer::member(root, field); value && !value->is_null()) {
      return tokenizer::unsupported(std::string(field) + " (it changes the ids of encode)");
    }
  }
  const nlohmann::json* model = tokenizer::member(root, "model");
  if (model == nullptr) return tokenizer::bad_field("tokenizer.json", "model", "an object");
  auto bpe = BpeModel::from_json(*model);
  if (!bpe) return bpe.error();
  impl->model = std::move(bpe).value();

  if (const nlohmann::json* spec = tokenizer::member(root, "normalizer");
      spec && !spec->is_null()) {
    auto normalizer = tokenizer::make_normalizer(*spec);
    if (!normalizer) return normalizer.error();
    impl->normalizer = std::move(normalizer).value();
  }
  if (const nlohmann::json* spec = tokenizer::member(root, "pre_tokenizer");
      spec && !spec->is_null()) {
    auto pre_tokenizer = tokenizer::make_pre_tokenizer(*spec);
    if (!pre_tokenizer) return pre_tokenizer.error();
    impl->pre_tokenizer = std::move(pre_tokenizer).value();
  }
  if (const nlohmann::json* spec = tokenizer::member(root, "post_processor");
      spec && !spec->is_null()) {
    auto frame = make_post_processor(*spec);
    if (!frame) return frame.error();
    impl->special_frame = std::move(frame).value();
  }
  if (const nlohmann::json* spec = tokenizer::member(root, "decoder"); spec && !spec->is_null()) {
    auto decoder = tokenizer::make_decoder(*spec);
    if (!decoder) return decoder.error();
    impl->decoder = std::move(decoder).value();
  }

  impl->vocab_size = impl->model->id_bound();
  if (const nlohmann::json* list = tokenizer::member(root, "added_tokens");
      list && !list->is_null()) {
    if (!list->is_array())
      return tokenizer::bad_field("tokenizer.json", "added_tokens", "an array");
    for (const nlohmann::json& entry : *list) {
      auto token = parse_added_token(entry);
      if (!token) return token.error();
      impl->added_tokens.push_back(std::move(token).value());
    }
  }
  std::vector<std::pair<std::string, const AddedToken*>> raw_patterns;
  std::vector<std::pair<std::string, const AddedToken*>> normalized_patterns;
  for (size_t i = 0; i < impl->added_tokens.size(); ++i) {
    const AddedToken& token = impl->added_tokens[i];
    impl->added_by_id.emplace(token.id, i);
    impl->added_by_content.emplace(token.content, token.id);
    if (token.special) impl->special_contents.insert(token.content);
    impl->vocab_size = std::max(impl->vocab_size, token.id + 1);
    if (token.normalized && impl->normalizer) {
      // Such a token is looked for in normalized text, so its own text is normalized too.
      auto pattern = impl->normalizer->normalize(token.content);
      if (!pattern) return pattern.error();
      normalized_patterns.emplace_back(std::move(pattern).value(), &token);
    } else if (token.normalized) {
      normalized_patterns.emplace_back(token.content, &token);
    } else {
      raw_patterns.emplace_back(token.content, &token);
    }
  }
  impl->raw_matcher.build(std::move(raw_patterns));
  impl->normalized_matcher.build(std::move(normalized_patterns));
  return impl;
}

// Normalizes one stretch of input between raw-matched added tokens, finds the normalized
// added tokens in it, and runs the pre-tokenizer and model over the rest.
Result<bool> HfTokenizer::Impl::encode_segment(std::string_view text, bool at_origin,
                                               std::vector<TokenId>& ids) const {
  std::string normalized(text);
  if (normalizer) {
    auto result = normalizer->normalize(std::move(normalized));
    if (!result) return result.error();
    normalized = std::move(result).value();
  }
  std::vector<TextSegment> segments;
  normalized_matcher.split(normalized, segments);
  std::vector<Piece> pieces;
  for (const TextSegment& segment : segments) {
    if (segment.id) {
      ids.push_back(*segment.id);
      continue;
    }
    pieces.clear();
    pieces.push_back({normalized.substr(segment.start, segment.end - segment.start),
                      at_origin && segment.start == 0});
    if (pre_tokenizer) {
      auto done = pre_tokenizer->pre_tokenize(pieces);
      if (!done) return done.error();
    }
    for (const Piece& piece : pieces) model->tokenize(piece.text, ids);
  }
  return true;
}

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::from_json(std::string_view tokenizer_json) {
  // nlohmann reports type errors by throwing; the field accessors check types first, and
  // this catch keeps any exception that still slips through from leaving the function.
  try {
    const nlohmann::json root = nlohmann::json::parse(tokenizer_json, nullptr, false);
    if (root.is_discarded()) return make_error("bad_json", "tokenizer.json is not valid JSON");
    if (!root.is_object()) return make_error("bad_json", "tokenizer.json is not a JSON object");
    auto impl = Impl::build(root);
    if (!impl) return impl.error();
    return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl).value()));
  } catch (const std::exception& e) {
    return make_error("bad_tokenizer", std::string("tokenizer.json: ") + e.what());
  }
}

Result<std::vector<TokenId>> HfTokenizer::encode(std::string_view text,
                                                 bool add_special_tokens) const {
  if (!tokenizer::is_valid_utf8(text)) return make_error("bad_utf8", "text is not valid UTF-8");
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) {
    ids.insert(ids.end(), impl_->special_frame.before.begin(), impl_->special_frame.before.end());
  }
  std::vector<TextSegment> segments;
  impl_->raw_matcher.split(text, segments);
  for (const TextSegment& segment : segments) {
    if (segment.id) {
      ids.push_back(*segment.id);
      continue;
    }
    auto done = impl_->encode_segment(text.substr(segment.start, segment.end - segment.start),
                                      segment.start == 0, ids);
    if (!done) return done.error();
  }
  if (add_special_tokens) {
    ids.insert(ids.end(), impl_->special_frame.after.begin(), impl_->special_frame.after.end());
  }
  return ids;
}

std::string HfTokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  // Like the reference, added tokens go through the decoder along with the others.
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const TokenId id : ids) {
    const std::string* token = nullptr;
    if (const auto added = impl_->added_by_id.find(id); added != impl_->added_by_id.end()) {
      token = &impl_->added_tokens[added->second].content;
    } else {
      token = impl_->model->id_to_token(id);
    }
    if (token == nullptr) continue;
    if (skip_special_tokens && impl_->special_contents.count(*token) > 0) continue;
    tokens.push_back(*token);
  }
  if (!impl_->decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  std::string text;
  for (const std::string& piece : impl_->decoder->decode_chain(std::move(tokens))) text += piece;
  return text;
}

std::optional<TokenId> HfTokenizer::token_to_id(std::string_view token) const {
  if (const auto found = impl_->added_by_content.find(token);
      found != impl_->added_by_content.end()) {
    return found->second;
  }
  return impl_->model->token_to_id(token);
}

std::optional<std::string> HfTokenizer::id_to_token(TokenId id) const {
  if (const auto added = impl_->added_by_id.find(id); added != impl_->added_by_id.end()) {
    return impl_->added_tokens[added->second].content;
  }
  if (const std::string* token = impl_->model->id_to_token(id)) return *token;
  return std::nullopt;
}

bool HfTokenizer::is_special(TokenId id) const {
  const auto added = impl_->added_by_id.find(id);
  return added != impl_->added_by_id.end() && impl_->added_tokens[added->second].special;
}

uint32_t HfTokenizer::vocab_size() const { return impl_->vocab_size; }

}  // namespace kvmock
