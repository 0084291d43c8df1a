// A deterministic stand-in for a real tokenizer. Mock workers need token ids only to
// drive prefix caching and block hashes, so what matters is that the mapping is stable
// and prefix-preserving, not that it matches any real vocabulary:
//
//   - text is split on ASCII whitespace; each piece becomes one id, a hash of the piece's
//     bytes folded into [kMockVocabBegin, kMockVocabEnd);
//   - so the same text always gives the same ids, and two texts that share their first k
//     whitespace-separated pieces share their first k ids (the last shared piece must be
//     complete: "the cat" and "the cathedral" share only "the");
//   - decode() turns ids back into readable pseudo-words, one per id, joined by spaces.
//     It is not the inverse of tokenize(): output ids are invented by the mock worker.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokens/block_hash.h"

namespace kvmock {

// Ids below kMockVocabBegin are left free, as real vocabularies keep low ids for special
// tokens.
inline constexpr TokenId kMockVocabBegin = 1000;
inline constexpr TokenId kMockVocabEnd = 32000;

struct ChatMessage {
  std::string role;
  std::string content;
};

// The id of one whitespace-free piece of text.
TokenId mock_token_id(std::string_view piece);

// Splits `text` on whitespace and maps each piece to its id. Empty or all-blank text
// gives no ids.
std::vector<TokenId> mock_tokenize(std::string_view text);

// A readable pseudo-word for each id, joined by single spaces. Any id is accepted.
std::string mock_decode(std::span<const TokenId> ids);

// The pseudo-word of a single id (letters only, never empty).
std::string mock_token_text(TokenId id);

// The mock chat template: "<|role|>\n{content}\n" per message, then the generation
// prompt "<|assistant|>\n". Because the generation prompt has the same shape as an
// assistant turn's header, the full prompt of one turn is a prefix of the next turn's.
std::string render_chat(std::span<const ChatMessage> messages);

// mock_tokenize(render_chat(messages)).
std::vector<TokenId> mock_tokenize_chat(std::span<const ChatMessage> messages);

}  // namespace kvmock
