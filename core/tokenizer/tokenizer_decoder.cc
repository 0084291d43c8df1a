#include "core/tokenizer/tokenizer_decoder.h"

#include "core/tokenizer/json_fields.h"
#include "core/tokenizer/pre_tokenizer.h"
#include "core/tokenizer/unicode_regex.h"
#include "core/tokenizer/unicode_text.h"

namespace kvmock::tokenizer {
namespace {

// Maps each token's characters back to bytes and repairs the joined bytes into UTF-8. A
// token with a character outside the byte-level alphabet (an added token, say) keeps its
// own UTF-8 bytes.
class ByteLevelDecoder final : public TokenDecoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string bytes;
    std::string token_bytes;
    for (const std::string& token : tokens) {
      token_bytes.clear();
      bool mapped = true;
      for (size_t pos = 0; pos < token.size();) {
        const CodePoint cp = code_point_at(token, pos);
        pos += cp.length;
        const int byte = byte_level_byte(cp.value);
        if (byte < 0) {
          mapped = false;
          break;
        }
        token_bytes.push_back(static_cast<char>(byte));
      }
      bytes += mapped ? token_bytes : token;
    }
    return {utf8_lossy(bytes)};
  }
};

// The byte a token like "<0x0A>" stands for, as the reference parses it (two characters
// read as a base-16 number, which admits lowercase digits and a leading '+').
std::optional<uint8_t> fallback_byte(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return std::nullopt;
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (token[3] == '+') {
    const int low = digit(token[4]);
    if (low < 0) return std::nullopt;
    return static_cast<uint8_t>(low);
  }
  const int high = digit(token[3]);
  const int low = digit(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

// Turns runs of byte tokens into the text they encode; a run that is not valid UTF-8
// becomes one U+FFFD per byte.
class ByteFallbackDecoder final : public TokenDecoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    size_t run_length = 0;
    const auto flush = [&] {
      if (run_length == 0) return;
      if (is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run_length; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_length = 0;
    };
    for (std::string& token : tokens) {
      if (const auto byte = fallback_byte(token)) {
        run.push_back(static_cast<char>(*byte));
        ++run_length;
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    return out;
  }
};

class FuseDecoder final : public TokenDecoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    return {joined};
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters from each token.
// The reference then keeps (byte length - removed count) characters, which for tokens with
// multi-byte characters keeps some trailing ones it meant to drop; that is reproduced.
class StripDecoder final : public TokenDecoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (std::string& token : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
      for (size_t pos = 0; pos < token.size();) {
        const CodePoint cp = code_point_at(token, pos);
        chars.emplace_back(pos, cp.value);
        pos += cp.length;
      }
      size_t start_cut = 0;
      while (start_cut < start_ && start_cut < chars.size() &&
             chars[start_cut].second == content_) {
        ++start_cut;
      }
      size_t stop_cut = 0;
      while (stop_cut < stop_ && stop_cut < chars.size() &&
             chars[chars.size() - 1 - stop_cut].second == content_) {
        ++stop_cut;
      }
      const size_t removed = start_cut + stop_cut;
      // A negative count wraps around in the reference, meaning "no limit".
      const size_t keep = removed > token.size() ? chars.size() : token.size() - removed;
      const size_t end_char = std::min(chars.size(), start_cut + keep);
      const size_t begin_byte = start_cut < chars.size() ? chars[start_cut].first : token.size();
      const size_t end_byte = end_char < chars.size() ? chars[end_char].first : token.size();
      token =
          begin_byte < end_byte ? token.substr(begin_byte, end_byte - begin_byte) : std::string();
    }
    return tokens;
  }

 private:
  char32_t content_;
  size_t start_;
  size_t stop_;
};

class ReplaceDecoder final : public TokenDecoder {
 public:
  ReplaceDecoder(UnicodeRegex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (std::string& token : tokens) {
      auto replaced = pattern_.replace_all(token, content_);
      if (replaced) token = std::move(replaced).value();
    }
    return tokens;
  }

 private:
  UnicodeRegex pattern_;
  std::string content_;
};

// Turns the replacement character back into spaces; in the first token, when the encoder
// prepended it, every replacement character is dropped instead (as the reference does).
class MetaspaceDecoder final : public TokenDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepends)
      : replacement_(std::move(replacement)), prepends_(prepends) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && prepends_)) out += ' ';
          pos += replacement_.size();
        } else {
          out += token[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool prepends_;
};

class SequenceDecoder final : public TokenDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TokenDecoder>> stages)
      : stages_(std::move(stages)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (const auto& stage : stages_) tokens = stage->decode_chain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<TokenDecoder>> stages_;
};

