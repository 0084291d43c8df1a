// The conversations that the chat-template goldens render. Each entry is the part of the
// context that varies; make_goldens.mjs adds the model's bos/eos tokens (and date_string).

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'The city name, e.g. Paris' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city'],
    },
  },
};

const SEARCH_TOOL = {
  type: 'function',
  function: {
    name: 'search_docs',
    description: 'Sucht in der Dokumentation — 検索 — and returns the top hits',
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string' },
        limit: { type: 'integer', minimum: 1, maximum: 50, default: 5 },
        filters: {
          type: 'object',
          properties: { lang: { type: 'array', items: { type: 'string' } }, exact: { type: 'boolean' } },
        },
      },
      required: ['query'],
    },
  },
};

const u = (content) => ({ role: 'user', content });
const a = (content) => ({ role: 'assistant', content });
const s = (content) => ({ role: 'system', content });
const tool = (content) => ({ role: 'tool', content });
const call = (name, args, id) => ({ id, type: 'function', function: { name, arguments: args } });

// Conversations every template can render (role + string content only).
const COMMON = [
  { messages: [u('Hello!')], add_generation_prompt: true },
  { messages: [u('Hello!')], add_generation_prompt: false },
  { messages: [s('You are a helpful assistant.'), u('What is the capital of France?')], add_generation_prompt: true },
  { messages: [s('You are terse.'), u('Hi'), a('Hello.'), u('How are you?')], add_generation_prompt: true },
  { messages: [u('Tell me a joke.'), a('Why did the chicken cross the road? To get to the other side.')], add_generation_prompt: false },
  { messages: [u('Tell me a joke.'), a('Why did the chicken cross the road?')], add_generation_prompt: true },
  {
    messages: [
      s('You answer in one word.'), u('Color of the sky?'), a('Blue.'), u('Color of grass?'), a('Green.'),
      u('Color of snow?'), a('White.'), u('Color of coal?'),
    ],
    add_generation_prompt: true,
  },
  { messages: [u('多语言测试：中文、日本語、한국어、العربية、עברית、हिन्दी、ไทย、Русский、Ελληνικά')], add_generation_prompt: true },
  { messages: [u('Emoji 👨‍👩‍👧‍👦 🇯🇵 👍🏽 and café vs cafe\u0301')], add_generation_prompt: true },
  { messages: [u('  leading and trailing spaces  ')], add_generation_prompt: true },
  { messages: [u('\n\nnewlines around\n\n')], add_generation_prompt: true },
  { messages: [u('line one\nline two\r\nline three\ttabbed')], add_generation_prompt: true },
  { messages: [u('')], add_generation_prompt: true },
  { messages: [u('   \n\t  ')], add_generation_prompt: true },
  { messages: [s('System only.')], add_generation_prompt: false },
  { messages: [s('First system.'), u('Hi'), s('A later system message.'), u('Again')], add_generation_prompt: true },
  { messages: [u('Literal tokens: <|im_start|> <|im_end|> <|eot_id|> <s> </s> <|begin_of_text|>')], add_generation_prompt: true },
  { messages: [u('Code:\n```python\ndef f(x):\n    return {"a": x}\n```\n')], add_generation_prompt: true },
  { messages: [u('{{ not a template }} {% neither %} {# nor #}')], add_generation_prompt: true },
  { messages: [u('Hi'), a('  Hello with spaces.  '), u('ok')], add_generation_prompt: false },
  { messages: [{ role: 'user', content: 'With a name field', name: 'alice' }], add_generation_prompt: true },
];

