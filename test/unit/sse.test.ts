import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { formatSse, lastEventSeq, storedEventMessage } from '../../src/http/sse';

/** What a browser's EventSource would see for `stream`: its messages and any retry hint. */
function parse(stream: string): { messages: EventSourceMessage[]; retries: number[] } {
  const messages: EventSourceMessage[] = [];
  const retries: number[] = [];
  const parser = createParser({ onEvent: (message) => messages.push(message), onRetry: (ms) => retries.push(ms) });
  parser.feed(stream);
  return { messages, retries };
}

describe('formatSse', () => {
  test('given id, event and JSON data, it writes one message ending in a blank line', () => {
    const data = JSON.stringify({ type: 'status', generationId: 'g1', stage: 'queued' });

    expect(formatSse({ id: 7, event: 'status', data })).toBe(`id: 7\nevent: status\ndata: ${data}\n\n`);
  });

  test('given id, event and data, a real SSE parser reads back the same three fields', () => {
    const data = JSON.stringify({ type: 'complete', blocks: [] });

    const { messages } = parse(formatSse({ id: '12', event: 'complete', data }));

    expect(messages).toEqual([{ id: '12', event: 'complete', data }]);
  });

  test('given no id or event, only data is written and the parser sees a default message', () => {
    expect(formatSse({ data: 'ping' })).toBe('data: ping\n\n');
    expect(parse(formatSse({ data: 'ping' })).messages).toEqual([{ id: undefined, event: undefined, data: 'ping' }]);
  });

  test('given several messages in a row, the parser splits them exactly', () => {
    const stream = [1, 2, 3].map((seq) => formatSse({ id: seq, event: 'tool_output', data: `{"index":${seq}}` })).join('');

    expect(parse(stream).messages.map((message) => [message.id, message.data])).toEqual([
      ['1', '{"index":1}'],
      ['2', '{"index":2}'],
      ['3', '{"index":3}'],
    ]);
  });

  test('given data with \\n line breaks, each line gets its own data: field and the parser joins them back', () => {
    const data = 'first line\nsecond line\n\nfourth after a blank';

    const stream = formatSse({ event: 'note', data });

    expect(stream).toBe('event: note\ndata: first line\ndata: second line\ndata: \ndata: fourth after a blank\n\n');
    expect(parse(stream).messages).toEqual([{ id: undefined, event: 'note', data }]);
  });

  test.each([
    ['\\r\\n', 'alpha\r\nbeta\r\ngamma'],
    ['\\r', 'alpha\rbeta\rgamma'],
    ['mixed', 'alpha\r\nbeta\rgamma'],
  ])('given data with %s line breaks, the parser joins the lines with \\n (SSE cannot carry a raw CR)', (_kind, data) => {
    const stream = formatSse({ data });

    expect(stream).toBe('data: alpha\ndata: beta\ndata: gamma\n\n');
    expect(parse(stream).messages.map((message) => message.data)).toEqual(['alpha\nbeta\ngamma']);
  });

  test('given data that looks like SSE fields and message ends, it stays data of one message', () => {
    const data = 'hello\n\nevent: evil\nid: 999\nretry: 1\n\ndata: forged\n: comment';

    const { messages, retries } = parse(formatSse({ id: 3, event: 'status', data }));

    expect(messages).toEqual([{ id: '3', event: 'status', data }]);
    expect(retries).toEqual([]);
  });

  test('given data lines that start with spaces or a colon, they survive the round trip', () => {
    const data = '  indented\n:not a comment\n\ttabbed';

    expect(parse(formatSse({ data })).messages[0].data).toBe(data);
  });

  test('given an id with newlines, it cannot inject fields or split the message', () => {
    const { messages, retries } = parse(formatSse({ id: '5\ndata: injected\n\nretry: 1', event: 'status', data: 'real' }));

    expect(messages).toHaveLength(1);
    expect(messages[0].data).toBe('real');
    expect(messages[0].event).toBe('status');
    expect(messages[0].id).not.toBe('5');
    expect(retries).toEqual([]);
  });

  test('given an event name with \\r or \\n, it cannot inject fields or split the message', () => {
    const { messages } = parse(formatSse({ id: 1, event: 'status\r\nid: 99\n\ndata: forged', data: 'real' }));

    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ id: '1', data: 'real' });
    expect(messages[0].event).not.toBe('status');
  });

  test('given retry, it writes a retry field that the parser reports as the reconnection delay', () => {
    const stream = formatSse({ retry: 3_000, id: 1, event: 'status', data: '{}' });

    expect(stream.startsWith('retry: 3000\n')).toBe(true);
    expect(parse(stream)).toEqual({ messages: [{ id: '1', event: 'status', data: '{}' }], retries: [3_000] });
  });
});

describe('lastEventSeq', () => {
  test.each([
    ['1', 1],
    ['42', 42],
    [' 7 ', 7],
    ['007', 7],
    ['999999999999', 999_999_999_999],
  ])('given Last-Event-ID %j, it resumes after %d', (header, seq) => {
    expect(lastEventSeq(header)).toBe(seq);
  });

  test.each([undefined, '', '   ', '0', 'abc', '-1', '1.5', '1e3', '12abc', '0x10', '9999999999999', '1 2'])(
    'given Last-Event-ID %j, it replays from the start (0)',
    (header) => {
      expect(lastEventSeq(header)).toBe(0);
    },
  );
});

describe('storedEventMessage', () => {
  const events = [
    {
      type: 'tool_output',
      generationId: 'g1',
      index: 3,
      block: { type: 'text', content: { text: 'line one\nline two \u2028 "quoted" \\' } },
    },
    { type: 'complete', generationId: 'g1', blocks: [{ id: 'b1', content: { text: 'lone \ud800 surrogate' } }], truncated: false },
    { type: 'status', generationId: 'g1', stage: 'queued' },
  ];

  test.each(events)('given a stored $type event, it reads back as the same SSE message a parse and a re-encode would give', (event) => {
    const stored = JSON.stringify(event);

    const message = storedEventMessage(9, stored);

    expect(message).toEqual({ id: 9, event: event.type, data: JSON.stringify(JSON.parse(stored)) });
    expect(parse(formatSse(message)).messages).toEqual([{ id: '9', event: event.type, data: stored }]);
  });

  test('given an event whose writer did not put its type first, the type is read by a full parse', () => {
    const stored = JSON.stringify({ generationId: 'g1', type: 'error', code: 'x', message: 'has "type":"status" inside' });

    expect(storedEventMessage(2, stored).event).toBe('error');
  });

  test('given a type field that is not a plain name at the start, the full parse decides', () => {
    const stored = '{"type":"odd\\"name","generationId":"g1"}';

    expect(storedEventMessage(1, stored).event).toBe('odd"name');
  });
});
