import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import { createTextEmbedder } from '../../src/ai/embeddings';
import { OutboundRoute } from '../../src/lib/outbound-proxy';
import { startTestApp, type TestApp } from '../support/app';
import { startForwardProxy } from '../support/forward-proxy';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';

/**
 * HTTP tools that authenticate, and outbound calls through a corporate proxy: credentials are
 * stored sealed, referenced by name, sent by the tool, blanked out of what the model, the events
 * and the logs see; model requests and tool calls go through HTTP_PROXY (a real forward proxy
 * here, counting what it carries) unless NO_PROXY names the host; fetch-based calls tunnel with
 * CONNECT through undici's EnvHttpProxyAgent.
 */

const SECRET = 'sk-live-Zq8fW2xK9pL4mN7rT1vY';

describe('HTTP tool credentials and the outbound proxy', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let target: http.Server;
  let origin: string;
  let proxy: Awaited<ReturnType<typeof startForwardProxy>>;
  const seen: Array<{ url: string; authorization?: string; apiKey?: string }> = [];
  const logs: string[] = [];

  beforeAll(async () => {
    // A service that echoes what it received, headers included (the worst case for a secret).
    target = http.createServer((req, res) => {
      const entry = {
        url: req.url ?? '',
        authorization: req.headers.authorization,
        apiKey: req.headers['x-api-key'] as string | undefined,
      };
      seen.push(entry);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ youSent: entry }));
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    proxy = await startForwardProxy();
    t = await startTestApp({
      env: { FLOW_HTTP_PRIVATE_ORIGINS: origin, HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url },
      logs: (line) => logs.push(line),
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(async () => {
    await t.stop();
    await proxy.close();
    await new Promise((resolve) => target.close(resolve));
  });

  const api = (method: string, user: TestUser, path: string, body?: unknown) =>
    request(method, `${t.api}${path}`, { token: user.accessToken, body });
  const run = (user: TestUser, flowId: string) =>
    readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    }).then((result) => result.messages);
  const stored = (body: Record<string, unknown>) => ({ ...body, origins: [origin] });
  const toolEvents = (messages: SseMessage[]) => messages.filter((m) => m.event === 'tool_called').map((m) => m.data);
  const tool = (extra: Record<string, unknown> = {}, url = `${origin}/me`) => ({
    name: 'whoami',
    description: 'Who am I',
    method: 'GET',
    url,
    ...extra,
  });

  test('credentials are created, replaced, listed by name only, stored sealed, and private to their owner', async () => {
    const created = await api('PUT', ada, '/http-credentials/service_token', stored({ scheme: 'bearer', secret: SECRET }));
    expect(created.status).toBe(201);
    expect(created.body.credential).toEqual({
      name: 'service_token',
      scheme: 'bearer',
      headerName: null,
      origins: [origin],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const replaced = await api('PUT', ada, '/http-credentials/service_token', stored({ scheme: 'bearer', secret: SECRET }));
    expect(replaced.status).toBe(200);
    expect(
      (await api('PUT', ada, '/http-credentials/api_key', stored({ scheme: 'header', headerName: 'X-Api-Key', secret: `${SECRET}-k` })))
        .status,
    ).toBe(201);

    const listed = await api('GET', ada, '/http-credentials');
    expect(listed.body.credentials.map((c: { name: string }) => c.name)).toEqual(['api_key', 'service_token']);
    expect(JSON.stringify(listed.body)).not.toContain(SECRET);
    const rows = await t.app.repos.db.execute(sql`select sealed_value from http_credentials`);
    const sealed = JSON.stringify(rows);
    expect(sealed).toMatch(/v1\.[0-9a-f]{8}\./);
    expect(sealed).not.toContain(SECRET);

    // Another user sees none of them and deletes none of them.
    expect((await api('GET', bob, '/http-credentials')).body.credentials).toEqual([]);
    expect((await api('DELETE', bob, '/http-credentials/service_token')).status).toBe(404);

    // Bad input: a clear 4xx, nothing written.
    const bad: Array<[string, unknown, number]> = [
      ['x1', { scheme: 'bearer', secret: 'line\nbreak' }, 400],
      ['x2', { scheme: 'bearer', secret: 'lone \uD800 surrogate' }, 400],
      ['x3', { scheme: 'header', headerName: 'Host', secret: 'abc' }, 400],
      ['x4', { scheme: 'header', secret: 'abc' }, 400],
      ['x5', { scheme: 'basic', secret: 'no-colon' }, 400],
      ['x6', { scheme: 'bearer', secret: 'x'.repeat(4_097) }, 400],
      ['x7', { scheme: 'bearer', secret: 'ok', extra: 1 }, 400],
      ['Bad-Name', { scheme: 'bearer', secret: 'ok' }, 404],
      ['%F0%9F%98%80', { scheme: 'bearer', secret: 'ok' }, 404],
    ];
    for (const [name, body, status] of bad)
      expect([name, (await api('PUT', ada, `/http-credentials/${name}`, stored(body as Record<string, unknown>))).status]).toEqual([
        name,
        status,
      ]);
    expect((await api('GET', ada, '/http-credentials')).body.credentials).toHaveLength(2);
  });

  test('a flow may only name its owner’s credentials', async () => {
    const definition = {
      nodes: [{ id: 'a', prompt: 'who', tools: ['whoami'] }],
      output: 'a',
      httpTools: [tool({ credential: 'nope' })],
      allowedOrigins: [origin],
    };
    const unknown = await api('POST', ada, '/flows', { type: 'agentflow', name: 'Creds', definition });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toEqual([{ path: 'definition.httpTools.0.credential', message: 'you have no credential "nope"' }]);
    // Bob names Ada's credential: he has none of that name.
    const borrowed = await api('POST', bob, '/flows', {
      type: 'agentflow',
      name: 'Borrow',
      definition: { ...definition, httpTools: [tool({ credential: 'service_token' })] },
    });
    expect(borrowed.status).toBe(400);
  });

  test('the tool sends the credential through the proxy; the model, the events and the logs never see it', async () => {
    const created = await api('POST', ada, '/flows', {
      type: 'agentflow',
      name: 'Authenticated',
      definition: {
        nodes: [{ id: 'a', prompt: 'Who am I?', tools: ['whoami', 'keyed'] }],
        output: 'a',
        httpTools: [tool({ credential: 'service_token' }), { ...tool({ credential: 'api_key' }, `${origin}/keyed`), name: 'keyed' }],
        allowedOrigins: [origin],
      },
    });
    expect(created.status).toBe(201);
    const before = { proxied: proxy.requests.length, chat: t.llm.chatRequests().length };
    t.llm.push(
      {
        toolCalls: [
          { name: 'whoami', args: {} },
          { name: 'keyed', args: {} },
        ],
      },
      { text: 'You are Ada.' },
    );

    const messages = await run(ada, created.body.flow.id);
    expect(messages.at(-1)?.event).toBe('execution_completed');

    // The service got the credential, each in its own way.
    expect(seen.find((s) => s.url === '/me')?.authorization).toBe(`Bearer ${SECRET}`);
    expect(seen.find((s) => s.url === '/keyed')?.apiKey).toBe(`${SECRET}-k`);
    // It echoed it; what the model and the events read has it blanked out.
    const calls = toolEvents(messages);
    expect(calls).toHaveLength(2);
    for (const call of calls) {
      expect(call.ok).toBe(true);
      expect(call.result).toContain('[credential]');
    }
    expect(JSON.stringify(messages)).not.toContain(SECRET);
    expect(JSON.stringify(t.llm.chatRequests().slice(before.chat))).not.toContain(SECRET);
    expect(logs.join('\n')).not.toContain(SECRET);

    // Both model requests and both tool calls went through the proxy.
    const carried = proxy.requests.slice(before.proxied);
    expect(
      carried
        .filter((r) => r.target.startsWith(origin))
        .map((r) => new URL(r.target).pathname)
        .sort(),
    ).toEqual(['/keyed', '/me']);
    const modelOrigin = new URL(t.llm.baseURL).origin;
    expect(carried.filter((r) => r.target.startsWith(modelOrigin))).toHaveLength(2);
  });

  test('a deleted credential fails the tool’s calls with a clear message, sending nothing', async () => {
    expect(
      (await api('PUT', ada, '/http-credentials/short_lived', stored({ scheme: 'bearer', secret: 'short-lived-secret-1' }))).status,
    ).toBe(201);
    const created = await api('POST', ada, '/flows', {
      type: 'agentflow',
      name: 'Gone',
      definition: {
        nodes: [{ id: 'a', prompt: 'who', tools: ['whoami'] }],
        output: 'a',
        httpTools: [tool({ credential: 'short_lived' }, `${origin}/gone`)],
        allowedOrigins: [origin],
      },
    });
    expect((await api('DELETE', ada, '/http-credentials/short_lived')).status).toBe(204);
    t.llm.push({ toolCalls: [{ name: 'whoami', args: {} }] }, { text: 'Could not.' });
    const [call] = toolEvents(await run(ada, created.body.flow.id));
    expect(call).toMatchObject({
      ok: false,
      result: 'Error: the credential "short_lived" no longer exists, so whoami was not called; ask the flow\'s owner.',
    });
    expect(seen.some((s) => s.url === '/gone')).toBe(false);
  });

  test('through the proxy, a host that resolves to a private address is still refused (checked before the proxy is asked)', async () => {
    const port = (target.address() as AddressInfo).port;
    const local = `http://localhost:${port}`;
    const created = await api('POST', ada, '/flows', {
      type: 'agentflow',
      name: 'Sneaky',
      definition: {
        nodes: [{ id: 'a', prompt: 'go', tools: ['whoami'] }],
        output: 'a',
        httpTools: [tool({}, `${local}/sneaky`)],
        allowedOrigins: [local],
      },
    });
    expect(created.status).toBe(201);
    const before = proxy.requests.length;
    t.llm.push({ toolCalls: [{ name: 'whoami', args: {} }] }, { text: 'Refused.' });
    const [call] = toolEvents(await run(ada, created.body.flow.id));
    expect(call).toMatchObject({ ok: false, result: 'Error: localhost resolves to a private address' });
    expect(proxy.requests.slice(before).some((r) => r.target.includes('/sneaky'))).toBe(false);
    expect(seen.some((s) => s.url === '/sneaky')).toBe(false);
  });

  test('embedding requests (the SDK’s fetch) tunnel through the proxy too', async () => {
    const before = proxy.requests.length;
    const embedder = createTextEmbedder({ baseURL: t.llm.baseURL, apiKey: 'test', provider: 'scripted', models: [] }, 'scripted-embedding');
    const { vectors } = await embedder.embed(['through the proxy']);
    expect(vectors).toHaveLength(1);
    expect(proxy.requests.slice(before)).toEqual([{ kind: 'connect', target: new URL(t.llm.baseURL).host }]);
  });

  test('fetch-based calls tunnel through the proxy with CONNECT; NO_PROXY hosts connect directly', async () => {
    const proxied = new OutboundRoute({ httpProxy: proxy.url, httpsProxy: proxy.url });
    const exempt = new OutboundRoute({ httpProxy: proxy.url, noProxy: `example.org, 127.0.0.1:${(target.address() as AddressInfo).port}` });
    try {
      const before = proxy.requests.length;
      expect((await proxied.fetch(`${origin}/fetched`)).status).toBe(200);
      expect(proxy.requests.slice(before)).toEqual([{ kind: 'connect', target: new URL(origin).host }]);
      expect((await exempt.fetch(`${origin}/direct`)).status).toBe(200);
      expect(proxy.requests.length).toBe(before + 1);
      expect(seen.map((s) => s.url)).toEqual(expect.arrayContaining(['/fetched', '/direct']));
      // The NO_PROXY rule: suffixes, ports, `*`.
      expect(exempt.proxyFor(new URL('http://api.example.org/x'))).toBeUndefined();
      expect(exempt.proxyFor(new URL('http://example.org.evil.test/x'))).toBe(proxy.url);
      expect(exempt.proxyFor(new URL('http://127.0.0.1:1/x'))).toBe(proxy.url);
      expect(exempt.proxyFor(new URL('https://secure.example.com/'))).toBeUndefined();
      expect(new OutboundRoute({ httpProxy: proxy.url, noProxy: '*' }).proxyFor(new URL('http://a.test/'))).toBeUndefined();
    } finally {
      await Promise.all([proxied.close(), exempt.close()]);
    }
  });

  test('NO_PROXY naming the tool’s host:port sends its calls directly while model requests still use the proxy', async () => {
    await t.stop();
    const targetHost = new URL(origin).host;
    t = await startTestApp({
      env: { FLOW_HTTP_PRIVATE_ORIGINS: origin, HTTP_PROXY: proxy.url, NO_PROXY: `intranet.example, ${targetHost}` },
      logs: (line) => logs.push(line),
    });
    ada = await registerUser(t.api, 'Ada2');
    const created = await api('POST', ada, '/flows', {
      type: 'agentflow',
      name: 'Direct',
      definition: {
        nodes: [{ id: 'a', prompt: 'who', tools: ['whoami'] }],
        output: 'a',
        httpTools: [tool({}, `${origin}/exempt`)],
        allowedOrigins: [origin],
      },
    });
    const before = proxy.requests.length;
    t.llm.push({ toolCalls: [{ name: 'whoami', args: {} }] }, { text: 'Direct.' });
    const messages = await run(ada, created.body.flow.id);
    expect(messages.at(-1)?.event).toBe('execution_completed');
    expect(seen.some((s) => s.url === '/exempt')).toBe(true);
    const carried = proxy.requests.slice(before);
    expect(carried.some((r) => r.target.includes(targetHost))).toBe(false);
    expect(carried.filter((r) => r.target.startsWith(new URL(t.llm.baseURL).origin))).toHaveLength(2);
  });
});
