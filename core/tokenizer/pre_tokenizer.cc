#include "core/tokenizer/pre_tokenizer.h"

#include <array>

#include "core/tokenizer/json_fields.h"
#include "core/tokenizer/unicode_text.h"

namespace kvmock::tokenizer {
namespace {

// GPT-2's own split pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteLevelTables {
  std::array<std::string, 256> chars;
  std::array<int, 512> bytes{};  // indexed by code point; every mapped one is below 0x200
  ByteLevelTables() {
    bytes.fill(-1);
    int extra = 0;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable =
          (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
      const char32_t cp =
          printable ? static_cast<char32_t>(byte) : static_cast<char32_t>(256 + extra++);
      append_utf8(chars[byte], cp);
      bytes[cp] = byte;
    }
  }
};

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables;
  return tables;
}

Result<bool> split_all(const UnicodeRegex& pattern, SplitBehavior behavior, bool invert,
                       std::vector<Piece>& pieces) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  std::vector<MatchSpan> matches;
  for (const Piece& piece : pieces) {
    matches.clear();
    auto found = pattern.find_all(piece.text, matches);
    if (!found) return found.error();
    split_by_matches(piece, matches, behavior, invert, out);
  }
  pieces = std::move(out);
  return true;
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(UnicodeRegex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  Result<bool> pre_tokenize(std::vector<Piece>& pieces) const override {
    return split_all(pattern_, behavior_, invert_, pieces);
  }

 private:
  UnicodeRegex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<UnicodeRegex> pattern)
      : add_prefix_space_(add_prefix_space), pattern_(std::move(pattern)) {}
  Result<bool> pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& piece : pieces) {
        if (piece.text.empty() || piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
      }
    }
    if (pattern_) {
      auto split = split_all(*pattern_, SplitBehavior::kIsolated, false, pieces);
      if (!split) return split.error();
    }
    const ByteLevelTables& tables = byte_level_tables();
    for (Piece& piece : pieces) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (const char c : piece.text) mapped += tables.chars[static_cast<uint8_t>(c)];
      piece.text = std::move(mapped);
    }
    return true;
  }

 private:
  bool add_prefix_space_;
  std::optional<UnicodeRegex> pattern_;
};

enum class PrependScheme : uint8_t { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split,
                        UnicodeRegex replacement_pattern)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        replacement_pattern_(std::move(replacement_pattern)) {}
  Result<bool> pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& piece : pieces) {
      std::string marked;
      marked.reserve(piece.text.size() + replacement_.size());
      for (const char c : piece.text) {
        if (c == ' ') {
          marked += replacement_;
        } else {
          marked += c;
        }
      }
      const bool starts_marked = marked.compare(0, replacement_.size(), replacement_) == 0;
      const bool prepend =
          !starts_marked && (scheme_ == PrependScheme::kAlways ||
                             (scheme_ == PrependScheme::kFirst && piece.at_origin));
      piece.text = prepend ? replacement_ + marked : std::move(marked);
    }
    if (!split_) return true;
    return split_all(replacement_pattern_, SplitBehavior::kMergedWithNext, false, pieces);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  UnicodeRegex replacement_pattern_;
};

// Splits on Unicode whitespace and drops it.
class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  Result<bool> pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : pieces) {
      size_t word_start = 0;
      bool in_word = false;
      for (size_t pos = 0; pos < piece.text.size();) {
        const CodePoint cp = code_point_at(piece.text, pos);
        const bool space = is_unicode_whitespace(cp.value);
        if (space && in_word) {
          out.push_back({piece.text.substr(word_start, pos - word_start),
                         piece.at_origin && word_start == 0});
          in_word = false;
        } else if (!space && !in_word) {
          word_start = pos;
          in_word = true;
        }
        pos += cp.length;
      }
      if (in_word) {
        out.push_back({piece.text.substr(word_start), piece.at_origin && word_start == 0});
      }
    }
    pieces = std::move(out);
    return true;
  }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> stages)
      : stages_(std::move(stages)) {}
  Result<bool> pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& stage : stages_) {
      auto done = stage->pre_tokenize(pieces);
      if (!done) return done.error();
    }
    return true;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> stages_;
};

Result<SplitBehavior> parse_behavior(const nlohmann::json& spec, std::string_view owner) {
  auto name = string_field(spec, owner, "behavior");
  if (!name) return name.error();
  if (*name == "Removed") return SplitBehavior::kRemoved;
  if (*name == "Isolated") return SplitBehavior::kIsolated;
  if (*name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (*name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (*name == "Contiguous") return SplitBehavior::kContiguous;
  return unsupported(std::string(owner) + " behavior '" + *name + "'");
}

Result<std::unique_ptr<PreTokenizer>> make_split(UnicodeRegex pattern, SplitBehavior behavior,
                                                 bool invert) {
  return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(pattern), behavior, invert));
}

}  // namespace

