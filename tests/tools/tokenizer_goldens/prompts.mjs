// The texts that the goldens encode, and the corpora of the reference benchmark: hand-picked
// cases plus ones made by a seeded PRNG, so every run gives the same list.

// mulberry32: a small 32-bit PRNG; the seed fixes the whole sequence.
export function makeRng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
  };
}

export const ENGLISH = [
  'The quick brown fox jumps over the lazy dog.',
  'A mock worker answers requests as a real model server would, but without a GPU.',
  'It was the best of times, it was the worst of times.',
  'Tokenizers split text into pieces that a language model knows how to read.',
  'Please summarize the following article in three short bullet points.',
  'Why is the sky blue during the day but red at sunset?',
  'In 1969, two astronauts walked on the Moon while a third orbited above them.',
  'The committee will meet again on Thursday to review the revised budget.',
  'Write a haiku about autumn leaves falling into a quiet river.',
  'She sells sea shells by the sea shore; the shells she sells are surely sea shells.',
  'Most caches evict the least recently used block when they run out of room.',
  'Could you translate "good morning" into French, German and Italian?',
  'Rain is expected tomorrow afternoon, with winds from the north-west.',
  'He opened the door, looked around, and quietly stepped into the hallway.',
  'Explain the difference between a process and a thread to a new engineer.',
  'Our quarterly revenue grew by 12.5% compared with the same period last year.',
  'The library closes at 9 p.m. on weekdays and at noon on Saturdays.',
  'Mr. O\'Neill\'s dog won\'t eat anything but cold chicken, he\'d said.',
  'They\'re sure we\'ve seen it; I\'m not, and you\'ll never convince me it\'s real.',
  'WE\'LL SEE IF THEY\'RE RIGHT; IT\'S NOT OVER UNTIL IT\'S OVER.',
  'Hello, world!',
  'Once upon a time, in a kingdom by the sea, there lived a curious engineer.',
  'The function returns an error when the input is not valid UTF-8.',
  'Describe, step by step, how to bake a loaf of sourdough bread.',
];

const WORDS = (
  'the of and to in is was for on that with as by it at from this be are or an have not ' +
  'which one had but all were they their has been there more when will would who so if ' +
  'time people year way day man thing woman life child world school state family student ' +
  'group country problem hand part place case week company system program question work ' +
  'government number night point home water room mother area money story fact month lot ' +
  'right study book eye job word business issue side kind head house service friend father ' +
  'power hour game line end member law car city community name president team minute idea ' +
  'kid body information back parent face others level office door health person art war ' +
  'history party result change morning reason research girl guy moment air teacher force ' +
  'education token tokenizer cache block worker router latency throughput prefix request ' +
  'Model Server GPU Kubernetes JSON HTTP API Unicode NFC UTF-8 BPE SentencePiece Llama Qwen ' +
  'internationalization antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis'
).split(' ');

export const WHITESPACE = [
  ' ', '  ', '   ', '    ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', '\r', ' \n',
  '\n ', ' \t ', '\t\n', '  \n  ', '\u00a0', '\u3000', '\u2009', '\u200b', '\u000b', '\u000c',
];

const CONTRACTIONS = [
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'M", "'LL",
  "'Ll", "'D", "n't", "N'T", "'", "''", "'''",
];

const PUNCT = [
  '!!!', '...', '?!?', '---', '***', '((()))', '{}[]', '<<>>', '@#$%^&*', '~~~', '___', ';;',
  '::', '=>', '->', '!=', '==', '<=', '>=', '&&', '||', '//', '/*', '*/', '#', '$$', '%', '``',
  '"', '“quoted”', '‘single’', '«guillemets»', '—', '–', '…', '•', '§', '¶', '©', '®', '™',
  '¿', '¡', '·', '。', '、', '！', '？', '，', '「」', '【】', '《》',
];

export const CODE = [
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  'import os\nfor root, dirs, files in os.walk("."):\n\tprint(root, len(files))\n',
  'class Stack:\n    def __init__(self):\n        self._items = []\n\n    def push(self, x):\n        self._items.append(x)\n',
  '#include <vector>\n\nint sum(const std::vector<int>& v) {\n  int s = 0;\n  for (int x : v) s += x;\n  return s;\n}\n',
  'template <typename T>\nstd::optional<T> first(std::span<const T> xs) {\n    if (xs.empty()) return std::nullopt;\n    return xs[0];\n}',
  'auto it = map.find(key);\nif (it != map.end()) { it->second += 1; } // count it\n',
  '{"model": "qwen3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}',
  '{\n  "name": "kvmock",\n  "version": "1.2.3",\n  "tags": ["a", "b"],\n  "nested": {"x": null, "y": true, "z": -0.5e10}\n}',
  '#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  wc -l "$f" | awk \'{print $1}\'\ndone\n',
  'curl -sS -X POST http://localhost:8000/v1/completions -H \'Content-Type: application/json\' -d \'{"prompt":"x"}\'',
  'git log --oneline | grep -E "^[0-9a-f]{7} fix" > /tmp/fixes.txt 2>&1 && echo ok',
  'SELECT id, name FROM users WHERE created_at >= \'2024-01-01\' ORDER BY id DESC LIMIT 10;',
  'const add = (a, b) => a + b;\nconsole.log(`sum=${add(2, 3)}`);\n',
  'fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!("{:?}", v);\n}\n',
  '<div class="card"><a href="/x?y=1&amp;z=2">link</a></div>',
  '    indented with four spaces\n\tand a tab\n        and eight spaces',
];

