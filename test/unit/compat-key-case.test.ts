import { createParser } from 'eventsource-parser';
import {
  camelKey,
  isCamelKey,
  isSnakeKey,
  snakeKey,
  toCamelKeys,
  toSnakeKeys,
  usesCamelCase,
  usesSnakeCase,
  withSnakeTwins,
} from '../../src/http/compat/key-case';
import { notesDialect } from '../../src/http/compat/notes-dialect';
import { mapSource, parseSseText } from '../../src/http/compat/sse-dialect';
import { formatSse, type SseMessage } from '../../src/http/sse';
import type { SseSource } from '../../src/http/sse-streams';
import { StreamAbort } from '../../src/lib/stream-signal';

describe('compatibility edge: key case', () => {
  test.each([
    ['device_id', 'deviceId'],
    ['filter_config', 'filterConfig'],
    ['items_processed', 'itemsProcessed'],
    ['schedule_cron', 'scheduleCron'],
    ['x_1', 'x1'],
    ['plain', 'plain'],
    ['alreadyCamel', 'alreadyCamel'],
    ['_private', '_private'],
  ])('camelKey(%s) is %s', (snake, camel) => {
    expect(camelKey(snake)).toBe(camel);
  });

  test.each([
    ['deviceId', 'device_id'],
    ['generationSessionId', 'generation_session_id'],
    ['itemsProcessed', 'items_processed'],
    ['plain', 'plain'],
    ['sessionID', 'session_id'],
    ['already_snake', 'already_snake'],
  ])('snakeKey(%s) is %s', (camel, snake) => {
    expect(snakeKey(camel)).toBe(snake);
  });

  test('given nested objects and arrays, every key is renamed and no value changes', () => {
    const snake = {
      device_id: 'laptop_1',
      directory_paths: ['/home/a_b'],
      filter_config: { date_range: { from: '2026-01-01', to: null }, senders: ['a_b@example.com'] },
      runs: [{ items_processed: 3, items_created: 1 }],
    };
    const camel = toCamelKeys(snake);
    expect(camel).toEqual({
      deviceId: 'laptop_1',
      directoryPaths: ['/home/a_b'],
      filterConfig: { dateRange: { from: '2026-01-01', to: null }, senders: ['a_b@example.com'] },
      runs: [{ itemsProcessed: 3, itemsCreated: 1 }],
    });
    expect(toSnakeKeys(camel)).toEqual(snake);
  });

  test("given the user's own data (context, input, a tool's parameters, a block's content, a JSON Schema), its keys pass unchanged", () => {
    const body = {
      session_id: 's',
      context: { open_file: 'a.ts', cursorLine: 3 },
      input: { ticket_id: 7 },
      parameters: { file_path: '/x' },
      content: { text: 'hi', some_key: 1 },
      config_schema: { type: 'object', additionalProperties: false, properties: { directoryPaths: {} } },
    };
    const camel = toCamelKeys(body) as Record<string, unknown>;
    expect(camel).toEqual({
      sessionId: 's',
      context: { open_file: 'a.ts', cursorLine: 3 },
      input: { ticket_id: 7 },
      parameters: { file_path: '/x' },
      content: { text: 'hi', some_key: 1 },
      configSchema: { type: 'object', additionalProperties: false, properties: { directoryPaths: {} } },
    });
    expect(toSnakeKeys(camel)).toEqual(body);
  });

  test('given one field in two spellings, the clash is reported and the first spelling kept', () => {
    const clashes: string[] = [];
    expect(toCamelKeys({ device_id: 'a', deviceId: 'b', nested: { date_range: 1, dateRange: 2 } }, clashes)).toEqual({
      deviceId: 'a',
      nested: { dateRange: 1 },
    });
    expect(clashes).toEqual(['deviceId', 'nested.dateRange']);
  });

  test('a request speaks snake_case when any key outside the opaque fields is snake_case', () => {
    expect(isSnakeKey('device_id')).toBe(true);
    expect(isSnakeKey('deviceId')).toBe(false);
    expect(isSnakeKey('name')).toBe(false);
    expect(usesSnakeCase({ name: 'a', filter_config: {} })).toBe(true);
    expect(usesSnakeCase({ name: 'a', filterConfig: { date_range: {} } })).toBe(true);
    expect(usesSnakeCase({ name: 'a', deviceId: 'x', context: { open_file: 'a' } })).toBe(false);
    expect(usesSnakeCase([{ a: 1 }, { b_c: 1 }])).toBe(true);
    expect(usesSnakeCase('device_id')).toBe(false);
    expect(usesSnakeCase(undefined)).toBe(false);
    // A parsed query string has no prototype.
    expect(usesSnakeCase(Object.assign(Object.create(null), { agent_id: '1' }))).toBe(true);
  });

  test('a request speaks camelCase when any key outside the opaque fields is camelCase; one-word keys say neither', () => {
    expect(isCamelKey('agentId')).toBe(true);
    expect(isCamelKey('nextCursor')).toBe(true);
    expect(isCamelKey('limit')).toBe(false);
    expect(isCamelKey('agent_id')).toBe(false);
    expect(usesCamelCase(Object.assign(Object.create(null), { agentId: '1', page: '1' }))).toBe(true);
    expect(usesCamelCase(Object.assign(Object.create(null), { page: '1', limit: '5' }))).toBe(false);
    expect(usesCamelCase({ name: 'a', context: { openFile: 'a' } })).toBe(false);
    expect(usesCamelCase({ name: 'a', filter: { dateRange: {} } })).toBe(true);
    expect(usesCamelCase(undefined)).toBe(false);
  });

  test('snake_case twins sit beside each camelCase key, with the same value, outside the opaque fields', () => {
    const schema = { type: 'object', additionalProperties: false };
    const answer = withSnakeTwins({
      agents: [{ deviceId: 'laptop', filterConfig: { dateRange: { from: '2026-01-01' } }, configSchema: schema, name: 'n' }],
      nextCursor: null,
    });
    expect(answer).toEqual({
      agents: [
        {
          deviceId: 'laptop',
          device_id: 'laptop',
          filterConfig: { dateRange: { from: '2026-01-01' }, date_range: { from: '2026-01-01' } },
          filter_config: { dateRange: { from: '2026-01-01' }, date_range: { from: '2026-01-01' } },
          configSchema: schema,
          config_schema: schema,
          name: 'n',
        },
      ],
      nextCursor: null,
      next_cursor: null,
    });
    // A key already there in snake_case is not replaced by a twin.
    expect(withSnakeTwins({ deviceId: 'a', device_id: 'b' })).toEqual({ deviceId: 'a', device_id: 'b' });
    expect(withSnakeTwins('deviceId')).toBe('deviceId');
  });

  test('a value that is not a plain object (a date, a buffer) passes as it is', () => {
    const at = new Date(0);
    expect(toSnakeKeys({ createdAt: at })).toEqual({ created_at: at });
  });
});

