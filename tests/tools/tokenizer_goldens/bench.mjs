#!/usr/bin/env node
// Encode throughput of the reference tokenizer (@anush008/tokenizers, the Rust `tokenizers`
// library) on one core, on the same corpora and chunks as kvmock's C++ tokenizer benchmark.
// See --help.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Tokenizer } from '@anush008/tokenizers';

import { chunkCorpus } from './prompts.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const HELP = `usage: node bench.mjs [options] MODELS_DIR

Encode throughput of @anush008/tokenizers (Hugging Face's Rust tokenizers library) on one
core: MB/s = corpus bytes / seconds (MB = 10^6 bytes), one line per model and corpus.

  MODELS_DIR          {qwen3,llama3_1,llama2}/tokenizer.json, as tests/tools/fetch_tokenizers.sh lays them out
  --data-dir DIR      where bench_english.txt and bench_mixed.txt are (default: tests/data/tokenizers)
  --models a,b        models to run (default: qwen3,llama3_1,llama2)
  --chunk BYTES       chunk size (default: 2048)
  --min-seconds S     time each measurement runs at least (default: 2)
  --special           encode with add_special_tokens=true (default: false)
  -h, --help          this text

Chunks: the corpus (UTF-8 bytes) is cut into prompts of at most BYTES bytes; each cut goes
right after the last ASCII space or newline within the next BYTES bytes, or, if there is none,
at the last UTF-8 character boundary within them. Each chunk is encoded alone, one encode
at a time (each awaited before the next starts), with no batching. Before timing, every
chunk is encoded once (warm-up). The timed loop then encodes the whole corpus as many times
as fit in --min-seconds (at least once). A line per model also gives the time of one
encode of an empty text: the binding's per-call overhead, included in the MB/s figures.
`;

function parseArgs(argv) {
  const opts = {
    dataDir: join(HERE, '..', '..', 'data', 'tokenizers'),
    models: ['qwen3', 'llama3_1', 'llama2'],
    chunk: 2048,
    minSeconds: 2,
    special: false,
    modelsDir: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '-h' || a === '--help') {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (a === '--data-dir') opts.dataDir = value();
    else if (a === '--models') opts.models = value().split(',');
    else if (a === '--chunk') opts.chunk = Number(value());
    else if (a === '--min-seconds') opts.minSeconds = Number(value());
    else if (a === '--special') opts.special = true;
    else if (a.startsWith('-')) fail(`unknown option ${a}`);
    else if (opts.modelsDir === null) opts.modelsDir = a;
    else fail(`unexpected argument ${a}`);
  }
  if (opts.modelsDir === null) fail('MODELS_DIR is required');
  if (!(opts.chunk >= 4)) fail('--chunk must be at least 4');
  if (!(opts.minSeconds > 0)) fail('--min-seconds must be positive');
  return opts;
}

function fail(message) {
  process.stderr.write(`bench.mjs: ${message}\n\n${HELP}`);
  process.exit(2);
}

async function encodeAll(tok, chunks, special) {
  let tokens = 0;
  for (const c of chunks) {
    const enc = await tok.encode(c, null, { addSpecialTokens: special });
    tokens += enc.getLength();
  }
  return tokens;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const corpora = ['english', 'mixed'].map((name) => {
    const bytes = readFileSync(join(opts.dataDir, `bench_${name}.txt`));
    return { name, bytes: bytes.length, chunks: chunkCorpus(bytes, opts.chunk) };
  });
  for (const model of opts.models) {
    const tok = Tokenizer.fromFile(join(opts.modelsDir, model, 'tokenizer.json'));
    // The binding's encode is asynchronous (a Promise settled from a worker thread): the cost
    // of one call of an empty text shows the per-call overhead inside the figures below.
    const empty = Array(2000).fill('');
    await encodeAll(tok, empty, opts.special);
    const e0 = process.hrtime.bigint();
    await encodeAll(tok, empty, opts.special);
    const perCall = Number(process.hrtime.bigint() - e0) / 1e3 / empty.length;
    console.log(`model=${model} empty_encode_us=${perCall.toFixed(1)}`);
    for (const corpus of corpora) {
      const tokens = await encodeAll(tok, corpus.chunks, opts.special); // warm-up
      let rounds = 0;
      const t0 = process.hrtime.bigint();
      let elapsed = 0;
      do {
        await encodeAll(tok, corpus.chunks, opts.special);
        rounds++;
        elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      } while (elapsed < opts.minSeconds);
      const mbps = (corpus.bytes * rounds) / elapsed / 1e6;
      console.log(
        `model=${model} corpus=${corpus.name} bytes=${corpus.bytes} chunks=${corpus.chunks.length} ` +
          `tokens=${tokens} rounds=${rounds} seconds=${elapsed.toFixed(3)} MB/s=${mbps.toFixed(2)}`,
      );
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
