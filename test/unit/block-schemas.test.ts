import { blockTools, checkToolCall, TOOL_BLOCK_TYPES } from '../../src/ai/block-tools';
import {
  BLOCK_TYPES,
  blockContentSchemas,
  blockInputSchema,
  createBlockSchema,
  MAX_BLOCK_CONTENT_CHARS,
  parseBlockContent,
  updateBlockSchema,
  type BlockType,
} from '../../src/schemas/blocks';

const validContent: Record<BlockType, Record<string, unknown>[]> = {
  text: [{ text: 'A paragraph.' }, { text: 'Line one\nline two' }],
  heading: [
    { text: 'Title', level: 1 },
    { text: 'Section', level: 2 },
    { text: 'Sub', level: 3 },
  ],
  todo: [
    { text: 'book venue', checked: false },
    { text: 'ship beta', checked: true },
  ],
  bullet_list: [{ items: ['one'] }, { items: ['one', 'two', 'three'] }],
  code: [
    { code: 'const x = 1;', language: 'ts' },
    { code: '', language: 'text' },
  ],
  quote: [{ text: 'Simplicity is prerequisite for reliability.' }],
  divider: [{}],
  image: [
    { url: 'https://example.com/cat.png', alt: 'A cat' },
    { url: 'http://127.0.0.1:8080/a.jpg?size=2', alt: '' },
  ],
};

const invalidContent: Record<BlockType, [string, unknown][]> = {
  text: [
    ['missing text', {}],
    ['empty text', { text: '' }],
    ['text not a string', { text: 42 }],
    ['unknown key', { text: 'a', bold: true }],
  ],
  heading: [
    ['missing level', { text: 'Title' }],
    ['level 0', { text: 'Title', level: 0 }],
    ['level 4', { text: 'Title', level: 4 }],
    ['fractional level', { text: 'Title', level: 1.5 }],
    ['level as a string', { text: 'Title', level: '2' }],
    ['unknown key', { text: 'Title', level: 1, anchor: 'x' }],
  ],
  todo: [
    ['missing checked', { text: 'x' }],
    ['checked as a string', { text: 'x', checked: 'false' }],
    ['empty text', { text: '', checked: false }],
    ['unknown key', { text: 'x', checked: false, due: 'tomorrow' }],
  ],
  bullet_list: [
    ['no items', { items: [] }],
    ['items not an array', { items: 'one, two' }],
    ['an empty item', { items: ['one', ''] }],
    ['a non-string item', { items: ['one', 2] }],
    ['unknown key', { items: ['one'], ordered: true }],
  ],
  code: [
    ['missing language', { code: 'x' }],
    ['empty language', { code: 'x', language: '' }],
    ['code not a string', { code: 1, language: 'ts' }],
    ['unknown key', { code: 'x', language: 'ts', theme: 'dark' }],
  ],
  quote: [
    ['missing text', { author: 'me' }],
    ['empty text', { text: '' }],
  ],
  divider: [
    ['any key', { style: 'dashed' }],
    ['not an object', 'divider'],
  ],
  image: [
    ['missing alt', { url: 'https://example.com/a.png' }],
    ['missing url', { alt: 'x' }],
    ['unknown key', { url: 'https://example.com/a.png', alt: 'x', width: 10 }],
  ],
};

const validCases = BLOCK_TYPES.flatMap((type) => validContent[type].map((content) => [type, content] as const));
const invalidCases = BLOCK_TYPES.flatMap((type) => invalidContent[type].map(([why, content]) => [type, why, content] as const));