Result<char32_t> single_char_field(const nlohmann::json& spec, std::string_view owner,
                                   std::string_view field) {
  auto text = string_field(spec, owner, field);
  if (!text) return text.error();
  if (text->empty() || !is_valid_utf8(*text) || code_point_at(*text, 0).length != text->size()) {
    return bad_field(owner, field, "one character");
  }
  return code_point_at(*text, 0).value;
}

}  // namespace

Result<std::unique_ptr<TokenDecoder>> make_decoder(const nlohmann::json& spec) {
  auto type = type_of(spec, "decoder");
  if (!type) return type.error();
  const std::string& name = *type;
  if (name == "ByteLevel") return std::unique_ptr<TokenDecoder>(new ByteLevelDecoder());
  if (name == "ByteFallback") return std::unique_ptr<TokenDecoder>(new ByteFallbackDecoder());
  if (name == "Fuse") return std::unique_ptr<TokenDecoder>(new FuseDecoder());
  if (name == "Strip") {
    auto content = single_char_field(spec, "Strip decoder", "content");
    if (!content) return content.error();
    auto start = uint_field(spec, "Strip decoder", "start", 0);
    if (!start) return start.error();
    auto stop = uint_field(spec, "Strip decoder", "stop", 0);
    if (!stop) return stop.error();
    return std::unique_ptr<TokenDecoder>(new StripDecoder(*content, *start, *stop));
  }
  if (name == "Replace") {
    auto pattern = pattern_field(spec, "Replace decoder");
    if (!pattern) return pattern.error();
    auto content = string_field(spec, "Replace decoder", "content");
    if (!content) return content.error();
    auto regex = UnicodeRegex::compile(pattern->text, !pattern->regex);
    if (!regex) return regex.error();
    return std::unique_ptr<TokenDecoder>(
        new ReplaceDecoder(std::move(regex).value(), std::move(content).value()));
  }
  if (name == "Metaspace") {
    auto replacement = single_char_field(spec, "Metaspace decoder", "replacement");
    if (!replacement) return replacement.error();
    bool prepends = true;
    if (const nlohmann::json* scheme = member(spec, "prepend_scheme");
        scheme && !scheme->is_null()) {
      if (!scheme->is_string()) return bad_field("Metaspace decoder", "prepend_scheme", "a string");
      const std::string& text = scheme->get_ref<const std::string&>();
      if (text != "always" && text != "first" && text != "never") {
        return unsupported("Metaspace prepend_scheme '" + text + "'");
      }
      prepends = text != "never";
    } else {
      auto prefix = bool_field(spec, "Metaspace decoder", "add_prefix_space", true);
      if (!prefix) return prefix.error();
      prepends = *prefix;
    }
    std::string replacement_text;
    append_utf8(replacement_text, *replacement);
    return std::unique_ptr<TokenDecoder>(new MetaspaceDecoder(replacement_text, prepends));
  }
  if (name == "Sequence") {
    const nlohmann::json* list = member(spec, "decoders");
    if (list == nullptr || !list->is_array())
      return bad_field("Sequence decoder", "decoders", "an array");
    std::vector<std::unique_ptr<TokenDecoder>> stages;
    for (const nlohmann::json& child : *list) {
      auto stage = make_decoder(child);
      if (!stage) return stage.error();
      stages.push_back(std::move(stage).value());
    }
    return std::unique_ptr<TokenDecoder>(new SequenceDecoder(std::move(stages)));
  }
  return unsupported("decoder type '" + name + "'");
}

}  // namespace kvmock::tokenizer
