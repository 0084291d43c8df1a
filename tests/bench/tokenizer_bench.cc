// Encode throughput of kvmock's tokenizer (HfTokenizer) on real models' tokenizer.json files,
// on one core, on the corpora and chunks the reference benchmark uses
// (tests/tools/tokenizer_goldens/bench.mjs): tests/data/tokenizers/bench_{english,mixed}.txt
// cut into prompts of at most 2048 bytes, right after the last ASCII space or newline (else at
// the last UTF-8 character boundary), each encoded alone without special tokens.
//
//   tests/tools/fetch_tokenizers.sh build/test-models
//   KVMOCK_TEST_MODELS_DIR=build/test-models build/tests/bench/tokenizer_bench
//
// bytes_per_second is the figure to compare with bench.mjs's MB/s (MB = 10^6 bytes there;
// Google Benchmark prints MiB/s = 2^20 bytes/s).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/tokenizer/hf_tokenizer.h"

namespace {

constexpr size_t kChunkBytes = 2048;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// bench.mjs's chunkCorpus: cut right after the last ' ' or '\n' within the next kChunkBytes
// bytes, else at the last UTF-8 character boundary within them.
std::vector<std::string> chunk_corpus(const std::string& corpus) {
  std::vector<std::string> chunks;
  size_t start = 0;
  while (start < corpus.size()) {
    size_t end = std::min(corpus.size(), start + kChunkBytes);
    if (end < corpus.size()) {
      size_t cut = end;
      while (cut > start && corpus[cut - 1] != ' ' && corpus[cut - 1] != '\n') --cut;
      if (cut == start) {
        cut = end;
        while (cut > start && (static_cast<unsigned char>(corpus[cut]) & 0xC0) == 0x80) --cut;
      }
      end = cut;
    }
    chunks.push_back(corpus.substr(start, end - start));
    start = end;
  }
  return chunks;
}

std::string models_dir() {
  const char* dir = std::getenv("KVMOCK_TEST_MODELS_DIR");
  return dir != nullptr ? dir : "build/test-models";
}

void encode_corpus(benchmark::State& state, const std::string& model, const std::string& corpus) {
  const std::string path = models_dir() + "/" + model + "/tokenizer.json";
  auto tokenizer = kvmock::HfTokenizer::from_json(read_file(path));
  if (!tokenizer) {
    state.SkipWithError(("cannot load " + path +
                         " (run tests/tools/fetch_tokenizers.sh): " + tokenizer.error().message)
                            .c_str());
    return;
  }
  const std::string text =
      read_file(std::string(KVMOCK_TEST_DATA_DIR "/tokenizers/bench_") + corpus + ".txt");
  const std::vector<std::string> chunks = chunk_corpus(text);
  size_t tokens = 0;
  for (const std::string& chunk : chunks) tokens += (*tokenizer)->encode(chunk, false)->size();
  for (auto _ : state) {
    for (const std::string& chunk : chunks) {
      auto ids = (*tokenizer)->encode(chunk, false);
      benchmark::DoNotOptimize(ids);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens_per_pass"] = static_cast<double>(tokens);
  state.counters["MB_per_s"] = benchmark::Counter(static_cast<double>(text.size()) / 1e6,
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

// Every model on every corpus, named encode_corpus/<model>_<corpus>.
[[maybe_unused]] const bool kRegistered = [] {
  for (const char* model : {"qwen3", "llama3_1", "llama2"}) {
    for (const char* corpus : {"english", "mixed"}) {
      const std::string name = std::string("encode_corpus/") + model + "_" + corpus;
      benchmark::RegisterBenchmark(name.c_str(), encode_corpus, std::string(model),
                                   std::string(corpus))
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace
