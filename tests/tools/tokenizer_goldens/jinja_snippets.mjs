// Renders small template snippets with the reference renderer (@huggingface/jinja, as
// transformers.js uses it) and writes tests/data/chat_templates/snippets.json, which
// tests/unit/chat/chat_template_test.cc checks our engine against case by case. A snippet
// the reference rejects is recorded with "error": true.
//
//   cd /tmp/jinja && npm install @huggingface/jinja@0.5.13
//   NODE_PATH=/tmp/jinja/node_modules node tests/tools/tokenizer_goldens/jinja_snippets.mjs
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(process.env.NODE_PATH ?? ".", "x.js"));
const { Template } = require("@huggingface/jinja");

const msgs = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi <b>there</b>" },
  { role: "assistant", content: "Hello!" },
];
const cases = [
  ["prints a variable", "{{ name }}", { name: "Ada" }],
  ["undefined variables print empty", "[{{ missing }}]", {}],
  ["none prints empty", "[{{ none }}]", {}],
  ["booleans print lowercase", "{{ true }} {{ False }}", {}],
  ["integers and floats print like the reference", "{{ 3 }} {{ 3.0 }} {{ 2.5 }} {{ 1/3 }} {{ 10/2 }}", {}],
  ["comments render nothing", "a{# note #}b", {}],
  ["trim_blocks drops the newline after a block tag", "{% if true %}\nyes\n{% endif %}\nend", {}],
  ["lstrip_blocks drops indentation before a block tag", "x\n    {% if true %}y{% endif %}\n", {}],
  ["a minus strips whitespace around a tag", "a   {{- 'b' -}}   c", {}],
  ["a final newline is dropped", "text\n", {}],
  ["if elif else picks the first true branch", "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}", { n: 2 }],
  ["for loops expose loop variables", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}", { xs: ["a", "b"] }],
  ["for loops expose previtem and nextitem", "{% for x in xs %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{% endfor %}", { xs: [1, 2, 3] }],
  ["for with a condition filters items", "{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}{% endfor %}", { xs: [1, 2, 3] }],
  ["for else renders when nothing iterates", "{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", { xs: [] }],
  ["for unpacks dict items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", { d: { b: 1, a: 2 } }],
  ["for over a dict iterates keys", "{% for k in d %}{{ k }}{% endfor %}", { d: { x: 1, y: 2 } }],
  ["break and continue", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", { xs: [1, 2, 3, 4, 5] }],
  ["set inside a loop stays in the loop", "{% set y = 0 %}{% for x in xs %}{% set y = x %}{% endfor %}{{ y }}", { xs: [1, 2] }],
  ["namespace carries values out of a loop", "{% set ns = namespace(total=0) %}{% for x in xs %}{% set ns.total = ns.total + x %}{% endfor %}{{ ns.total }}", { xs: [1, 2, 3] }],
  ["block set captures output", "{% set s %}in{{ 1 }}{% endset %}[{{ s }}]", {}],
  ["macros take defaults and keywords", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}", {}],
  ["call blocks pass caller", "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}", {}],
  ["filter blocks filter their body", "{% filter upper %}abc{% endfilter %}", {}],
  ["trim filter", "[{{ '  x  ' | trim }}]", {}],
  ["length filter", "{{ xs | length }} {{ 'abc' | length }} {{ d | length }}", { xs: [1, 2], d: { a: 1 } }],
  ["join filter", "{{ xs | join(', ') }}|{{ xs | join }}", { xs: ["a", "b", 3] }],
  ["case filters", "{{ 'hello world' | upper }} {{ 'HeLLo' | lower }} {{ 'hello wORLD' | capitalize }} {{ 'hello wORLD' | title }}", {}],
  ["default filter", "{{ missing | default('d') }} {{ '' | default('e', true) }} {{ 'x' | default('f') }}", {}],
  ["first last reverse list filters", "{{ xs | first }}{{ xs | last }}{{ xs | reverse | join }}{{ xs | list | length }}", { xs: ["a", "b", "c"] }],
  ["selectattr and rejectattr", "{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|{{ ms | rejectattr('role', 'equalto', 'user') | length }}", { ms: msgs }],
  ["selectattr by truthiness", "{{ xs | selectattr('ok') | length }}", { xs: [{ ok: true }, { ok: false }, {}] }],
  ["map attribute with default", "{{ xs | map(attribute='a', default='z') | join }}", { xs: [{ a: "x" }, {}] }],
  ["tojson keeps key order and separators", "{{ obj | tojson }}", { obj: { z: 1, a: [1, "two", null, true], m: { k: 1.5 } } }],
  ["tojson with indent", "{{ obj | tojson(indent=2) }}", { obj: { z: 1, a: [1, { b: [] }], e: {} } }],
  ["tojson escapes strings", "{{ s | tojson }}", { s: "quote\" slash\\ nl\n tab\t é 😀 \u0001" }],
  ["tojson ensure_ascii", "{{ s | tojson(ensure_ascii=true) }}", { s: "é😀" }],
  ["tojson of numbers", "{{ 3.0 | tojson }} {{ 2.5 | tojson }} {{ 7 | tojson }}", {}],
  ["string int float filters", "{{ 5 | string }}{{ 2.0 | string }}|{{ '42x' | int }}|{{ '2.5' | float }}|{{ 3.9 | int }}", {}],
  ["abs filter", "{{ -3 | abs }} {{ -2.5 | abs }}", {}],
  ["replace filter", "{{ 'aaa' | replace('a', 'b') }}", {}],
  ["unique filter", "{{ [1, 2, 1, 'a', 'a'] | unique | join(',') }}", {}],
  ["dictsort filter", "{% for k, v in d | dictsort %}{{ k }}{{ v }}{% endfor %}", { d: { b: 2, a: 1, C: 3 } }],
  ["items filter", "{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}", { d: { b: 2, a: 1 } }],
  ["tests on types", "{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is integer }}{{ 's' is string }}{{ d is mapping }}{{ xs is iterable }}{{ xs is sequence }}{{ none is none }}", { d: {}, xs: [] }],
  ["defined and undefined tests", "{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ x is not none }}", { x: 1 }],
  ["true false boolean tests", "{{ true is true }}{{ false is false }}{{ 1 is true }}{{ false is boolean }}", {}],
  ["odd even tests", "{{ 3 is odd }}{{ 3 is even }}{{ 4 is even }}", {}],
  ["equalto test in selectattr", "{{ xs | selectattr('n', 'equalto', 'a') | length }}", { xs: [{ n: "a" }, { n: "b" }] }],
  ["in and not in", "{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'z' not in d }}{{ 'x' in missing }}", { d: { k: 1 } }],
  ["logic operators return operands", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ not 0 }}", {}],
  ["is and is not", "{{ x is string }} {{ x is not string }}", { x: "s" }],
  ["comparisons", "{{ 1 < 2 }}{{ 2 <= 2 }}{{ 3 > 4 }}{{ 1 == 1.0 }}{{ 'a' != 'b' }}", {}],
  ["arithmetic", "{{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 2 }} {{ 2 ** 10 }} {{ -7 // 2 }} {{ -7 % 2 }}", {}],
  ["tilde concatenates as strings", "{{ 'a' ~ 1 ~ true ~ missing }}", {}],
  ["plus concatenates strings", "{{ 'a' + 'b' }} {{ 'n' + 1 }}", {}],
  ["ternary", "{{ 'y' if x else 'n' }}{{ 'y' if not x else 'n' }}", { x: true }],
  ["subscripts and slices", "{{ xs[0] }}{{ xs[-1] }}{{ xs[1:] | join }}{{ xs[::-1] | join }}{{ xs[:2] | join }}{{ 'hello'[1:3] }}{{ 'abc'[::-1] }}", { xs: ["a", "b", "c"] }],
  ["attribute access falls back to key lookup", "{{ m.role }} {{ m['content'] }}", { m: msgs[0] }],
  ["string literals with escapes", "{{ 'a\\nb\\t\\'c\\'' }}{{ \"d\\\"e\" }}", {}],
  ["list dict and tuple literals", "{{ [1, 'a'] }} {{ {'k': 'v'} }} {{ (1, 2) | length }}", {}],
  ["string methods", "{{ s.startswith('He') }}{{ s.endswith('!') }}{{ s.split(' ') | join('|') }}{{ '  x '.strip() }}|{{ ' x '.lstrip() }}|{{ ' x '.rstrip() }}|{{ s.upper() }}{{ s.lower() }}{{ 'ab cd'.title() }}{{ s.replace('l', 'L') }}", { s: "Hello world!" }],
  ["strip ignores its argument like the reference", "[{{ '\\n\\n x \\n'.strip('\\n') }}]", {}],
  ["split without separator", "{{ '  a b   c '.split() | join(',') }}|{{ 'a,b,c'.split(',', 1) | join('|') }}", {}],
  ["dict methods", "{{ d.get('a') }}{{ d.get('z', 'dflt') }}{{ d.keys() | join }}{{ d.values() | join }}", { d: { a: 1, b: 2 } }],
  ["dicts and lists print as JSON", "{{ d }} {{ xs }}", { d: { a: [1, "x"], b: null }, xs: [true, 1.5] }],
  ["range", "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}", {}],
  ["raise_exception fails the render", "{{ raise_exception('bad role') }}", {}],
  ["an unknown tag is a parse error", "{% frobnicate %}", {}],
  ["an unclosed block is a parse error", "{% if true %}never closed", {}],
  ["looping over undefined is an error like the reference", "{% for x in missing %}{{ x }}{% endfor %}", {}],
  ["generation markers vanish", "a{% generation %}b{% endgeneration %}c", {}],
  ["whitespace control on comments", "a  {#- c -#}  b", {}],
  ["unicode text passes through", "{{ s }}|{{ s | length }}|{{ s | upper }}", { s: "héllo wörld" }],
];

const out = [];
for (const [name, template, context] of cases) {
  try {
    out.push({ name, template, context, text: new Template(template).render(context) });
  } catch (e) {
    out.push({ name, template, context, error: true, message: String(e.message ?? e) });
  }
}
const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "../../data/chat_templates/snippets.json");
writeFileSync(target, JSON.stringify({ reference: "@huggingface/jinja@0.5.13", cases: out }, null, 1) + "\n");
console.log(`${out.length} snippets -> ${target}`);