export const URLS = [
  'https://example.com/path/to/page?query=1&lang=en#section-2',
  'http://localhost:8080/v1/chat/completions',
  'ftp://files.example.org/pub/README.txt',
  'mailto:someone@example.com',
  'https://例え.jp/パス?q=テスト',
  'www.example.co.uk/index.html',
  'https://github.com/org/repo/blob/main/src/main.cc#L10-L20',
];

export const SCRIPTS = [
  // CJK (Simplified / Traditional)
  '我们今天去公园散步，天气非常好。',
  '機器學習模型需要大量的訓練資料。',
  '人工智能正在改变世界。',
  // Japanese
  '東京は日本の首都です。ひらがなとカタカナも使います。',
  'すみません、駅はどこですか？',
  'カタカナのテキスト：コンピューター、プログラム、データベース',
  // Korean
  '안녕하세요, 만나서 반갑습니다.',
  '한국어 문장은 띄어쓰기가 중요합니다.',
  // Arabic
  'مرحبا بالعالم، كيف حالك اليوم؟',
  'اللغة العربية تكتب من اليمين إلى اليسار.',
  // Hebrew
  'שלום עולם, מה שלומך?',
  'עברית נכתבת מימין לשמאל.',
  // Hindi / Devanagari
  'नमस्ते, आप कैसे हैं?',
  'भारत एक विशाल देश है जिसमें अनेक भाषाएँ बोली जाती हैं।',
  // Thai
  'สวัสดีครับ วันนี้อากาศดีมาก',
  'ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ',
  // Cyrillic
  'Привет, мир! Как дела?',
  'Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'Українська мова: ґ, є, ї, і.',
  // Greek
  'Γειά σου Κόσμε! Τι κάνεις;',
  'Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.',
  // Others
  'Tiếng Việt có nhiều dấu thanh: à, á, ả, ã, ạ.',
  'Ελληνικά και Русский и 中文 mixed in one line.',
  'ქართული ენა', 'Հայերեն լեզու', 'አማርኛ ቋንቋ', 'தமிழ் மொழி', 'বাংলা ভাষা', 'ಕನ್ನಡ',
];

export const EMOJI = [
  '😀', '👍', '👍🏽', '👍🏿', '❤️', '❤', '🔥🔥🔥', '👨‍👩‍👧‍👦', '🧑🏿‍💻', '👩🏼‍🚀', '🏳️‍🌈', '🏴‍☠️',
  '🇯🇵', '🇺🇸🇬🇧🇫🇷', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '☺️', '✅', '⚠️', '1️⃣', '#️⃣', '🤷‍♀️', '🙇🏻‍♂️', '🫠', '🧬',
];

// Precomposed forms beside their decomposed equivalents (NFC folds the latter for qwen3).
export const COMBINING = [
  'é', 'e\u0301', 'Å', 'A\u030a', '\u212b', 'ñ', 'n\u0303', 'ệ', 'e\u0323\u0302', 'e\u0302\u0323',
  'ö', 'o\u0308', 'Ω', '\u2126', '한', '\u1112\u1161\u11ab', '가', '\u1100\u1161', 'ﬁ', 'ǅ',
  'a\u0300\u0301\u0302\u0303\u0304', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334',
  'café', 'cafe\u0301', 'naïve', 'nai\u0308ve', 'Ångström', 'A\u030angstro\u0308m', 'ḱ\u0301',
  '\u0915\u093c', '\u0958', 'が', 'か\u3099', 'パ', 'ハ\u309a',
];

export const FULLWIDTH = [
  'ＡＢＣ１２３！', 'ｈｅｌｌｏ　ｗｏｒｌｄ', 'ｶﾀｶﾅ', '０１２３４５６７８９', '（全角）', '＄１００',
];

