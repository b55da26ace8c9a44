import net from 'node:net';
import { trustedPeer } from '../../src/http/connection-limits';
import { startTestApp, type TestApp } from '../support/app';
import { within } from '../support/wait';
import { registerUser } from '../support/http';
import { messageText } from '../../src/demo-model/openai-compatible-server';

let release!: () => void;
const held = new Promise<void>((resolve) => (release = resolve));

/** A raw TCP client: what it received, and when the server closed the connection. */
function rawClient(port: number, localAddress: string) {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  return { socket, connected, closed, received: () => received };
}

/**
 * Slow clients at the edge of the API: a body trickled to an unauthenticated route is cut at the
 * request deadline (408, connection closed), and one address cannot hold more than its share of
 * connections (429 `too_many_connections`). The deadline and the cap are set small here so the
 * suite is fast; the defaults (60 s, 256) are the same code.
 */
describe('security: slow request bodies and connections per address', () => {
  let t: TestApp;
  let port: number;
  const REQUEST_TIMEOUT_MS = 1_500;
  const MAX_PER_IP = 6;
  const clients: Array<ReturnType<typeof rawClient>> = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: { HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), HTTP_MAX_CONNECTIONS_PER_IP: String(MAX_PER_IP) },
      responder: async (req) => {
        if (req.messages.some((m) => messageText(m).includes('hold-stream'))) await held;
        return { text: 'the whole answer' };
      },
    });
    port = Number(new URL(t.url).port);
  }, 120_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
  });

  afterAll(async () => {
    release();
    await t.stop();
  }, 60_000);

  /** Slow clients come from one loopback address, the connection cap's from another: the suite's own fetches use 127.0.0.1. */
  const open = (localAddress = '127.0.0.2') => {
    const client = rawClient(port, localAddress);
    clients.push(client);
    return client;
  };

  test('a login body trickled one byte at a time is cut at the request deadline with 408, by a client that keeps sending', async () => {
    const slow = open();
    await slow.connected;
    const started = Date.now();
    slow.socket.write(
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n' +
        `{"email":"${'a'.repeat(9_000)}`,
    );
    // One byte every 100 ms: each is progress, so only a deadline on the whole request stops it.
    const trickle = setInterval(() => slow.socket.writable && slow.socket.write('a'), 100);
    try {
      const closedAt = await within(slow.closed, REQUEST_TIMEOUT_MS * 4, 'the slow connection to close');
      expect(closedAt - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect(closedAt - started).toBeLessThan(REQUEST_TIMEOUT_MS * 3);
      expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
    }
    // The server is none the worse: a complete request right after is answered.
    const health = await fetch(`${t.url}/healthz`);
    expect(health.status).toBe(200);
  }, 30_000);

  test('headers that never end are cut the same way', async () => {
    const slow = open();
    await slow.connected;
    slow.socket.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n');
    const trickle = setInterval(() => slow.socket.writable && slow.socket.write('X-Slow: 1\r\n'), 100);
    try {
      await within(slow.closed, REQUEST_TIMEOUT_MS * 4, 'the connection with endless headers to close');
    } finally {
      clearInterval(trickle);
    }
  }, 30_000);

  test('an open stream outlives the request deadline: the deadline is on receiving the request only', async () => {
    const user = await registerUser(t.api, 'Streamer');
    const response = await fetch(`${t.api}/chat/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'hold-stream please', tools: 'none' }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = (async () => {
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
      return text;
    })();
    // A slow request opened after the stream is cut: the deadline has passed for the stream too.
    const slow = open();
    await slow.connected;
    slow.socket.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{');
    await within(slow.closed, REQUEST_TIMEOUT_MS * 4, 'the slow request to be cut');
    release();
    const text = await within(body, 10_000, 'the stream to end');
    expect(text).toContain('event: final');
    expect(text).toContain('the whole answer');
  }, 30_000);

  test(`one address holds at most ${MAX_PER_IP} connections: one more is answered 429 and closed; a freed slot is reusable`, async () => {
    const capped = () => open('127.0.0.3');
    const held = Array.from({ length: MAX_PER_IP }, () => capped());
    await Promise.all(held.map((client) => client.connected));
    const extra = capped();
    await within(extra.closed, 5_000, 'the connection past the cap to be closed');
    expect(extra.received()).toMatch(/^HTTP\/1\.1 429 /);
    expect(extra.received()).toContain('"code":"too_many_connections"');
    // The ones within the cap still stand and are served.
    const first = held[0];
    first.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await within(new Promise<void>((resolve) => first.socket.on('data', () => resolve())), 5_000, 'an answer within the cap');
    expect(first.received()).toMatch(/^HTTP\/1\.1 200 /);

    // A flood past the cap is refused each time and holds nothing.
    const flood = Array.from({ length: 20 }, () => capped());
    await within(Promise.all(flood.map((client) => client.closed)), 5_000, 'the flood to be refused');

    held[1].socket.destroy();
    await held[1].closed;
    // The server sees the close a moment later: retry until a new connection is served.
    let served = false;
    for (let attempt = 0; attempt < 50 && !served; attempt += 1) {
      const again = capped();
      await again.connected;
      again.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await within(
        new Promise<void>((resolve) => {
          again.socket.once('data', () => resolve());
          again.socket.once('close', () => resolve());
        }),
        5_000,
        'an answer or a refusal',
      );
      served = /^HTTP\/1\.1 200 /.test(again.received());
    }
    expect(served).toBe(true);
  }, 30_000);

  test('TRUST_PROXY peers are not counted (the proxy caps its clients), read as Express reads it', () => {
    expect(trustedPeer(false)('127.0.0.1')).toBe(false);
    expect(trustedPeer(true)('203.0.113.9')).toBe(true);
    expect(trustedPeer(1)('203.0.113.9')).toBe(true);
    expect(trustedPeer(0)('203.0.113.9')).toBe(false);
    const loopback = trustedPeer('loopback');
    expect(['127.0.0.1', '::1', '::ffff:127.0.0.1'].map(loopback)).toEqual([true, true, true]);
    expect(loopback('10.0.0.1')).toBe(false);
    const list = trustedPeer('10.0.0.0/8, 192.0.2.7, uniquelocal, fd12::/16, nonsense');
    expect(['10.1.2.3', '192.0.2.7', '172.16.0.1', 'fd12::1', '::ffff:10.9.9.9'].map(list)).toEqual([true, true, true, true, true]);
    expect(['192.0.2.8', '203.0.113.9', '2001:db8::1', 'not-an-ip'].map(list)).toEqual([false, false, false, false]);
  });
});
