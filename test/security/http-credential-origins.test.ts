import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';

/**
 * A sealed HTTP tool credential is bound to the origins given when it was stored and is sent to no
 * other: a flow whose tool names it for another origin is refused on save and on publish, a call
 * after its origins changed sends nothing, changing them takes the secret again, and one stored
 * before credentials had origins goes nowhere until it is stored again. Two local services stand
 * for the real API and a host the caller runs; each records what reaches it.
 */

interface Seen {
  url: string;
  authorization?: string;
}

async function recordingServer(): Promise<{ server: http.Server; origin: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('HTTP tool credentials are bound to their origins', () => {
  let t: TestApp;
  let api: Awaited<ReturnType<typeof recordingServer>>;
  let foreign: Awaited<ReturnType<typeof recordingServer>>;
  const logs: string[] = [];

  beforeAll(async () => {
    [api, foreign] = await Promise.all([recordingServer(), recordingServer()]);
    t = await startTestApp({
      env: { FLOW_HTTP_PRIVATE_ORIGINS: `${api.origin},${foreign.origin}` },
      logs: (line) => logs.push(line),
    });
  });
  afterAll(async () => {
    await t.stop();
    for (const { server } of [api, foreign]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const call = (method: string, user: TestUser, path: string, body?: unknown) =>
    request(method, `${t.api}${path}`, { token: user.accessToken, body });
  const putCredential = (user: TestUser, name: string, body: Record<string, unknown>) =>
    call('PUT', user, `/http-credentials/${name}`, body);
  const definition = (credential: string, url: string) => ({
    nodes: [{ id: 'a', prompt: 'Who am I?', tools: ['whoami'] }],
    output: 'a',
    httpTools: [{ name: 'whoami', description: 'Who am I', method: 'GET', url, credential }],
    allowedOrigins: [api.origin, foreign.origin],
  });
  const createFlow = (user: TestUser, name: string, credential: string, url: string) =>
    call('POST', user, '/flows', { type: 'agentflow', name, definition: definition(credential, url) });
  const runTool = async (user: TestUser, flowId: string): Promise<{ ok: boolean; result: string }> => {
    t.llm.push({ toolCalls: [{ name: 'whoami', args: {} }] }, { text: 'Done.' });
    const { messages } = await readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    });
    expect(messages.at(-1)?.event).toBe('execution_completed');
    const calls = messages.filter((m: SseMessage) => m.event === 'tool_called').map((m: SseMessage) => m.data);
    expect(calls).toHaveLength(1);
    return calls[0] as { ok: boolean; result: string };
  };
  const flowCount = async (user: TestUser) => (await call('GET', user, '/flows')).body.flows.length as number;

  test('storing a credential takes its origins: exact origins, at least one, shown back', async () => {
    const user = await registerUser(t.api, 'OriginsShape');
    const bad: Array<[string, unknown]> = [
      ['no_origins', { scheme: 'bearer', secret: 'origin-shape-secret' }],
      ['empty_origins', { scheme: 'bearer', secret: 'origin-shape-secret', origins: [] }],
      ['star_origin', { scheme: 'bearer', secret: 'origin-shape-secret', origins: ['*'] }],
      ['path_origin', { scheme: 'bearer', secret: 'origin-shape-secret', origins: [`${api.origin}/v1`] }],
      ['ftp_origin', { scheme: 'bearer', secret: 'origin-shape-secret', origins: ['ftp://files.example.com'] }],
    ];
    for (const [name, body] of bad) {
      const res = await putCredential(user, name, body as Record<string, unknown>);
      expect([name, res.status, res.body.error?.code]).toEqual([name, 400, 'validation_failed']);
    }
    expect((await call('GET', user, '/http-credentials')).body.credentials).toEqual([]);

    const stored = await putCredential(user, 'shaped', {
      scheme: 'bearer',
      secret: 'origin-shape-secret',
      origins: [api.origin, api.origin],
    });
    expect(stored.status).toBe(201);
    expect(stored.body.credential.origins).toEqual([api.origin]);
  });

  test('a flow naming the credential for a URL outside its origins is refused on save, naming the tool and the credential', async () => {
    const user = await registerUser(t.api, 'OriginsSave');
    expect(
      (await putCredential(user, 'service_token', { scheme: 'bearer', secret: 'save-check-secret-1', origins: [api.origin] })).status,
    ).toBe(201);
    const refused = await createFlow(user, 'Exfiltrate', 'service_token', `${foreign.origin}/collect`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual([
      {
        path: 'definition.httpTools.0.credential',
        message: `the credential "service_token" is only sent to ${api.origin}, not to ${foreign.origin}`,
      },
    ]);
    expect(await flowCount(user)).toBe(0);

    // The same on an update of a flow that was fine.
    const fine = await createFlow(user, 'Fine', 'service_token', `${api.origin}/me`);
    expect(fine.status).toBe(201);
    const moved = await call('PATCH', user, `/flows/${fine.body.flow.id}`, {
      definition: definition('service_token', `${foreign.origin}/collect`),
    });
    expect(moved.status).toBe(400);
    expect(moved.body.error.details[0].path).toBe('definition.httpTools.0.credential');
    expect((await call('GET', user, `/flows/${fine.body.flow.id}`)).body.flow.definition.httpTools[0].url).toBe(`${api.origin}/me`);
    expect(foreign.seen).toEqual([]);
  });

  test('the allowed origin gets the header; after the origins change, a call to the dropped one sends nothing', async () => {
    const user = await registerUser(t.api, 'OriginsCall');
    const secret = 'call-check-secret-2';
    const both = { scheme: 'bearer', secret, origins: [api.origin, foreign.origin] };
    expect((await putCredential(user, 'moving_token', both)).status).toBe(201);
    const toApi = await createFlow(user, 'To the API', 'moving_token', `${api.origin}/me-${user.id}`);
    const toForeign = await createFlow(user, 'To the other host', 'moving_token', `${foreign.origin}/collect-${user.id}`);
    expect([toApi.status, toForeign.status]).toEqual([201, 201]);

    // Bound to the API only from now on (the secret given again).
    const narrowed = await putCredential(user, 'moving_token', { ...both, origins: [api.origin] });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.credential.origins).toEqual([api.origin]);

    expect(await runTool(user, toApi.body.flow.id)).toMatchObject({ ok: true });
    expect(api.seen.find((s) => s.url === `/me-${user.id}`)?.authorization).toBe(`Bearer ${secret}`);

    const refused = await runTool(user, toForeign.body.flow.id);
    expect(refused).toEqual(
      expect.objectContaining({
        ok: false,
        result: `Error: the credential "moving_token" is only sent to ${api.origin}, not to ${foreign.origin}, so whoami was not called; ask the flow's owner.`,
      }),
    );
    expect(foreign.seen.filter((s) => s.url === `/collect-${user.id}`)).toEqual([]);
    expect(logs.join('\n')).not.toContain(secret);

    // Publishing the version that called the other host is refused as well.
    const versions = await call('GET', user, `/flows/${toForeign.body.flow.id}/versions`);
    const published = await call(
      'POST',
      user,
      `/flows/${toForeign.body.flow.id}/versions/${versions.body.versions.at(-1).version}/publish`,
    );
    expect(published.status).toBe(400);
    expect(published.body.error.details[0].path).toBe('definition.httpTools.0.credential');
  });

  test('changing the origins takes the secret again: without it the request is 400 and nothing changes', async () => {
    const user = await registerUser(t.api, 'OriginsSecret');
    expect((await putCredential(user, 'kept', { scheme: 'bearer', secret: 'keep-check-secret-3', origins: [api.origin] })).status).toBe(
      201,
    );
    const widened = await putCredential(user, 'kept', { scheme: 'bearer', origins: [api.origin, foreign.origin] });
    expect(widened.status).toBe(400);
    expect(widened.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'secret' })]));
    const [credential] = (await call('GET', user, '/http-credentials')).body.credentials;
    expect(credential.origins).toEqual([api.origin]);
    expect((await createFlow(user, 'Widened', 'kept', `${foreign.origin}/collect`)).status).toBe(400);
  });

  test('a credential stored before origins existed is sent nowhere and refused on save until stored again', async () => {
    const user = await registerUser(t.api, 'OriginsLegacy');
    const secret = 'legacy-check-secret-4';
    expect((await putCredential(user, 'legacy', { scheme: 'bearer', secret, origins: [api.origin] })).status).toBe(201);
    const flow = await createFlow(user, 'Legacy', 'legacy', `${api.origin}/legacy-${user.id}`);
    expect(flow.status).toBe(201);
    // As the migration leaves a credential stored before it.
    await t.app.repos.db.execute(sql`update http_credentials set origins = null where user_id = ${user.id} and name = 'legacy'`);

    expect((await call('GET', user, '/http-credentials')).body.credentials[0].origins).toBeNull();
    const refused = await createFlow(user, 'Legacy again', 'legacy', `${api.origin}/legacy-${user.id}`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.details[0].message).toBe(
      'the credential "legacy" has no origins yet: store it again with its origins and its secret (PUT /http-credentials/legacy)',
    );
    const call1 = await runTool(user, flow.body.flow.id);
    expect(call1.ok).toBe(false);
    expect(call1.result).toContain('has no origins yet');
    expect(api.seen.filter((s) => s.url === `/legacy-${user.id}`)).toEqual([]);

    // Stored again with its origins and secret, it is sent again.
    expect((await putCredential(user, 'legacy', { scheme: 'bearer', secret, origins: [api.origin] })).status).toBe(200);
    expect(await runTool(user, flow.body.flow.id)).toMatchObject({ ok: true });
    expect(api.seen.find((s) => s.url === `/legacy-${user.id}`)?.authorization).toBe(`Bearer ${secret}`);
  });
});