export const SPECIAL_TEXTS = [
  '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|begin_of_text|>', '<|end_of_text|>',
  '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>', '<|python_tag|>',
  '<|finetune_right_pad_id|>', '<|reserved_special_token_5|>', '<s>', '</s>', '<unk>', '<think>',
  '</think>', '<tool_call>', '</tool_call>', '<tool_response>', '<|fim_prefix|>', '<|vision_pad|>',
  '<|im_sta', '<|im_start', 'im_start|>', '<|im_end', '< s>', '<s >', '<|begin_of_', '<|eot_id',
  '<|IM_START|>', '<<|im_start|>>', '<|<|im_end|>|>',
];

export const RARE = [
  '\u{10fffd}', '\u{10ffff}', '\u{f0000}', '\u{e000}', '\u{f8ff}', '\u{20000}', '\u{2a6d6}',
  '\u{2b740}', '\u{30000}', '\u0000', '\u0001', '\u0007', '\u001b[31mred\u001b[0m', '\u007f',
  '\u0085', '\u200d', '\ufeff', '\u{1d11e}', '\u{1f9ec}', '\ufffd', '\ufffe', '\u2028', '\u2029',
  '\u{e0041}', '\u{1f600}\u{e0001}', '\u0600', '\u061c', '\u202e', '\u{16fe0}', '\u{13000}',
];

function digits(rng, n) {
  let s = String(1 + rng.int(9));
  for (let i = 1; i < n; i++) s += String(rng.int(10));
  return s;
}

// n words; `noisy` also upper-cases or capitalizes some of them.
function sentenceOfWords(rng, n, noisy = true) {
  const out = [];
  for (let i = 0; i < n; i++) {
    let w = rng.pick(WORDS);
    const r = noisy ? rng.next() : 1;
    if (r < 0.08) w = w.toUpperCase();
    else if (r < 0.16) w = w[0].toUpperCase() + w.slice(1);
    out.push(w);
  }
  return out.join(' ');
}

// The hand-picked cases.
export function handPicked() {
  const out = [
    '', ' ', '  ', '\t', '\n', '\r\n', '\n\n\n', ' \t\n\r\n ', '   \t\t   ', '\u00a0', '\u3000',
    'a', 'A', '0', '.', "'", 'Hello', ' Hello', 'Hello ', '  Hello  ', '\tHello\t', '\nHello\n',
    'Hello world', 'Hello  world', 'Hello\tworld', 'Hello\nworld', 'Hello\r\nworld', 'Hello \n world',
    'trailing spaces   ', '   leading spaces', 'line one\nline two\n\nline four\n',
    'windows\r\nline\r\nendings\r\n', 'mixed\n\r\n\rends', 'spaces before newline   \n  after',
    '0', '12', '123', '1234', '12345', '1234567890', '3.14159265358979', '-42', '+1e-10',
    '1,000,000', '2024-07-26T12:34:56Z', '0x7fffffff', '192.168.0.1', '$1,234.56', '١٢٣٤٥', '१२३',
    '½ ¾ ²³ ⅓', 'Ⅳ Ⅻ', '𝟏𝟐𝟑',
    "it's", "It'S", "IT'S", "we'LL", "They'Re", "you've", "I'm", "she'd", "don't", "DON'T",
    "'s'", "'ll've", "rock 'n' roll", "O'Reilly's", "the '90s",
    'a'.repeat(300), 'ab'.repeat(150), 'x'.repeat(1000), '='.repeat(120), '-'.repeat(80),
    ' '.repeat(64), '\n'.repeat(24), '\t'.repeat(16), 'ha'.repeat(50), '!'.repeat(40),
    '哈'.repeat(60), '😀'.repeat(20), 'é'.repeat(40), 'e\u0301'.repeat(20),
    'Supercalifragilisticexpialidocious'.repeat(6),
    'Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft',
    'Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch',
    '9'.repeat(200), '1234567890'.repeat(12),
  ];
  for (const s of ENGLISH) out.push(s);
  for (const s of CODE) out.push(s);
  for (const s of URLS) out.push(s);
  for (const s of SCRIPTS) out.push(s);
  out.push(EMOJI.join(''), EMOJI.join(' '));
  for (const s of EMOJI.slice(6, 18)) out.push(s, `I feel ${s} today`);
  for (const s of COMBINING) out.push(s);
  out.push(COMBINING.join(' '));
  for (const s of FULLWIDTH) out.push(s);
  for (const s of SPECIAL_TEXTS) out.push(s, `Text before ${s} and after.`);
  out.push(
    '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n',
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
    '<s>[INST] What is 2+2? [/INST] 4</s>',
    '<s><s></s></s>', '<|im_end|><|im_end|><|im_end|>', ' <|endoftext|> ', '\n<|eot_id|>\n',
    'x<think>\nreasoning\n</think>\n\nanswer',
  );
  for (const s of RARE) out.push(s, `before ${s} after`);
  out.push(RARE.join(''));
  for (const s of PUNCT) out.push(s);
  out.push(PUNCT.join(''), PUNCT.join(' '));
  return out;
}

