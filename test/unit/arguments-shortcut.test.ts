import { ArgumentsDelta, ArgumentsShortcut, argumentsOnly } from '../../src/ai/arguments-shortcut';

/** One chunk's data as OpenAI-compatible providers stream it. */
const chunkData = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}, finish: string | null = null) =>
  JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  });
const argumentsData = (index: number, text: string, extra: Record<string, unknown> = {}) =>
  chunkData({ tool_calls: [{ index, function: { arguments: text } }] }, extra);
const openingData = (index: number) =>
  chunkData({ tool_calls: [{ index, id: `call_${index}`, type: 'function', function: { name: 'create_text', arguments: '' } }] });

/** What each chunk does, read as the reader reads it: the shortcut first, else a parse (which it learns from). */
function throughShortcut(datas: string[]): { effects: unknown[]; shortcuts: number } {
  const shortcut = new ArgumentsShortcut();
  let shortcuts = 0;
  const effects = datas.map((data) => {
    const matched = shortcut.match(data);
    if (matched) {
      shortcuts += 1;
      return matched;
    }
    const chunk: unknown = JSON.parse(data);
    shortcut.learn(data, chunk);
    return argumentsOnly(chunk) ?? chunk;
  });
  return { effects, shortcuts };
}

/** The same, every chunk parsed. */
const parsedEach = (datas: string[]) =>
  datas.map((data) => {
    const chunk: unknown = JSON.parse(data);
    return argumentsOnly(chunk) ?? chunk;
  });

/** `text` cut every `size` characters (a surrogate pair may be cut in two: each half is then an escape of its own in the chunk). */
const pieces = (text: string, size: number) =>
  Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

