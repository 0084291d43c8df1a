#include "core/tokenizer/normalizer.h"

#include <vector>

#include "core/tokenizer/json_fields.h"
#include "core/tokenizer/unicode_regex.h"
#include "core/tokenizer/unicode_text.h"

namespace kvmock::tokenizer {
namespace {

class FormNormalizer final : public Normalizer {
 public:
  explicit FormNormalizer(NormalForm form) : form_(form) {}
  Result<std::string> normalize(std::string text) const override {
    return normalize_form(text, form_);
  }

 private:
  NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  Result<std::string> normalize(std::string text) const override { return lowercase(text); }
};

// Prepend only touches non-empty text: an empty piece stays empty (and is later dropped).
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  Result<std::string> normalize(std::string text) const override {
    if (text.empty()) return text;
    return prefix_ + text;
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(UnicodeRegex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Result<std::string> normalize(std::string text) const override {
    return pattern_.replace_all(text, content_);
  }

 private:
  UnicodeRegex pattern_;
  std::string content_;
};

// Removes Unicode whitespace from either end.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Result<std::string> normalize(std::string text) const override {
    size_t begin = 0;
    size_t end = text.size();
    if (left_) {
      while (begin < end) {
        const CodePoint cp = code_point_at(text, begin);
        if (!is_unicode_whitespace(cp.value)) break;
        begin += cp.length;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
        if (!is_unicode_whitespace(code_point_at(text, start).value)) break;
        end = start;
      }
    }
    return text.substr(begin, end - begin);
  }

 private:
  bool left_;
  bool right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> stages)
      : stages_(std::move(stages)) {}
  Result<std::string> normalize(std::string text) const override {
    for (const auto& stage : stages_) {
      auto next = stage->normalize(std::move(text));
      if (!next) return next.error();
      text = std::move(next).value();
    }
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> stages_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& spec) {
  auto type = type_of(spec, "normalizer");
  if (!type) return type.error();
  const std::string& name = *type;
  if (name == "NFC") return std::unique_ptr<Normalizer>(new FormNormalizer(NormalForm::kNfc));
  if (name == "NFD") return std::unique_ptr<Normalizer>(new FormNormalizer(NormalForm::kNfd));
  if (name == "NFKC") return std::unique_ptr<Normalizer>(new FormNormalizer(NormalForm::kNfkc));
  if (name == "NFKD") return std::unique_ptr<Normalizer>(new FormNormalizer(NormalForm::kNfkd));
  if (name == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (name == "Prepend") {
    auto prefix = string_field(spec, "Prepend normalizer", "prepend");
    if (!prefix) return prefix.error();
    return std::unique_ptr<Normalizer>(new PrependNormalizer(std::move(prefix).value()));
  }
  if (name == "Replace") {
    auto pattern = pattern_field(spec, "Replace normalizer");
    if (!pattern) return pattern.error();
    auto content = string_field(spec, "Replace normalizer", "content");
    if (!content) return content.error();
    auto regex = UnicodeRegex::compile(pattern->text, !pattern->regex);
    if (!regex) return regex.error();
    return std::unique_ptr<Normalizer>(
        new ReplaceNormalizer(std::move(regex).value(), std::move(content).value()));
  }
  if (name == "Strip") {
    auto left = bool_field(spec, "Strip normalizer", "strip_left", true);
    if (!left) return left.error();
    auto right = bool_field(spec, "Strip normalizer", "strip_right", true);
    if (!right) return right.error();
    return std::unique_ptr<Normalizer>(new StripNormalizer(*left, *right));
  }
  if (name == "Sequence") {
    const nlohmann::json* list = member(spec, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return bad_field("Sequence normalizer", "normalizers", "an array");
    }
    std::vector<std::unique_ptr<Normalizer>> stages;
    for (const nlohmann::json& child : *list) {
      auto stage = make_normalizer(child);
      if (!stage) return stage.error();
      stages.push_back(std::move(stage).value());
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(stages)));
  }
  return unsupported("normalizer type '" + name + "'");
}

}  // namespace kvmock::tokenizer
