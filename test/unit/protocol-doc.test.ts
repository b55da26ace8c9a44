import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { PROTOCOL_DOC_PATH, renderProtocolDoc } from '../../scripts/protocol-doc';
import { SseParser, type SseMessage } from '@switchboard/client';
import { formatSse } from '../../src/http/sse';
import { protocolCatalog, type AckDoc, type SseDoc } from '../../src/catalogs/protocol-catalog';

interface AnyDoc {
  example: unknown;
  schema?: z.ZodType;
  ack?: AckDoc<unknown>;
}

const socketEvents = [...protocolCatalog.sockets, ...protocolCatalog.nodes].flatMap((group) =>
  Object.entries(group.events).map(([name, doc]) => ({ where: `${group.namespace} ${group.direction} ${name}`, doc: doc as AnyDoc })),
);

/** Parses SSE text with the client SDK's parser. */
function parse(text: string): SseMessage[] {
  const messages: SseMessage[] = [];
  new SseParser((message) => messages.push(message)).feed(text);
  return messages;
}

describe('docs/protocol.md', () => {
  test('is exactly what scripts/protocol-doc.ts renders from the catalog (run `npx tsx scripts/protocol-doc.ts` after changing an event)', () => {
    expect(readFileSync(PROTOCOL_DOC_PATH, 'utf8')).toBe(renderProtocolDoc());
  });

  test('documents every event of every catalog by name', () => {
    const doc = renderProtocolDoc();
    for (const { where } of socketEvents) expect(doc).toContain(`\`${where.split(' ').at(-1)}\``);
    for (const stream of Object.values(protocolCatalog.sse))
      for (const name of Object.keys(stream)) expect(doc).toContain(`#### \`${name}\``);
  });
});

describe('protocol catalog examples', () => {
  test.each(socketEvents.filter((e) => e.doc.schema).map((e) => [e.where, e.doc] as const))(
    '%s: the payload example parses with its schema',
    (_where, doc) => {
      const result = doc.schema!.safeParse(doc.example);
      expect(result.error?.issues ?? []).toEqual([]);
    },
  );

  test.each(socketEvents.filter((e) => e.doc.ack?.schemas).map((e) => [e.where, e.doc] as const))(
    '%s: every ack example parses with one of its schemas',
    (_where, doc) => {
      for (const example of doc.ack!.examples) expect(doc.ack!.schemas!.some((schema) => schema.safeParse(example).success)).toBe(true);
    },
  );

  test.each([
    ...Object.entries(protocolCatalog.websocket.client).map(([name, doc]) => [`device → server ${name}`, name, doc] as const),
    ...Object.entries(protocolCatalog.websocket.server).map(([name, doc]) => [`server → device ${name}`, name, doc] as const),
  ])(
    'plain WebSocket %s: the example is a frame of its own type, and parses with its schema as the server reads it',
    (_where, name, doc) => {
      const frame = doc as { example: { type: string }; schema?: z.ZodType };
      expect(frame.example.type).toBe(name);
      if (frame.schema) expect(frame.schema.safeParse(frame.example).success).toBe(true);
    },
  );

  test('a plain WebSocket frame in camelCase, or with a field the seed does not have, fails its schema', () => {
    const { device_hello, agent_complete } = protocolCatalog.websocket.client;
    expect(device_hello.schema.safeParse({ type: 'device_hello', deviceId: 'laptop-1', agentIds: [] }).success).toBe(false);
    expect(agent_complete.schema.safeParse({ ...agent_complete.example, files_read: 'one' }).success).toBe(false);
  });

  test('a payload that breaks a schema is caught (the check can fail)', () => {
    const hello = protocolCatalog.sockets.find((g) => g.namespace === '/device' && g.direction === 'device → server')!.events as Record<
      string,
      AnyDoc
    >;
    expect(hello.device_hello.schema!.safeParse({ ...(hello.device_hello.example as object), deviceId: 'has spaces' }).success).toBe(false);
  });

  test.each(Object.entries({ ...protocolCatalog.sse.generation }))(
    'generation SSE %s: framed by the server and parsed by the SDK, it round-trips with `type` equal to the event name',
    (name, doc) => {
      const sse = doc as SseDoc<{ type: string }>;
      const [message] = parse(formatSse({ id: sse.id, event: name, data: JSON.stringify(sse.example) }));
      expect(message).toEqual({ id: String(sse.id), event: name, data: JSON.stringify(sse.example) });
      expect(JSON.parse(message.data).type).toBe(name);
      expect(sse.id).toEqual(expect.any(Number));
      if (sse.schema) expect(sse.schema.safeParse(sse.example).error?.issues ?? []).toEqual([]);
    },
  );

  test.each(Object.entries(protocolCatalog.sse.chat))('chat SSE %s: `type` equals the event name and it round-trips', (name, doc) => {
    const [message] = parse(formatSse({ event: name, data: JSON.stringify(doc.example) }));
    expect(message.id).toBeUndefined();
    expect(JSON.parse(message.data)).toEqual(doc.example);
    expect(doc.example.type).toBe(name);
  });

  test('ticket notes SSE: a chunk is one JSON data: line whose text keeps its newlines, and done / error use their markers', () => {
    const { chunk, done, error } = protocolCatalog.sse.notes;
    const wire = formatSse({ data: chunk.example }) + formatSse({ data: done.example }) + formatSse({ data: error.example });
    const messages = parse(wire);
    expect(messages.map((m) => m.data)).toEqual([chunk.example, '[DONE]', error.example]);
    expect(wire.split('\n').filter((line) => line.startsWith('data: '))).toHaveLength(3);
    expect(JSON.parse(chunk.example)).toEqual({ type: 'chunk', text: expect.stringContaining('\n') });
    expect(error.example.startsWith('[ERROR] ')).toBe(true);
  });
});

describe('SseParser (the SDK side of the framing)', () => {
  test('handles CRLF, CR and LF line ends, a CRLF split across chunks, comments, a BOM, and retry', () => {
    const messages: SseMessage[] = [];
    const retries: number[] = [];
    const parser = new SseParser(
      (m) => messages.push(m),
      (ms) => retries.push(ms),
    );
    for (const piece of [
      '\uFEFFretry: 250\r',
      '\nid: 7\r\nevent: status\r\ndata: {"a":1}\r',
      '\n\r',
      '\n: ping\n\n',
      'data: line one\rdata: line two\n\n',
      'retry: soon\nevent: x\n\n',
    ])
      parser.feed(piece);

    expect(messages).toEqual([
      { id: '7', event: 'status', data: '{"a":1}' },
      { event: 'message', data: 'line one\nline two' },
    ]);
    expect(retries).toEqual([250]);
  });
});