describe('block content schemas', () => {
  test('cover exactly the eight block types', () => {
    expect([...BLOCK_TYPES].sort()).toEqual(['bullet_list', 'code', 'divider', 'heading', 'image', 'quote', 'text', 'todo']);
  });

  test.each(validCases)('given valid %s content %j, it is accepted as is', (type, content) => {
    expect(blockContentSchemas[type].parse(content)).toEqual(content);
    expect(blockInputSchema.safeParse({ type, content }).success).toBe(true);
  });

  test.each(invalidCases)('given %s content with %s, it is rejected', (type, _why, content) => {
    expect(blockContentSchemas[type].safeParse(content).success).toBe(false);
    expect(blockInputSchema.safeParse({ type, content }).success).toBe(false);
  });

  test('given content valid for another type, the discriminated union rejects it', () => {
    expect(blockInputSchema.safeParse({ type: 'heading', content: { text: 'no level' } }).success).toBe(false);
    expect(blockInputSchema.safeParse({ type: 'video', content: { url: 'https://example.com/v.mp4' } }).success).toBe(false);
  });
});

describe('image urls', () => {
  test.each(['https://example.com/a.png', 'http://example.com/a.png', 'HTTPS://EXAMPLE.COM/A.PNG'])('given %j, it is accepted', (url) => {
    expect(blockContentSchemas.image.safeParse({ url, alt: 'x' }).success).toBe(true);
  });

  test.each([
    'javascript:alert(1)',
    'JavaScript:alert(document.cookie)',
    'java\tscript:alert(1)',
    'data:image/png;base64,iVBORw0KGgo=',
    'data:text/html,<script>alert(1)</script>',
    'ftp://example.com/a.png',
    'file:///etc/passwd',
    '/images/a.png',
    'a.png',
    '//example.com/a.png',
    '',
  ])('given %j, it is rejected', (url) => {
    const result = blockContentSchemas.image.safeParse({ url, alt: 'x' });

    expect(result.success).toBe(false);
    expect(result.error?.issues[0].path).toEqual(['url']);
  });

  test('given a url longer than 2,048 characters, it is rejected', () => {
    expect(blockContentSchemas.image.safeParse({ url: `https://example.com/${'a'.repeat(2_048)}`, alt: '' }).success).toBe(false);
  });
});

describe('content size', () => {
  // `{"text":"…"}` adds 11 characters around the text.
  const textOfJsonLength = (length: number) => ({ text: 'x'.repeat(length - 11) });

  test('given content whose JSON is exactly 20,000 characters, it is accepted', () => {
    const content = textOfJsonLength(MAX_BLOCK_CONTENT_CHARS);

    expect(JSON.stringify(content)).toHaveLength(20_000);
    expect(blockInputSchema.safeParse({ type: 'text', content }).success).toBe(true);
    expect(parseBlockContent('text', content).success).toBe(true);
  });

  test('given content whose JSON is 20,001 characters, it is rejected with the limit in the message', () => {
    const content = textOfJsonLength(MAX_BLOCK_CONTENT_CHARS + 1);

    const result = blockInputSchema.safeParse({ type: 'text', content });

    expect(result.success).toBe(false);
    expect(result.error?.issues[0].message).toContain('20000');
    expect(parseBlockContent('text', content).success).toBe(false);
  });

  test('given a list of small items that adds up to more than 20,000 characters, it is rejected as a whole', () => {
    const content = { items: Array.from({ length: 20 }, () => 'y'.repeat(1_500)) };

    expect(blockContentSchemas.bullet_list.safeParse(content).success).toBe(true);
    expect(blockInputSchema.safeParse({ type: 'bullet_list', content }).success).toBe(false);
    expect(parseBlockContent('bullet_list', content)).toMatchObject({ success: false, error: { issues: [{ path: ['content'] }] } });
  });

  test('given a single text field over 20,000 characters, the field itself is rejected', () => {
    expect(blockContentSchemas.text.safeParse({ text: 'z'.repeat(20_001) }).success).toBe(false);
  });
});

describe('create and update bodies', () => {
  test('given afterId that is not a uuid, a create body is rejected', () => {
    expect(createBlockSchema.safeParse({ type: 'divider', content: {}, afterId: 'first' }).success).toBe(false);
    expect(createBlockSchema.safeParse({ type: 'divider', content: {}, afterId: '7d1f0c2e-6a39-4c9b-9c1a-2f4f7f0e8b11' }).success).toBe(
      true,
    );
  });

  test('given an empty patch or an unknown key, an update body is rejected', () => {
    expect(updateBlockSchema.safeParse({}).success).toBe(false);
    expect(updateBlockSchema.safeParse({ type: 'text' }).success).toBe(false);
    expect(updateBlockSchema.safeParse({ afterId: null }).success).toBe(true);
  });
});

