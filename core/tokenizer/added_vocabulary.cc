#include "core/tokenizer/added_vocabulary.h"

#include "core/tokenizer/unicode_text.h"

namespace kvmock::tokenizer {

void AddedTokenMatcher::build(std::vector<std::pair<std::string, const AddedToken*>> patterns) {
  nodes_.assign(1, Node{});
  first_bytes_.fill(false);
  for (const auto& [text, token] : patterns) {
    if (text.empty()) continue;
    uint32_t node = 0;
    for (const char c : text) {
      const auto byte = static_cast<uint8_t>(c);
      const auto found = nodes_[node].children.find(byte);
      if (found != nodes_[node].children.end()) {
        node = found->second;
      } else {
        const auto child = static_cast<uint32_t>(nodes_.size());
        nodes_[node].children.emplace(byte, child);
        nodes_.emplace_back();
        node = child;
      }
    }
    // Two tokens with the same text: the first one listed wins.
    if (nodes_[node].token == nullptr) nodes_[node].token = token;
    first_bytes_[static_cast<uint8_t>(text[0])] = true;
  }
  if (!word_char_) {
    auto regex = UnicodeRegex::compile(kWordClass, false);
    if (regex) word_char_ = std::move(regex).value();
  }
}

const AddedToken* AddedTokenMatcher::longest_at(std::string_view text, size_t pos,
                                                size_t& length) const {
  const AddedToken* best = nullptr;
  uint32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto found = nodes_[node].children.find(static_cast<uint8_t>(text[i]));
    if (found == nodes_[node].children.end()) break;
    node = found->second;
    if (nodes_[node].token != nullptr) {
      best = nodes_[node].token;
      length = i + 1 - pos;
    }
  }
  return best;
}

namespace {

bool is_word_char(const std::optional<UnicodeRegex>& word_char, std::string_view character) {
  if (!word_char) return false;
  std::vector<MatchSpan> matches;
  auto found = word_char->find_all(character, matches);
  return found && !matches.empty();
}

size_t previous_char_start(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return start;
}

}  // namespace

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSegment>& out) const {
  if (text.empty()) return;
  if (empty()) {
    out.push_back({0, text.size(), std::nullopt});
    return;
  }
  size_t emitted = 0;  // end of the last segment pushed
  size_t pos = 0;      // where the search for the next match resumes
  while (pos < text.size()) {
    size_t length = 0;
    const AddedToken* token =
        first_bytes_[static_cast<uint8_t>(text[pos])] ? longest_at(text, pos, length) : nullptr;
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + length;
    // The search resumes after the raw match even when rstrip below extends the segment,
    // as the reference's match iterator does.
    pos = stop;
    if (token->single_word) {
      const bool word_before =
          start > 0 &&
          is_word_char(word_char_, text.substr(previous_char_start(text, start),
                                               start - previous_char_start(text, start)));
      const bool word_after =
          stop < text.size() &&
          is_word_char(word_char_, text.substr(stop, code_point_at(text, stop).length));
      if (word_before || word_after) continue;
    }
    if (token->lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        const size_t before = previous_char_start(text, new_start);
        if (!is_unicode_whitespace(code_point_at(text, before).value)) break;
        new_start = before;
      }
      start = std::max(new_start, emitted);
    }
    if (token->rstrip) {
      while (stop < text.size()) {
        const CodePoint cp = code_point_at(text, stop);
        if (!is_unicode_whitespace(cp.value)) break;
        stop += cp.length;
      }
    }
    if (emitted < start) out.push_back({emitted, start, std::nullopt});
    out.push_back({start, stop, token->id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({emitted, text.size(), std::nullopt});
}

}  // namespace kvmock::tokenizer
