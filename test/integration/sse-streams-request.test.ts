import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import express, { type Request, type Response } from 'express';
import { SseStreams } from '../../src/http/sse-streams';
import { createLogger } from '../../src/lib/logger';
import { createRedis, type RedisClient } from '../../src/lib/redis';
import type { LiveEnd } from '../../src/lib/redis-streams';
import { currentRequestOrigin, withRequestOrigin, type RequestOrigin } from '../../src/lib/request-origin';
import { testRedisTarget } from '../support/database';
import { waitUntil } from '../support/wait';

/**
 * What an open event stream keeps of its request (the ≤ 20 KB per stream target): once the stream is
 * open the request's headers are dropped (the bearer token with them), and so are the user, the
 * params and the per-request URL and locals (the route template stays), while the stream itself
 * keeps working: messages reach the client as valid chunked HTTP, and a client that leaves frees
 * its slot.
 */
describe('SseStreams: an open stream forgets its request headers', () => {
  const TOKEN = `secret-${randomUUID()}`;
  let server: Server;
  let redis: RedisClient;
  let streams: SseStreams;
  let client: Socket | undefined;
  let held: { req: Request; res: Response; push(): void; ended: boolean } | undefined;
  let live: { originInPrepare?: RequestOrigin | null; originInLive?: RequestOrigin | null; end?: LiveEnd };

  beforeEach(async () => {
    live = {};
    redis = createRedis(testRedisTarget('realtime'), 'blocking');
    streams = new SseStreams({
      redis,
      keyPrefix: `test:sse-req:${randomUUID()}`,
      maxPerUser: 5,
      logger: createLogger({ level: 'silent' }),
      shuttingDown: () => false,
    });
    const app = express();
    app.get('/events', async (req, res) => {
      const once = req.url.includes('once');
      let wake: (() => void) | undefined;
      let sent = 0;
      const state = { req, res, push: () => wake?.(), ended: false };
      held = state;
      // What the app's routes leave on a request before it streams: the user, the route template.
      (req as { user?: unknown }).user = { id: 'u1', email: 'u1@example.test' };
      res.locals.routeTemplate = '/events';
      res.locals.scratch = 'x'.repeat(100);
      // What the request logger leaves: its logger on both, and a list of them on each.
      Object.assign(req, { allLogs: [{}] });
      Object.assign(res, { allLogs: [{}] });
      await streams.serve(req, res, {
        userId: 'u1',
        context: {},
        prepare: async () => ({
          interrupted: { event: 'error', data: '{}' },
          async *messages(signal: AbortSignal) {
            try {
              while (!signal.aborted) {
                yield { id: (sent += 1), event: 'tick', data: JSON.stringify({ n: sent, auth: req.headers.authorization ?? null }) };
                if (once) return;
                await new Promise<void>((resolve) => {
                  wake = resolve;
                  signal.addEventListener('abort', () => resolve(), { once: true });
                });
              }
            } finally {
              state.ended = true;
            }
          },
        }),
      });
    });
    // A source that hands its live phase off, served inside a request's origin (as the API's routes are).
    app.get('/live', (req, res, next) => {
      withRequestOrigin({ ip: '10.0.0.1', userAgent: 'test' }, () => {
        streams
          .serve(req, res, {
            userId: 'u1',
            context: {},
            prepare: async () => {
              live.originInPrepare = currentRequestOrigin();
              return {
                interrupted: { event: 'error', data: '{}' },
                async *messages() {
                  yield { id: 1, event: 'tick', data: '{}' };
                  return {
                    live: {
                      start: (end: LiveEnd) => {
                        live.originInLive = currentRequestOrigin();
                        setTimeout(() => (live.end = end), 1);
                      },
                    },
                    async *after() {
                      yield { event: 'done', data: '{}' };
                    },
                  };
                },
              };
            },
          })
          .catch(next);
      });
    });
    server = createServer(app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  afterEach(async () => {
    client?.destroy();
    server.closeAllConnections();
    server.close();
    redis.disconnect();
  });

  test('after the headers went out, neither headers nor rawHeaders hold the token, and messages still flow until the client leaves', async () => {
    let received = '';
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.setEncoding('utf8');
    client.on('data', (text: string) => (received += text));
    client.write(`GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nAccept: text/event-stream\r\n\r\n`);

    await waitUntil(() => received.includes('event: tick'), 5_000);
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received).toMatch(/\r\nContent-Type: text\/event-stream; charset=utf-8\r\n/i);
    expect(received).toMatch(/\r\nTransfer-Encoding: chunked\r\n/i);
    const { req, res } = held!;
    expect(res.headersSent).toBe(true);
    expect(req.headers.authorization).toBeUndefined();
    expect(JSON.stringify(req.headers)).not.toContain(TOKEN);
    expect(req.rawHeaders.join('\n')).not.toContain(TOKEN);

    // The stream still works on the headerless request: the next message reaches the client.
    held!.push();
    await waitUntil(() => received.includes('"n":2'), 5_000);
    expect(received).toContain('"auth":null');
    expect(streams.size).toBe(1);

    client.destroy();
    await waitUntil(() => held!.ended && streams.size === 0, 5_000);
  });

  test('an open stream keeps only the route template of its request: no user, no params, no per-request URL or locals', async () => {
    let received = '';
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.setEncoding('utf8');
    client.on('data', (text: string) => (received += text));
    client.write(`GET /events?from=7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);

    await waitUntil(() => received.includes('event: tick'), 5_000);
    const { req, res } = held!;
    expect((req as { user?: unknown }).user).toBeUndefined();
    expect(req.params).toEqual({});
    expect(req.url).toBe('/events');
    expect(req.originalUrl).toBe('/events');
    expect(res.locals).toEqual({ routeTemplate: '/events' });
    expect((req as { allLogs?: unknown }).allLogs).toBeUndefined();
    expect((res as { allLogs?: unknown }).allLogs).toBeUndefined();
    expect(req.method).toBe('GET');

    // Still a working stream: the next message arrives, and leaving frees the slot.
    held!.push();
    await waitUntil(() => received.includes('"n":2'), 5_000);
    client.destroy();
    await waitUntil(() => held!.ended && streams.size === 0, 5_000);
  });

  test('a live phase handed off runs outside the request: no request origin in it (nor the timers and callbacks it makes), and what follows it is written when it ends', async () => {
    let text = '';
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (text += chunk));
    client.write(`GET /live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);

    await waitUntil(() => text.includes('event: tick') && live.end !== undefined, 5_000);
    expect(live.originInPrepare).toEqual({ ip: '10.0.0.1', userAgent: 'test' });
    expect(live.originInLive).toBeNull();
    expect(streams.size).toBe(1);

    live.end!.liveEnded();
    await waitUntil(() => /event: done[\s\S]*\r\n0\r\n\r\n$/.test(text), 5_000);
    await waitUntil(() => streams.size === 0, 5_000);
  });

  test('a stream that ends on its own ends its chunked response, and the connection serves the next request', async () => {
    let text = '';
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (text += chunk));
    const request = `GET /events?once HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;
    client.write(request);
    // The last chunk (`0`) after the message: the response ended cleanly, headers marker and all.
    await waitUntil(() => /event: tick[\s\S]*\r\n0\r\n\r\n$/.test(text), 5_000);
    await waitUntil(() => streams.size === 0, 5_000);
    // Keep-alive: the same connection gets a second, complete response with its own header block.
    const before = text.length;
    client.write(request);
    await waitUntil(() => /\r\n0\r\n\r\n$/.test(text.slice(before)), 5_000);
    expect(text.slice(before)).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Content-Type: text\/event-stream[\s\S]*event: tick/i);
  });
});