// Seeded mixtures of the pools above.
export function generated(seed, count) {
  const rng = makeRng(seed);
  const gens = [
    () => sentenceOfWords(rng, 3 + rng.int(25)),
    () => rng.pick(ENGLISH),
    () => rng.pick(WHITESPACE),
    () => digits(rng, 1 + rng.int(rng.next() < 0.2 ? 60 : 8)),
    () => rng.pick(WORDS) + rng.pick(CONTRACTIONS),
    () => rng.pick(PUNCT),
    () => rng.pick(CODE).slice(0, 20 + rng.int(80)),
    () => rng.pick(URLS),
    () => rng.pick(SCRIPTS),
    () => rng.pick(EMOJI),
    () => rng.pick(COMBINING),
    () => rng.pick(FULLWIDTH),
    () => rng.pick(SPECIAL_TEXTS),
    () => rng.pick(RARE),
    () => rng.pick(['a', 'z', '0', ' ', '中', 'é', '\n', '-', '😀']).repeat(2 + rng.int(40)),
  ];
  const out = [];
  for (let i = 0; i < count; i++) {
    const parts = 1 + rng.int(8);
    let s = '';
    for (let p = 0; p < parts; p++) {
      if (p > 0 && rng.next() < 0.7) s += rng.next() < 0.8 ? ' ' : rng.pick(WHITESPACE);
      s += rng.pick(gens)();
    }
    if (rng.next() < 0.1) s = ' '.repeat(1 + rng.int(3)) + s;
    if (rng.next() < 0.1) s += rng.pick(WHITESPACE);
    out.push(s);
  }
  return out;
}

// The benchmark corpora: ~96 KB of English-like prose, and ~96 KB mixing scripts, emoji and code.
export function benchEnglish(targetBytes = 96 * 1024) {
  const rng = makeRng(0xbe7c4e61);
  const paras = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const sentences = [];
    const n = 3 + rng.int(6);
    for (let i = 0; i < n; i++) {
      if (rng.next() < 0.35) sentences.push(rng.pick(ENGLISH));
      else {
        let s = sentenceOfWords(rng, 6 + rng.int(18), false);
        s = s[0].toUpperCase() + s.slice(1);
        if (rng.next() < 0.2) s += ', ' + sentenceOfWords(rng, 3 + rng.int(8), false);
        if (rng.next() < 0.1) s += ' in ' + (1900 + rng.int(125));
        s += rng.pick(['.', '.', '.', '?', '!']);
        sentences.push(s);
      }
    }
    const p = sentences.join(' ');
    paras.push(p);
    bytes += Buffer.byteLength(p) + 2;
  }
  return paras.join('\n\n') + '\n';
}

export function benchMixed(targetBytes = 96 * 1024) {
  const rng = makeRng(0x31d5eed);
  const pools = [SCRIPTS, SCRIPTS, SCRIPTS, EMOJI, CODE, ENGLISH, URLS, COMBINING, FULLWIDTH, PUNCT];
  const lines = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const parts = [];
    const n = 2 + rng.int(6);
    for (let i = 0; i < n; i++) {
      const pool = rng.pick(pools);
      parts.push(pool === CODE ? rng.pick(pool).slice(0, 30 + rng.int(60)) : rng.pick(pool));
      if (rng.next() < 0.15) parts.push(digits(rng, 1 + rng.int(6)));
    }
    const line = parts.join(' ');
    lines.push(line);
    bytes += Buffer.byteLength(line) + 1;
  }
  return lines.join('\n') + '\n';
}

// Cuts a corpus (a Buffer of UTF-8) into prompts of at most `size` bytes: each cut goes right
// after the last ASCII space or newline within the next `size` bytes or, if there is none, at
// the last UTF-8 character boundary within them. The C++ benchmark cuts the same way.
export function chunkCorpus(bytes, size) {
  const chunks = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + size, bytes.length);
    if (end < bytes.length) {
      let cut = -1;
      for (let i = end - 1; i >= start; i--) {
        if (bytes[i] === 0x20 || bytes[i] === 0x0a) {
          cut = i + 1;
          break;
        }
      }
      if (cut === -1) {
        cut = end;
        while (cut > start && (bytes[cut] & 0xc0) === 0x80) cut--;
      }
      end = cut;
    }
    chunks.push(bytes.subarray(start, end).toString('utf8'));
    start = end;
  }
  return chunks;
}