/** What a reader that splits the body on `\n` and appends each `data: ` line's rest shows (the notes client's own loop). */
function splitOnNewlineReader(wire: string): string {
  let text = '';
  for (const line of wire.split('\n')) if (line.startsWith('data: ') && line.slice(6) !== '[DONE]') text += line.slice(6);
  return text;
}

/** What an EventSource shows: each message's data (lines joined with `\n`), appended. */
function eventSourceReader(wire: string): string {
  let text = '';
  const parser = createParser({ onEvent: (event) => void (event.data !== '[DONE]' && (text += event.data)) });
  parser.feed(wire);
  return text;
}

describe('compatibility edge: the notes dialect', () => {
  const chunks = [
    '## Problem Summary\nWifi ',
    'drops every few minutes.\n\n## Steps Taken\n- Restarted the router\n',
    '- Checked the cable\n\n',
    'Done.',
  ];
  const notes = chunks.join('');
  const wire =
    chunks.map((text) => formatSse(notesDialect({ data: JSON.stringify({ type: 'chunk', text }) }))).join('') + 'data: [DONE]\n\n';

  test('an EventSource reader gets the notes back exactly', () => {
    expect(eventSourceReader(wire)).toBe(notes);
  });

  test('a reader splitting on \\n gets the same lines, each ended by \\r (a CommonMark line ending)', () => {
    const seen = splitOnNewlineReader(wire);
    expect(seen).not.toContain('{"type"');
    expect(seen.split(/\r\n|\r|\n/)).toEqual(notes.split('\n'));
  });

  test('[DONE] and [ERROR] messages pass as they are', () => {
    expect(notesDialect({ data: '[DONE]' })).toEqual({ data: '[DONE]' });
    expect(notesDialect({ data: '[ERROR] boom' })).toEqual({ data: '[ERROR] boom' });
  });

  test('parseSseText reads back what formatSse wrote, comments kept whole', () => {
    const messages: SseMessage[] = [{ id: 3, event: 'complete', data: '{"a":1}' }, { data: 'two\nlines' }];
    const parsed = parseSseText(messages.map(formatSse).join('') + ': ping\n\n');
    expect(parsed).toEqual([{ id: '3', event: 'complete', data: '{"a":1}' }, { data: 'two\nlines' }, { data: '', wire: ': ping\n\n' }]);
  });

  test("mapSource maps what a source yields, what it pushes live and what follows its live phase, and leaves the shared frames' bytes alone", async () => {
    const liveFrame = { bytes: Buffer.from(formatSse({ data: '{"type":"chunk","text":"b\\nc"}' })), terminal: false };
    const before = liveFrame.bytes.toString();
    const pushed: string[] = [];
    const source: SseSource = {
      async *messages(_signal, push) {
        yield { data: JSON.stringify({ type: 'chunk', text: 'a\n' }) };
        push!([liveFrame]);
        return {
          live: { start: () => undefined } as never,
          after: async function* () {
            yield { data: '[DONE]' };
          },
        };
      },
      interrupted: { data: '[ERROR] interrupted' },
    };
    const mapped = mapSource(source, notesDialect);
    const generator = mapped.messages(new StreamAbort().signal, (frames) => frames.forEach((frame) => pushed.push(frame.bytes.toString())));
    const first = await generator.next();
    expect(formatSse(first.value as SseMessage)).toBe('data: a\r\ndata: \n\n');
    const handoff = await generator.next();
    expect(pushed).toEqual(['data: b\r\ndata: c\n\n']);
    expect(liveFrame.bytes.toString()).toBe(before);
    const after = (handoff.value as { after: () => AsyncGenerator<SseMessage> }).after();
    expect((await after.next()).value).toEqual({ data: '[DONE]' });
    expect(mapped.interrupted).toEqual({ data: '[ERROR] interrupted' });
  });
});

describe('key renaming against hostile and stored keys', () => {
  test('a __proto__ key stays an own key and never becomes the prototype', () => {
    const body = JSON.parse('{"device_id":"d1","__proto__":{"is_admin":true}}') as unknown;
    const camel = toCamelKeys(body) as Record<string, unknown>;
    expect(Object.getPrototypeOf(camel)).toBe(Object.prototype);
    expect(Object.hasOwn(camel, '__proto__')).toBe(true);
    expect((camel as { isAdmin?: unknown }).isAdmin).toBeUndefined();
    expect(Object.keys(camel)).toEqual(['deviceId', '__proto__']);
  });

  test("a flow's definition keeps the user's own keys both ways", () => {
    const flow = { flowId: 'f1', definition: { nodes: [{ id: 'n1', outputSchema: { my_field: 1 } }], my_var: 'x' } };
    expect(toSnakeKeys(flow)).toEqual({ flow_id: 'f1', definition: flow.definition });
    expect(toCamelKeys({ flow_id: 'f1', definition: flow.definition })).toEqual(flow);
  });
});
