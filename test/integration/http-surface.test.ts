import { io } from 'socket.io-client';
import { QUEUE_NAMES } from '../../config';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

/**
 * The HTTP surface of a release: CORS for the listed browser origins only (the public embed chat
 * keeps its own per-embed origins), `/health`, a clear 415 for a JSON route sent something else,
 * and one `route` label per route in the HTTP metrics whatever the status. Real server, real Redis
 * and PostgreSQL, real HTTP requests.
 */
const APP_ORIGIN = 'https://app.example';
const OTHER_APP_ORIGIN = 'http://localhost:5173';
const SHOP_ORIGIN = 'https://shop.example';

describe('HTTP surface', () => {
  let t: TestApp;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ env: { CORS_ORIGINS: `${APP_ORIGIN},${OTHER_APP_ORIGIN}` } });
    user = await registerUser(t.api, 'Surface');
  });

  afterAll(() => t.stop());

  const preflight = (path: string, origin: string, method = 'PATCH', headers = 'authorization, content-type') =>
    fetch(`${t.api}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
    });

  describe('CORS', () => {
    test('given a listed origin, a preflight is 204 with that exact origin, the methods, the headers clients send and a max age', async () => {
      const res = await preflight('/canvases/00000000-0000-4000-8000-000000000000', APP_ORIGIN);

      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      const methods = res.headers.get('access-control-allow-methods')!.split(/,\s*/);
      expect(methods).toEqual(expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']));
      const headers = res.headers.get('access-control-allow-headers')!.toLowerCase().split(/,\s*/);
      expect(headers).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'last-event-id']));
      expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
      expect(res.headers.get('vary')).toMatch(/\bOrigin\b/);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    });

    test('given the second listed origin, its preflight names that origin, not the first', async () => {
      const res = await preflight('/canvases', OTHER_APP_ORIGIN, 'POST');

      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(OTHER_APP_ORIGIN);
    });

    test.each([['https://evil.example'], [`${APP_ORIGIN}.evil.example`], ['null'], [APP_ORIGIN.toUpperCase()]])(
      'given the unlisted origin %j, a preflight gets no CORS headers at all',
      async (origin) => {
        const res = await preflight('/canvases', origin, 'POST');

        expect(res.status).not.toBe(204);
        for (const [name] of res.headers) expect(name).not.toMatch(/^access-control-/);
      },
    );

    test('given a listed origin, actual answers carry the origin and expose the headers clients read, errors included', async () => {
      const ok = await request('POST', `${t.api}/canvases`, {
        token: user.accessToken,
        body: { title: 'CORS' },
        headers: { origin: APP_ORIGIN },
      });
      const unauthorized = await request('GET', `${t.api}/canvases`, { headers: { origin: APP_ORIGIN } });
      const badJson = await request('POST', `${t.api}/canvases`, {
        token: user.accessToken,
        rawBody: '{',
        headers: { origin: APP_ORIGIN },
      });

      expect(ok.status).toBe(201);
      expect([unauthorized.status, badJson.status]).toEqual([401, 400]);
      for (const res of [ok, unauthorized, badJson]) {
        expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
        const exposed = res.headers.get('access-control-expose-headers')!.toLowerCase().split(/,\s*/);
        expect(exposed).toEqual(expect.arrayContaining(['retry-after', 'x-request-id', 'x-generation-id', 'x-chat-session-id']));
        expect(res.headers.get('vary')).toMatch(/\bOrigin\b/);
      }
    });

    test('given an unlisted origin or none, actual answers carry no CORS headers', async () => {
      const evil = await request('GET', `${t.api}/canvases`, { token: user.accessToken, headers: { origin: 'https://evil.example' } });
      const server = await request('GET', `${t.api}/canvases`, { token: user.accessToken });

      expect([evil.status, server.status]).toEqual([200, 200]);
      for (const res of [evil, server]) for (const [name] of res.headers) expect(name).not.toMatch(/^access-control-/);
    });

    test('given the public embed chat, its own origins rule: a CORS_ORIGINS origin it does not list is refused, its own gets CORS', async () => {
      const flow = await request('POST', `${t.api}/flows`, {
        token: user.accessToken,
        body: { type: 'chatflow', name: 'Embedded', definition: { systemPrompt: 'Help.' } },
      });
      expect(flow.status).toBe(201);
      const embed = await request('POST', `${t.api}/flows/${flow.body.flow.id}/embeds`, {
        token: user.accessToken,
        body: { allowedOrigins: [SHOP_ORIGIN] },
      });
      expect(embed.status).toBe(201);
      const url = `${t.api}/embed/public/${embed.body.embedToken}/chat`;

      const appPreflight = await fetch(url, {
        method: 'OPTIONS',
        headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' },
      });
      const appChat = await request('POST', url, { body: { message: 'Hi' }, headers: { origin: APP_ORIGIN } });
      const shopPreflight = await fetch(url, {
        method: 'OPTIONS',
        headers: { origin: SHOP_ORIGIN, 'access-control-request-method': 'POST' },
      });

      expect(appPreflight.status).toBe(403);
      expect(appPreflight.headers.get('access-control-allow-origin')).toBeNull();
      expect(appChat.status).toBe(403);
      expect(appChat.body.error.code).toBe('origin_not_allowed');
      expect(appChat.headers.get('access-control-allow-origin')).toBeNull();
      expect(shopPreflight.status).toBe(204);
      expect(shopPreflight.headers.get('access-control-allow-origin')).toBe(SHOP_ORIGIN);
      expect(shopPreflight.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    });
  });

  describe('Socket.IO and CORS_ORIGINS', () => {
    const pollingHandshake = (origin: string) => fetch(`${t.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });

    test('given a listed origin, the long-polling handshake and its preflight carry that origin; an unlisted one gets none', async () => {
      const listed = await pollingHandshake(APP_ORIGIN);
      const unlisted = await pollingHandshake('https://evil.example');
      const preflight = await fetch(`${t.url}/socket.io/?EIO=4&transport=polling`, {
        method: 'OPTIONS',
        headers: { origin: OTHER_APP_ORIGIN, 'access-control-request-method': 'POST' },
      });
      await Promise.all([listed.text(), unlisted.text()]);

      expect(listed.status).toBe(200);
      expect(listed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(OTHER_APP_ORIGIN);
      expect(unlisted.headers.get('access-control-allow-origin')).toBeNull();
    });

    test('given a listed origin, a client on long-polling connects to /canvas with its token; without a token it is refused whatever the origin', async () => {
      const connect = (token: string | undefined) =>
        new Promise<string>((resolve, reject) => {
          const socket = io(`${t.url}/canvas`, {
            auth: token ? { token } : {},
            transports: ['polling'],
            extraHeaders: { origin: APP_ORIGIN },
            reconnection: false,
            forceNew: true,
          });
          const timer = setTimeout(() => (socket.close(), reject(new Error('no connect or connect_error in 5 s'))), 5_000);
          socket.once('connect', () => (clearTimeout(timer), socket.close(), resolve('connected')));
          socket.once('connect_error', (error) => (clearTimeout(timer), socket.close(), resolve(`refused: ${error.message}`)));
        });

      expect(await connect(user.accessToken)).toBe('connected');
      expect(await connect(undefined)).toMatch(/^refused/);
    });
  });

  describe('GET /health', () => {
    test('given Redis and the database up, it is 200 with the readiness, the package version and the roles', async () => {
      const { version } = (await import('../../package.json')).default as { version: string };

      const res = await request('GET', `${t.url}/health`);

      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        status: 'ready',
        version,
        roles: ['api', 'worker', 'scheduler'],
        checks: { redis: 'ok', database: 'ok' },
        providers: { scripted: 'unchecked' },
        queues: Object.fromEntries(QUEUE_NAMES.map((queue) => [queue, 'consumed'])),
      });
    });

    test('with ?deep=1 each model provider is probed and reported; /readyz says the same', async () => {
      const health = await request('GET', `${t.url}/health?deep=1`);
      expect(health.status).toBe(200);
      expect(health.body.providers).toEqual({ scripted: 'reachable' });
      // The fresh deep answer is reused for a while, also by plain readiness.
      const ready = await request('GET', `${t.url}/readyz`);
      expect(ready.body).toEqual({
        status: 'ready',
        checks: { redis: 'ok', database: 'ok' },
        providers: { scripted: 'reachable' },
        queues: Object.fromEntries(QUEUE_NAMES.map((queue) => [queue, 'consumed'])),
      });
    });
  });

  describe('a JSON route sent something other than JSON', () => {
    test.each([
      ['text/plain', '{"title":"x"}'],
      ['application/x-www-form-urlencoded', 'title=x'],
      [undefined, '{"title":"x"}'],
    ])('given Content-Type %j, it is 415 unsupported_media_type naming application/json', async (contentType, rawBody) => {
      const res = await fetch(`${t.api}/canvases`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.accessToken}`, ...(contentType ? { 'content-type': contentType } : {}) },
        body: Buffer.from(rawBody),
      });
      const body = await res.json();

      expect(res.status).toBe(415);
      expect(body.error.code).toBe('unsupported_media_type');
      expect(body.error.message).toContain('Content-Type: application/json');
    });

    test('given no body and no Content-Type on a route that needs one, it is 415 too', async () => {
      const res = await request('POST', `${t.api}/canvases`, { token: user.accessToken });

      expect(res.status).toBe(415);
      expect(res.body.error.code).toBe('unsupported_media_type');
    });

    test('given JSON with a charset or a +json type, the body is read as before', async () => {
      const plain = await request('POST', `${t.api}/canvases`, {
        token: user.accessToken,
        body: { title: 'charset' },
        headers: { 'content-type': 'application/json; charset=utf-8' },
      });
      const vendor = await request('POST', `${t.api}/canvases`, {
        token: user.accessToken,
        body: { title: 'vendor' },
        headers: { 'content-type': 'application/vnd.switchboard+json' },
      });

      expect([plain.status, vendor.status]).toEqual([201, 201]);
    });

    test('given JSON of the wrong shape, it is still 400 validation_failed', async () => {
      const res = await request('POST', `${t.api}/canvases`, { token: user.accessToken, body: { title: 42 } });

      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    });
  });

  describe('replaying a stream with ?lastEventId', () => {
    test('given a finished generation, ?lastEventId resumes after that event, and the Last-Event-ID header wins over it', async () => {
      const canvasId = await createCanvas(t.api, user, 'Replay');
      t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'replayed' } }] });
      const live = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'one paragraph' },
        until: (m) => m.event === 'complete',
      });
      expect(live.messages.at(-1)!.event).toBe('complete');
      const generationId = live.headers.get('x-generation-id')!;
      const ids = live.messages.map((m) => Number(m.id)).filter((id) => id > 0);
      expect(ids.length).toBeGreaterThan(2);
      const events = `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/events`;

      const fromQuery = await readSse(`${events}?lastEventId=${ids[1]}`, { token: user.accessToken });
      const headerWins = await readSse(`${events}?lastEventId=${ids[0]}`, {
        token: user.accessToken,
        headers: { 'last-event-id': String(ids[1]) },
      });
      const garbage = await readSse(`${events}?lastEventId=not-a-number`, { token: user.accessToken });

      expect(fromQuery.status).toBe(200);
      expect(fromQuery.messages.map((m) => Number(m.id)).filter((id) => id > 0)).toEqual(ids.slice(2));
      expect(headerWins.messages.map((m) => Number(m.id)).filter((id) => id > 0)).toEqual(ids.slice(2));
      expect(garbage.messages.map((m) => Number(m.id)).filter((id) => id > 0)).toEqual(ids);
    });
  });

  describe('keep-alive connections', () => {
    test('the server keeps an idle connection 65 s and says so, so a pooled connection is not reset under a client or proxy', async () => {
      const res = await fetch(`${t.url}/health`);
      await res.text();

      expect(res.headers.get('keep-alive')).toBe('timeout=65');
    });

    test('a burst sent after this process stalled past 6 s still gets its answers on the pooled connections', async () => {
      // Open a few pooled connections, then hold the event loop as a long GC pause or a starved
      // host does: client and server both see the connections idle past Node's default 5 s.
      await Promise.all(Array.from({ length: 5 }, () => fetch(`${t.url}/health`).then((r) => r.text())));
      const until = Date.now() + 6_500;
      while (Date.now() < until) {
        // stalled
      }

      const statuses = await Promise.all(Array.from({ length: 5 }, () => fetch(`${t.url}/health`).then((r) => r.status)));

      expect(statuses).toEqual([200, 200, 200, 200, 200]);
    });
  });

  describe('HTTP metrics', () => {
    test('given a route answering 200 and 404, both count under the same full route pattern; unmatched paths under one label', async () => {
      const canvasId = await createCanvas(t.api, user, 'Metrics');
      expect((await request('GET', `${t.api}/canvases/${canvasId}`, { token: user.accessToken })).status).toBe(200);
      expect((await request('GET', `${t.api}/canvases/00000000-0000-4000-8000-000000000000`, { token: user.accessToken })).status).toBe(
        404,
      );
      expect((await request('GET', `${t.api}/canvases/not-a-uuid`, { token: user.accessToken })).status).toBe(404);
      expect((await request('GET', `${t.url}/no/such/path/${canvasId}`)).status).toBe(404);

      const text = (await request('GET', `${t.url}/metrics`)).body as string;
      const routes = [...text.matchAll(/switchboard_http_requests_total\{method="GET",route="([^"]*)",status="(\d+)"\}/g)].map((m) => [
        m[1],
        m[2],
      ]);

      expect(routes).toEqual(
        expect.arrayContaining([
          ['/api/v1/canvases/:id', '200'],
          ['/api/v1/canvases/:id', '404'],
          ['unmatched', '404'],
        ]),
      );
      expect(routes.map(([route]) => route)).not.toContain('/canvases/:id');
      expect(routes.every(([route]) => route === 'unmatched' || route.startsWith('/'))).toBe(true);
      expect(text).not.toContain(`/no/such/path`);
    });
  });
});
