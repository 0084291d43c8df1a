// The tokenizer on outside bytes, two ways, chosen by the first byte:
//   even: the rest is the text of a prompt, encoded by two small tokenizers that use the
//         stages real models use (a Qwen/Llama-3 style Split regex with Unicode classes, NFC,
//         byte-level BPE and added tokens; a Llama-2 style Metaspace with byte fallback),
//         then decoded and incrementally detokenized back;
//   odd:  the rest is a tokenizer.json, built and, when it is accepted, run on a fixed text.
// Either way: a value or an Error, never a crash, a hang or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/tokenizer/hf_tokenizer.h"
#include "core/tokenizer/incremental_detokenizer.h"
#include "core/tokenizer/model_text_codec.h"

namespace {

constexpr std::string_view kSplitRegexTokenizer = R"({
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "abc": 5, "Ã": 6, "©": 7, "Ã©": 8},
            "merges": ["a b", "ab c", "Ã ©"]},
  "added_tokens": [
    {"id": 9, "content": "<|end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 10, "content": "<think>", "single_word": false, "lstrip": true, "rstrip": true, "normalized": true, "special": false}],
  "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
  "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
})";

constexpr std::string_view kMetaspaceTokenizer = R"({
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                     {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "▁": 2, "h": 3, "i": 4, "▁h": 5, "▁hi": 6,
                                     "<0xC3>": 7, "<0xA9>": 8},
            "merges": ["▁ h", "▁h i"], "byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>"},
  "added_tokens": [
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}}], "pair": [],
                     "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
})";

std::shared_ptr<const kvmock::TextCodec> codec_of(std::string_view tokenizer_json) {
  auto codec = kvmock::make_model_text_codec({tokenizer_json, R"({"eos_token": "<|end|>"})", {}});
  if (!codec) __builtin_trap();  // the fixed files are valid
  return *codec;
}

void round_trip(const kvmock::TextCodec& codec, std::string_view text) {
  for (bool special : {false, true}) {
    auto ids = codec.encode(text, special);
    if (!ids) continue;  // invalid UTF-8: refused, as it must be
    (void)codec.decode(*ids, special);
    kvmock::IncrementalDetokenizer detokenizer(codec, std::span(*ids).first(ids->size() / 2));
    for (size_t i = ids->size() / 2; i < ids->size(); ++i) {
      (void)detokenizer.push(std::span(*ids).subspan(i, 1));
    }
    (void)detokenizer.finish();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    static const auto split_regex = codec_of(kSplitRegexTokenizer);
    static const auto metaspace = codec_of(kMetaspaceTokenizer);
    round_trip(*split_regex, rest);
    round_trip(*metaspace, rest);
    return 0;
  }
  auto tokenizer = kvmock::HfTokenizer::from_json(rest);
  if (!tokenizer) return 0;
  for (bool special : {false, true}) {
    auto ids = (*tokenizer)->encode("Hello wörld <s> 123 \xF0\x9F\x98\x80  end", special);
    if (ids) (void)(*tokenizer)->decode(*ids, !special);
  }
  return 0;
}