describe('ArgumentsShortcut: tool call arguments read without a parse', () => {
  const tricky = [
    'plain words, and more of them',
    'quotes " and \\ backslashes, / slashes, a tab\t, a newline\n and a NUL \u0000',
    'accents é ü, CJK 世界, an emoji 😀 and a lone surrogate \ud800 then text',
    '} ] { [ , : and "arguments":"inside" the text',
  ];

  test.each(tricky)(
    'a call streamed in deltas of 1 to 5 characters: every delta after the first is read without a parse, as a parse reads it (%#)',
    (text) => {
      const args = JSON.stringify({ text });
      for (const size of [1, 2, 3, 4, 5]) {
        const datas = [openingData(0), ...pieces(args, size).map((piece) => argumentsData(0, piece))];
        const { effects, shortcuts } = throughShortcut(datas);
        expect(effects).toEqual(parsedEach(datas));
        // The opening chunk and the first delta are parsed (the first delta teaches the template).
        expect(shortcuts).toBe(datas.length - 2);
        const joined = effects.slice(1).map((effect) => (effect as ArgumentsDelta).text);
        expect(JSON.parse(joined.join(''))).toEqual({ text });
      }
    },
  );

  test('the halves of a surrogate pair in two chunks (each a lone surrogate escape) join into the character', () => {
    const datas = [
      openingData(0),
      argumentsData(0, '{"text":"'),
      argumentsData(0, '\ud83d'),
      argumentsData(0, '\ude00'),
      argumentsData(0, '"}'),
    ];
    expect(datas[2]).toContain('\\ud83d');
    const { effects, shortcuts } = throughShortcut(datas);
    expect(shortcuts).toBe(3);
    expect(effects.slice(1).map((effect) => (effect as ArgumentsDelta).text)).toEqual(['{"text":"', '\ud83d', '\ude00', '"}']);
  });

  test('calls one after another: each call learns its own template; other chunks are parsed in full', () => {
    const datas = [
      chunkData({ role: 'assistant', content: '' }),
      openingData(0),
      argumentsData(0, '{"te'),
      argumentsData(0, 'xt":'),
      argumentsData(0, '"a"}'),
      openingData(1),
      argumentsData(1, '{"te'),
      argumentsData(1, 'xt":'),
      // Same shape as the template but more than arguments: each one is parsed, and means what it says.
      chunkData({ tool_calls: [{ index: 1, function: { arguments: '"b' } }] }, {}, 'length'),
      chunkData({ tool_calls: [{ index: 1, function: { arguments: '"b' } }] }, { usage: { prompt_tokens: 1, completion_tokens: 2 } }),
      chunkData({ content: 'text', tool_calls: [{ index: 1, function: { arguments: '"b' } }] }),
      chunkData({ reasoning_content: 'why', tool_calls: [{ index: 1, function: { arguments: '"b' } }] }),
      chunkData({ tool_calls: [{ index: 1, id: 'call_9', function: { arguments: '"b' } }] }),
      chunkData({ tool_calls: [{ index: 1, function: { name: 'create_todo', arguments: '"b' } }] }),
      chunkData({ tool_calls: [{ index: 1, extra_content: { google: { thought_signature: 's' } }, function: { arguments: '"b' } }] }),
      argumentsData(1, '"c"}'),
    ];
    const { effects, shortcuts } = throughShortcut(datas);
    expect(effects).toEqual(parsedEach(datas));
    // Shortcuts: call 0's 2nd and 3rd deltas, call 1's 2nd, and call 1's last after the detours.
    expect(shortcuts).toBe(4);
    for (const at of [8, 9, 10, 11, 12, 13, 14]) expect(effects[at]).not.toBeInstanceOf(ArgumentsDelta);
  });

  test('text that fits the template around something other than a string inside is never taken for a delta', () => {
    const shortcut = new ArgumentsShortcut();
    const taught = argumentsData(0, 'ab');
    shortcut.learn(taught, JSON.parse(taught));
    const template = argumentsData(0, '\u0001');
    const [start, end] = template.split('\\u0001');
    expect(shortcut.match(`${start}cd${end}`)).toEqual(new ArgumentsDelta(0, 'cd'));
    const others = [
      // A quote closes the string early: this is another key (a name), valid JSON.
      `${start}x","name":"create_todo${end}`,
      // A backslash escapes the closing quote.
      `${start}x\\${end}`,
      // A raw control character (JSON requires it escaped) and an escape JSON does not have.
      `${start}a\tb${end}`,
      `${start}a\\qb${end}`,
    ];
    for (const data of others) expect(shortcut.match(data)).toBeUndefined();
    expect(argumentsOnly(JSON.parse(others[0]))).toBeUndefined();
    for (const data of others.slice(1)) expect(() => JSON.parse(data)).toThrow(SyntaxError);
  });

  test('a key and value written with spaces are learned too', () => {
    const spaced = (text: string) =>
      `{"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 4, "function": {"arguments": ${JSON.stringify(text)}}}]}, "finish_reason": null}]}`;
    const { effects, shortcuts } = throughShortcut([spaced('{"a'), spaced('":1'), spaced('}')]);
    expect(shortcuts).toBe(2);
    expect(effects).toEqual([new ArgumentsDelta(4, '{"a'), new ArgumentsDelta(4, '":1'), new ArgumentsDelta(4, '}')]);
  });

  test('chunks that all differ elsewhere (a random field per chunk) are parsed, and after a few unused templates the stream stops learning', () => {
    const datas = Array.from({ length: 12 }, (_, i) => argumentsData(0, 'ab', { obfuscation: 'x'.repeat(i + 1) }));
    // The same chunk again and again: a template would fit it, but none is learned any more.
    datas.push(...Array.from({ length: 4 }, () => argumentsData(0, 'cd', { obfuscation: 'fixed' })));
    const { effects, shortcuts } = throughShortcut(datas);
    expect(effects).toEqual(parsedEach(datas));
    expect(shortcuts).toBe(0);
  });

  test('whatever the middle, a delta taken without a parse is exactly what a parse of the chunk gives', () => {
    const alphabet = [
      'a',
      ' ',
      '"',
      '\\',
      '\\"',
      '\\\\',
      '\\n',
      '\\u00e9',
      '\\ud800',
      '\\u',
      '\\x',
      '\t',
      'é',
      '😀',
      '}',
      ',"name":"x',
      '\u2028',
    ];
    let seed = 11;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const shortcut = new ArgumentsShortcut();
    const taught = argumentsData(3, 'seed');
    shortcut.learn(taught, JSON.parse(taught));
    const [start, end] = argumentsData(3, '\u0001').split('\\u0001');
    let taken = 0;
    for (let n = 0; n < 3_000; n += 1) {
      let middle = '';
      for (let i = 0, length = random(6); i < length; i += 1) middle += alphabet[random(alphabet.length)];
      const data = start + middle + end;
      const delta = shortcut.match(data);
      if (!delta) continue;
      taken += 1;
      expect(argumentsOnly(JSON.parse(data))).toEqual(delta);
    }
    expect(taken).toBeGreaterThan(300);
  });
});
