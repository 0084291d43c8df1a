#include "core/tokenizer/mock_tokenizer.h"

#include <xxhash.h>

namespace kvmock {
namespace {

// Distinct from the block-hash seed so token ids and block hashes never look alike.
constexpr uint64_t kPieceSeed = 0x6b766d6f636bULL;  // "kvmock"

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The number of whitespace-separated pieces in `text`.
size_t count_pieces(std::string_view text) {
  size_t count = 0;
  bool in_piece = false;
  for (char c : text) {
    const bool space = is_space(c);
    if (!space && !in_piece) ++count;
    in_piece = !space;
  }
  return count;
}

}  // namespace

TokenId mock_token_id(std::string_view piece) {
  const uint64_t hash = XXH3_64bits_withSeed(piece.data(), piece.size(), kPieceSeed);
  return kMockVocabBegin + static_cast<TokenId>(hash % (kMockVocabEnd - kMockVocabBegin));
}

std::vector<TokenId> mock_tokenize(std::string_view text) {
  std::vector<TokenId> ids;
  // Exact size: the ids of a long prompt stay queued, and growth by doubling could leave
  // nearly half their storage unused.
  ids.reserve(count_pieces(text));
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) ids.push_back(mock_token_id(text.substr(start, i - start)));
  }
  return ids;
}

std::string mock_token_text(TokenId id) {
  // Consonant-vowel syllables spell the id in base 80, least significant first, so
  // every id has its own pronounceable word.
  static constexpr std::string_view kConsonants = "bdfgklmnprstvzch";
  static constexpr std::string_view kVowels = "aeiou";
  constexpr uint32_t kSyllables = kConsonants.size() * kVowels.size();
  std::string word;
  uint32_t rest = id;
  do {
    const uint32_t syllable = rest % kSyllables;
    word += kConsonants[syllable % kConsonants.size()];
    word += kVowels[syllable / kConsonants.size()];
    rest /= kSyllables;
  } while (rest != 0);
  return word;
}

std::string mock_decode(std::span<const TokenId> ids) {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) text += ' ';
    text += mock_token_text(ids[i]);
  }
  return text;
}

std::string render_chat(std::span<const ChatMessage> messages) {
  std::string text;
  for (const ChatMessage& message : messages) {
    text += "<|";
    text += message.role;
    text += "|>\n";
    text += message.content;
    text += '\n';
  }
  text += "<|assistant|>\n";
  return text;
}

std::vector<TokenId> mock_tokenize_chat(std::span<const ChatMessage> messages) {
  return mock_tokenize(render_chat(messages));
}

}  // namespace kvmock