describe('checkToolCall', () => {
  const validArgs: Record<BlockType, Record<string, unknown>> = {
    text: validContent.text[0],
    heading: validContent.heading[0],
    todo: validContent.todo[0],
    bullet_list: validContent.bullet_list[1],
    code: validContent.code[0],
    quote: validContent.quote[0],
    divider: {},
    image: validContent.image[0],
  };

  test.each(Object.entries(TOOL_BLOCK_TYPES))('given %s with valid arguments, it yields a %s block', (name, type) => {
    expect(checkToolCall(name, validArgs[type])).toEqual({ ok: true, block: { type, content: validArgs[type] } });
  });

  test('given arguments as a JSON string, they are parsed', () => {
    expect(checkToolCall('create_heading', '{"text":"Plan","level":2}')).toEqual({
      ok: true,
      block: { type: 'heading', content: { text: 'Plan', level: 2 } },
    });
  });

  test('given an empty argument string for a divider, it counts as no arguments', () => {
    expect(checkToolCall('create_divider', '  ')).toEqual({ ok: true, block: { type: 'divider', content: {} } });
  });

  test.each([['create_video'], ['text'], [''], [undefined]])('given the unknown tool %j, it says which tools exist', (name) => {
    const result = checkToolCall(name, { text: 'x' });

    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/^Unknown tool/);
    expect(!result.ok && result.error).toContain('create_text');
  });

  test.each(['{text: "unquoted"}', '{"text": "cut off', 'null, 1'])(
    'given the invalid JSON %j, it says the arguments are not JSON',
    (raw) => {
      expect(checkToolCall('create_text', raw)).toEqual({ ok: false, error: 'Arguments are not valid JSON.' });
    },
  );

  test.each([
    ['create_heading', { text: 'Title', level: 7 }, 'level'],
    ['create_todo', { text: 'x' }, 'checked'],
    ['create_image', { url: 'javascript:alert(1)', alt: 'x' }, 'url'],
    ['create_bullet_list', { items: [] }, 'items'],
    ['create_text', { text: 'x', bold: true }, 'bold'],
  ])('given %s with wrong arguments %j, the message names %s', (name, args, field) => {
    const result = checkToolCall(name, args);

    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toContain(`Invalid arguments for ${name}`);
    expect(!result.ok && result.error).toContain(field);
  });

  test('given arguments that pass the field checks but exceed 20,000 characters as JSON, the block is refused', () => {
    const result = checkToolCall('create_bullet_list', { items: Array.from({ length: 20 }, () => 'y'.repeat(1_500)) });

    expect(result).toEqual({ ok: false, error: expect.stringContaining('too large') });
  });
});

describe('blockTools', () => {
  test('are exactly the eight create_* tools', () => {
    expect(blockTools.map((tool) => tool.name).sort()).toEqual([
      'create_bullet_list',
      'create_code',
      'create_divider',
      'create_heading',
      'create_image',
      'create_quote',
      'create_text',
      'create_todo',
    ]);
  });

  test.each(blockTools.map((tool) => [tool.name, tool] as const))(
    '%s takes the block content schema of its type as its argument schema',
    (name, tool) => {
      expect(tool.schema).toBe(blockContentSchemas[TOOL_BLOCK_TYPES[name]]);
      expect(tool.description.length).toBeGreaterThan(0);
    },
  );

  test('given arguments that break the schema, LangChain refuses to run the tool', async () => {
    const heading = blockTools.find((tool) => tool.name === 'create_heading')!;

    await expect(heading.invoke({ text: 'Title', level: 2 })).resolves.toBe('created heading');
    await expect(heading.invoke({ text: 'Title', level: 9 })).rejects.toThrow(/did not match expected schema/);
  });
});