void split_by_matches(const Piece& piece, const std::vector<MatchSpan>& matches,
                      SplitBehavior behavior, bool invert, std::vector<Piece>& out) {
  struct Span {
    size_t start;
    size_t end;
    bool is_match;
  };
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t previous_end = 0;
  for (const MatchSpan& match : matches) {
    if (match.start != previous_end) spans.push_back({previous_end, match.start, false});
    spans.push_back({match.start, match.end, true});
    previous_end = match.end;
  }
  if (previous_end != piece.text.size()) spans.push_back({previous_end, piece.text.size(), false});
  if (invert) {
    for (Span& span : spans) span.is_match = !span.is_match;
  }

  // Each behaviour folds the spans into kept (not removed) parts, exactly as the
  // reference's fold does, including its treatment of two matches in a row.
  std::vector<Span> parts;
  parts.reserve(spans.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& span : spans) parts.push_back({span.start, span.end, false});
      break;
    case SplitBehavior::kRemoved:
      parts = spans;
      break;
    case SplitBehavior::kContiguous:
      for (const Span& span : spans) {
        if (span.is_match == previous_match && !parts.empty()) {
          parts.back().end = span.end;
        } else {
          parts.push_back({span.start, span.end, false});
        }
        previous_match = span.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& span : spans) {
        if (span.is_match && !previous_match && !parts.empty()) {
          parts.back().end = span.end;
        } else {
          parts.push_back({span.start, span.end, false});
        }
        previous_match = span.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !parts.empty()) {
          parts.back().start = it->start;
        } else {
          parts.push_back({it->start, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
  }
  for (const Span& part : parts) {
    if (part.is_match || part.start == part.end) continue;  // removed, or empty
    out.push_back(
        {piece.text.substr(part.start, part.end - part.start), piece.at_origin && part.start == 0});
  }
}

const std::string& byte_level_char(uint8_t byte) { return byte_level_tables().chars[byte]; }

int byte_level_byte(char32_t code_point) {
  if (code_point >= 512) return -1;
  return byte_level_tables().bytes[code_point];
}

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& spec) {
  auto type = type_of(spec, "pre_tokenizer");
  if (!type) return type.error();
  const std::string& name = *type;
  if (name == "Sequence") {
    const nlohmann::json* list = member(spec, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return bad_field("Sequence pre_tokenizer", "pretokenizers", "an array");
    }
    std::vector<std::unique_ptr<PreTokenizer>> stages;
    for (const nlohmann::json& child : *list) {
      auto stage = make_pre_tokenizer(child);
      if (!stage) return stage.error();
      stages.push_back(std::move(stage).value());
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(stages)));
  }
  if (name == "Split") {
    auto pattern = pattern_field(spec, "Split pre_tokenizer");
    if (!pattern) return pattern.error();
    auto behavior = parse_behavior(spec, "Split pre_tokenizer");
    if (!behavior) return behavior.error();
    auto invert = bool_field(spec, "Split pre_tokenizer", "invert", false);
    if (!invert) return invert.error();
    auto regex = UnicodeRegex::compile(pattern->text, !pattern->regex);
    if (!regex) return regex.error();
    return make_split(std::move(regex).value(), *behavior, *invert);
  }
  if (name == "ByteLevel") {
    auto prefix = bool_field(spec, "ByteLevel pre_tokenizer", "add_prefix_space", true);
    if (!prefix) return prefix.error();
    auto use_regex = bool_field(spec, "ByteLevel pre_tokenizer", "use_regex", true);
    if (!use_regex) return use_regex.error();
    std::optional<UnicodeRegex> pattern;
    if (*use_regex) {
      auto regex = UnicodeRegex::compile(kGpt2Pattern, false);
      if (!regex) return regex.error();
      pattern = std::move(regex).value();
    }
    return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(*prefix, std::move(pattern)));
  }
  if (name == "Metaspace") {
    auto replacement = string_field(spec, "Metaspace pre_tokenizer", "replacement");
    if (!replacement) return replacement.error();
    if (replacement->empty() || !is_valid_utf8(*replacement) ||
        code_point_at(*replacement, 0).length != replacement->size()) {
      return bad_field("Metaspace pre_tokenizer", "replacement", "one character");
    }
    PrependScheme scheme = PrependScheme::kAlways;
    if (const nlohmann::json* value = member(spec, "prepend_scheme"); value && !value->is_null()) {
      if (!value->is_string())
        return bad_field("Metaspace pre_tokenizer", "prepend_scheme", "a string");
      const std::string& text = value->get_ref<const std::string&>();
      if (text == "always") {
        scheme = PrependScheme::kAlways;
      } else if (text == "first") {
        scheme = PrependScheme::kFirst;
      } else if (text == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return unsupported("Metaspace prepend_scheme '" + text + "'");
      }
    } else {
      // Files older than prepend_scheme say add_prefix_space instead.
      auto prefix = bool_field(spec, "Metaspace pre_tokenizer", "add_prefix_space", true);
      if (!prefix) return prefix.error();
      scheme = *prefix ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    auto split = bool_field(spec, "Metaspace pre_tokenizer", "split", true);
    if (!split) return split.error();
    auto pattern = UnicodeRegex::compile(*replacement, true);
    if (!pattern) return pattern.error();
    return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(
        std::move(replacement).value(), scheme, *split, std::move(pattern).value()));
  }
  if (name == "Digits") {
    auto individual = bool_field(spec, "Digits pre_tokenizer", "individual_digits", false);
    if (!individual) return individual.error();
    // Runs of numeric characters (one match per character when individual).
    auto regex = UnicodeRegex::compile(*individual ? R"(\p{N})" : R"(\p{N}+)", false);
    if (!regex) return regex.error();
    return make_split(std::move(regex).value(), SplitBehavior::kIsolated, false);
  }
  if (name == "Whitespace") {
    // Keeps runs of word characters and runs of other non-space characters.
    const std::string word(kWordClass);
    const std::string not_word_nor_space =
        std::string(R"([^\s\x{85})") + std::string(kWordClass.substr(1, kWordClass.size() - 2)) +
        "]";
    auto regex = UnicodeRegex::compile(word + "+|" + not_word_nor_space + "+", false);
    if (!regex) return regex.error();
    return make_split(std::move(regex).value(), SplitBehavior::kRemoved, true);
  }
  if (name == "WhitespaceSplit") {
    return std::unique_ptr<PreTokenizer>(new WhitespaceSplitPreTokenizer());
  }
  return unsupported("pre_tokenizer type '" + name + "'");
}

}  // namespace kvmock::tokenizer