export function conversationsFor(model) {
  if (model === 'qwen3') {
    return [
      ...COMMON,
      { messages: [u('Hello!')], add_generation_prompt: true, enable_thinking: false },
      { messages: [u('Hello!')], add_generation_prompt: true, enable_thinking: true },
      { messages: [s('Be brief.'), u('2+2?'), a('4'), u('3+3?')], add_generation_prompt: true, enable_thinking: false },
      // A <think> block in history is dropped; in the turn after the last user message it stays.
      { messages: [u('2+2?'), a('<think>\nAdd two and two.\n</think>\n\n4'), u('And 3+3?')], add_generation_prompt: true },
      { messages: [u('2+2?'), a('<think>\nAdd two and two.\n</think>\n\n4')], add_generation_prompt: false },
      { messages: [u('2+2?'), a('no opening tag</think>\n\n4')], add_generation_prompt: false },
      { messages: [u('2+2?'), { role: 'assistant', content: '4', reasoning_content: 'Two plus two is four.' }], add_generation_prompt: false },
      { messages: [u('Weather in Paris?')], tools: [WEATHER_TOOL], add_generation_prompt: true },
      { messages: [s('You can call tools.'), u('Find docs about NFC.')], tools: [WEATHER_TOOL, SEARCH_TOOL], add_generation_prompt: true },
      {
        messages: [
          u('Weather in Paris?'),
          { role: 'assistant', content: '', tool_calls: [call('get_weather', { city: 'Paris', unit: 'celsius' }, 'call_1')] },
          tool('{"temperature": 21, "sky": "clear"}'),
        ],
        tools: [WEATHER_TOOL],
        add_generation_prompt: true,
      },
      {
        messages: [
          u('Weather in Paris and Tokyo?'),
          {
            role: 'assistant',
            content: 'Let me check both.',
            tool_calls: [call('get_weather', { city: 'Paris' }, 'c1'), call('get_weather', '{"city": "東京"}', 'c2')],
          },
          tool('{"temperature": 21}'),
          tool('{"temperature": 28}'),
          a('Paris is 21°C and Tokyo is 28°C.'),
        ],
        tools: [WEATHER_TOOL],
        add_generation_prompt: false,
      },
      {
        messages: [
          u('Search twice.'),
          { role: 'assistant', content: '', tool_calls: [call('search_docs', { query: 'a', limit: 2, filters: { lang: ['en'], exact: true } }, 'x')] },
          tool('[]'),
          { role: 'assistant', content: '', tool_calls: [call('search_docs', { query: 'b' }, 'y')] },
          tool('["hit"]'),
        ],
        tools: [SEARCH_TOOL],
        add_generation_prompt: true,
        enable_thinking: false,
      },
      // No messages: @huggingface/jinja reads messages[0].role as undefined (Python jinja2 raises).
      { messages: [], add_generation_prompt: true },
      { messages: [u('<tool_response>\nlooks like a tool reply\n</tool_response>'), a('ok')], add_generation_prompt: true },
    ];
  }
  if (model === 'llama3_1') {
    return [
      ...COMMON,
      // Tools are not used by this template; rendering must ignore them.
      { messages: [u('Weather in Paris?')], tools: [WEATHER_TOOL], add_generation_prompt: true },
      { messages: [u('x'), a('\t tabbed reply \n'), u(' y ')], add_generation_prompt: true },
      // trim: JavaScript's String.prototype.trim strips U+3000, U+00A0, U+2028 and U+FEFF but not
      // U+001C..U+001F or U+0085; Python's str.strip strips all but U+FEFF. This records the former.
      { messages: [u('\u3000\u00a0ideographic and nbsp\u2028\u3000'), a('\ufeffbom\ufeff'), u('\u001cfile sep\u001f\u0085')], add_generation_prompt: true },
      { messages: [{ role: 'ipython', content: '{"result": 1}' }, u('what was that?')], add_generation_prompt: true },
      { messages: [], add_generation_prompt: true },
      { messages: [u('Hello!')], add_generation_prompt: true, enable_thinking: false },
    ];
  }
  return [];
}

// Contexts the reference rejects; each must throw.
export function errorCasesFor(model) {
  if (model === 'qwen3') {
    return [
      { messages: [u(42)], add_generation_prompt: true },
      { messages: [u('Weather?'), { role: 'assistant', content: null, tool_calls: [call('get_weather', { city: 'Paris' }, 'c')] }], add_generation_prompt: false },
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'parts' }] }], add_generation_prompt: true },
    ];
  }
  if (model === 'llama3_1') {
    return [
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'parts' }] }], add_generation_prompt: true },
      { messages: [{ role: 'user', content: null }], add_generation_prompt: true },
      { messages: [{ role: 'user' }], add_generation_prompt: true },
    ];
  }
  return [];
}
