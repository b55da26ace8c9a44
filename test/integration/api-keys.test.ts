import { sql } from 'drizzle-orm';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectCanvas as connectSdkCanvas, createSwitchboardClient } from '@switchboard/client';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { createCanvas, registerUser, request, type JsonResponse, type TestUser } from '../support/http';
import { connectCanvas } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually, within } from '../support/wait';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';

/**
 * API keys, black box over real HTTP, Redis and PostgreSQL: a program authenticates with a key as
 * its user and scopes; keys are managed with a session only; a revoke applies on every node.
 */
describe('API keys', () => {
  const logs: string[] = [];
  let database: TestDatabase;
  /** Two API nodes on one PostgreSQL database and one Redis (key prefix). */
  let a: RunningSwitchboard;
  let b: RunningSwitchboard;
  /** Node A's API, as `t.api` reads in other suites; node B's is `otherApi`. */
  let t: { api: string; url: string; app: RunningSwitchboard };
  let other: RunningSwitchboard;
  let otherApi: string;

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    const config = testConfig({
      keyPrefix: `t-${randomUUID().slice(0, 8)}`,
      databaseUrl: database.url,
      env: { SWITCHBOARD_ROLES: 'api', TRUST_PROXY: 'loopback' },
    });
    a = await startSwitchboard(config, {
      logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }),
    });
    b = await startSwitchboard(config, { logger: createLogger({ level: 'silent' }) });
    t = { api: `${a.url}/api/v1`, url: a.url!, app: a };
    other = b;
    otherApi = `${b.url}/api/v1`;
  }, 120_000);

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await database?.drop();
  });

  const createKey = (user: TestUser, body: unknown) => request('POST', `${t.api}/api-keys`, { token: user.accessToken, body });
  const withKey = (method: string, url: string, key: string, body?: unknown) => request(method, url, { token: key, body });

  test('create → use (Bearer and X-API-Key) → list without secrets → revoke → 401 on the next request to another node', async () => {
    const user = await registerUser(t.api, 'Keys');

    const created = await createKey(user, { name: 'CI bot', scopes: ['write'] });
    expect(created.status).toBe(201);
    const secret: string = created.body.secret;
    expect(secret).toMatch(/^sb_live_[A-Za-z0-9_-]{43}$/);
    expect(created.body.apiKey).toMatchObject({ name: 'CI bot', scopes: ['write'], revokedAt: null, expiresAt: null });
    expect(secret.startsWith(created.body.apiKey.prefix)).toBe(true);

    const me = await withKey('GET', `${t.api}/me`, secret);
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(user.id);
    const viaHeader = await request('GET', `${otherApi}/me`, { headers: { 'x-api-key': secret } });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.body.user.id).toBe(user.id);
    const canvas = await withKey('POST', `${t.api}/canvases`, secret, { title: 'Made by a key' });
    expect(canvas.status).toBe(201);

    const list = await request('GET', `${t.api}/api-keys`, { token: user.accessToken });
    expect(list.status).toBe(200);
    expect(list.body.apiKeys).toHaveLength(1);
    expect(list.body.apiKeys[0]).toMatchObject({ id: created.body.apiKey.id, prefix: created.body.apiKey.prefix });
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(JSON.stringify(list.body)).not.toMatch(/hash/i);
    // The use is recorded beside the request, not in its path: it lands shortly after.
    await eventually(
      () => request('GET', `${t.api}/api-keys`, { token: user.accessToken }),
      (res) => typeof res.body.apiKeys[0].lastUsedAt === 'string',
      20_000,
    );

    const revoked = await request('DELETE', `${t.api}/api-keys/${created.body.apiKey.id}`, { token: user.accessToken });
    expect(revoked.status).toBe(200);
    expect(revoked.body.apiKey.revokedAt).toEqual(expect.any(String));

    expectError(await withKey('GET', `${otherApi}/me`, secret), 401, 'unauthorized');
    expectError(await request('GET', `${t.api}/me`, { headers: { 'x-api-key': secret } }), 401, 'unauthorized');

    const audit = await t.app.repos.db.execute<{ action: string }>(
      sql`select action from system_audit where target_id = ${created.body.apiKey.id} order by created_at`,
    );
    expect(rows<{ action: string }>(audit).map((row) => row.action)).toEqual(['api_key.created', 'api_key.revoked']);
    expect(logs.join('\n')).not.toContain(secret);
  });

  test('a read key may GET but not POST (403); a key cannot manage keys (403)', async () => {
    const user = await registerUser(t.api, 'Reader');
    const { body } = await createKey(user, { name: 'dashboard', scopes: ['read'] });

    expect((await withKey('GET', `${t.api}/canvases`, body.secret)).status).toBe(200);
    expectError(await withKey('POST', `${t.api}/canvases`, body.secret, { title: 'No' }), 403, 'forbidden');
    // GETs that spend or lead to a write are refused to a read key too: an embedding, an OAuth connection.
    expectError(await withKey('GET', `${t.api}/chat/sessions/similar?q=wifi`, body.secret), 403, 'forbidden');
    expectError(await withKey('GET', `${t.api}/oauth/gmail/authorize`, body.secret), 403, 'forbidden');

    const writer = await createKey(user, { name: 'writer' });
    expect(writer.body.apiKey.scopes).toEqual(['read', 'write']);
    expectError(await withKey('POST', `${t.api}/api-keys`, writer.body.secret, { name: 'child' }), 403, 'forbidden');
    expectError(await withKey('GET', `${t.api}/api-keys`, writer.body.secret), 403, 'forbidden');
    expectError(await withKey('DELETE', `${t.api}/api-keys/${body.apiKey.id}`, writer.body.secret), 403, 'forbidden');
  });

  test("an admin's key is not an admin: admin routes refuse it with 403", async () => {
    const admin = await registerUser(t.api, 'Admin');
    await t.app.repos.db.execute(sql`update users set role = 'admin' where id = ${admin.id}`);
    expect((await request('GET', `${t.api}/usage?all=true`, { token: admin.accessToken })).status).toBe(200);
    const { body } = await createKey(admin, { name: 'ops' });

    expectError(await withKey('GET', `${t.api}/usage?all=true`, body.secret), 403, 'forbidden');
    expectError(await withKey('GET', `${t.api}/metrics/json`, body.secret), 403, 'forbidden');
    // An admin's session may change tiers; the same admin's key may not.
    expect(
      (await request('PUT', `${t.api}/admin/users/${admin.id}/tier`, { token: admin.accessToken, body: { tier: 'pro' } })).status,
    ).toBe(200);
    expectError(await withKey('PUT', `${t.api}/admin/users/${admin.id}/tier`, body.secret, { tier: 'free' }), 403, 'forbidden');
    expect((await withKey('GET', `${t.api}/me`, body.secret)).body.user.admin).toBe(false);
  });

  test('an expired key is 401', async () => {
    const user = await registerUser(t.api, 'Expiry');
    const { body } = await createKey(user, { name: 'short', expiresAt: new Date(Date.now() + 60_000).toISOString() });
    expect((await withKey('GET', `${t.api}/me`, body.secret)).status).toBe(200);

    await t.app.repos.db.execute(sql`update api_keys set expires_at = now() - interval '1 second' where id = ${body.apiKey.id}`);

    expectError(await withKey('GET', `${t.api}/me`, body.secret), 401, 'unauthorized');
  });

  test('bad input is 400 in the error shape and writes nothing', async () => {
    const user = await registerUser(t.api, 'Bad');
    const bad = [
      { name: 'x'.repeat(101) },
      { name: '' },
      { name: 'lone \ud800 surrogate' },
      { name: 'admin', scopes: ['admin'] },
      { name: 'none', scopes: [] },
      { name: 'past', expiresAt: new Date(Date.now() - 1000).toISOString() },
      { name: 'not a date', expiresAt: 'tomorrow' },
      { name: 'extra', owner: 'someone' },
    ];
    for (const body of bad) {
      const res = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, rawBody: JSON.stringify(body) });
      expect([res.status, res.body.error?.code]).toEqual([400, expect.any(String)]);
    }
    const notJson = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, rawBody: '{"name":', headers: {} });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toEqual(expect.any(String));

    const list = await request('GET', `${t.api}/api-keys`, { token: user.accessToken });
    expect(list.body.apiKeys).toEqual([]);
    expectError(await request('DELETE', `${t.api}/api-keys/not-a-uuid`, { token: user.accessToken }), 404, 'not_found');
  });

  test("another user's key cannot be revoked (404), and the list pages", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const stranger = await registerUser(t.api, 'Stranger');
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) ids.push((await createKey(owner, { name })).body.apiKey.id);

    expectError(await request('DELETE', `${t.api}/api-keys/${ids[0]}`, { token: stranger.accessToken }), 404, 'not_found');

    const first = await request('GET', `${t.api}/api-keys?limit=2`, { token: owner.accessToken });
    const second = await request('GET', `${t.api}/api-keys?limit=2&cursor=${first.body.nextCursor}`, { token: owner.accessToken });
    expect([...first.body.apiKeys, ...second.body.apiKeys].map((key: { id: string }) => key.id)).toEqual([...ids].reverse());
    expect(second.body.nextCursor).toBeNull();
  });

  test('sockets: a write key connects, a read key does not, and revoking the key disconnects its socket', async () => {
    const user = await registerUser(t.api, 'Socket');
    const writer = (await createKey(user, { name: 'socket' })).body;
    const reader = (await createKey(user, { name: 'socket-read', scopes: ['read'] })).body;

    await expect(connectCanvas(t.url, reader.secret, 20_000)).rejects.toThrow('unauthorized');
    const socket = await connectCanvas(other.url!, writer.secret, 20_000);
    try {
      const closed = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
      await request('DELETE', `${t.api}/api-keys/${writer.apiKey.id}`, { token: user.accessToken });
      await within(closed, 20_000, 'the revoked key socket to disconnect');
    } finally {
      socket.close();
    }
  });

  test('repeated wrong keys from one address are 429 with Retry-After; a good key still works, other addresses are not limited', async () => {
    const user = await registerUser(t.api, 'Brute');
    const good = (await createKey(user, { name: 'good' })).body.secret;
    // Its own client address (the nodes trust the loopback proxy's X-Forwarded-For), so other tests' addresses stay unlocked.
    const from = (ip: string, key: string, api = otherApi) =>
      request('GET', `${api}/me`, { token: key, headers: { 'x-forwarded-for': ip } });
    const statuses: number[] = [];
    let limited: JsonResponse | undefined;
    for (let attempt = 0; attempt < 12 && !limited; attempt++) {
      const res = await from('203.0.113.7', `sb_live_wrong${attempt}`);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }

    expect(statuses).toEqual([...Array(9).fill(401), 429]);
    expect(limited?.body.error.code).toBe('rate_limited');
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await from('203.0.113.7', 'sb_live_wrong-again', t.api)).status).toBe(429);
    expect((await from('203.0.113.7', good)).status).toBe(200);
    expect((await from('198.51.100.1', 'sb_live_wrong')).status).toBe(401);
  });

  test('the TS client with apiKey acts as its user; keys are managed with a session only', async () => {
    const session = createSwitchboardClient({ baseUrl: t.url });
    await session.auth.register({ email: `sdk-${randomUUID().slice(0, 8)}@example.test`, password: 'correct horse battery', name: 'Sdk' });
    const { apiKey, secret } = await session.apiKeys.create({ name: 'sdk', scopes: ['read', 'write'] });

    const program = createSwitchboardClient({ baseUrl: `${other.url}`, apiKey: secret });
    const { canvas } = await program.canvases.create({ title: 'From a program' });
    expect((await program.canvases.get(canvas.id)).canvas.title).toBe('From a program');
    await expect(program.apiKeys.list()).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    const room = await connectSdkCanvas({ url: program.serverUrl, token: () => program.freshAccessToken(), reconnection: false });
    try {
      expect((await room.join(canvas.id, 20_000)).ok).toBe(true);
    } finally {
      room.close();
    }

    expect((await session.apiKeys.list()).apiKeys.map((key) => key.id)).toEqual([apiKey.id]);
    await session.apiKeys.revoke(apiKey.id);
    await expect(program.auth.me()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });

  test('the generated Python client takes api_key', async () => {
    const user = await registerUser(t.api, 'Py');
    const { secret } = (await createKey(user, { name: 'py', scopes: ['read'] })).body;
    const script = [
      'import sys',
      `sys.path.insert(0, ${JSON.stringify(path.resolve(__dirname, '../../clients/python'))})`,
      'from switchboard_client import Client, ApiError',
      'sb = Client(sys.argv[1], api_key=sys.argv[2])',
      'print(sb.auth.get_me()["user"]["id"])',
      'try:',
      '    sb.canvases.create_canvas("no")',
      'except ApiError as error:',
      '    print(error.status, error.code)',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, t.url, secret], { timeout: 60_000 });
    expect(stdout.trim().split('\n')).toEqual([user.id, '403 forbidden']);
  });

  test('SSE routes authenticate a key like any route: a read key reaches the stream route, a revoked one is 401', async () => {
    const user = await registerUser(t.api, 'Sse');
    const canvasId = await createCanvas(t.api, user, 'Streams');
    const { body } = await createKey(user, { name: 'sse', scopes: ['read'] });
    const events = `${t.api}/canvases/${canvasId}/ai/generations/${randomUUID()}/events`;

    const reached = await readSse(events, { token: body.secret, timeoutMs: 20_000 });
    expect([reached.status, reached.body?.error?.code]).toEqual([404, 'not_found']);

    await request('DELETE', `${t.api}/api-keys/${body.apiKey.id}`, { token: user.accessToken });
    const refused = await readSse(events, { headers: { 'x-api-key': body.secret }, timeoutMs: 20_000 });
    expect([refused.status, refused.body?.error?.code]).toEqual([401, 'unauthorized']);
  });

  test('a canvas made with a key is the user’s own', async () => {
    const user = await registerUser(t.api, 'Owner2');
    const key = (await createKey(user, { name: 'k' })).body.secret;
    const canvasId = await createCanvas(t.api, user, 'Mine');
    const res = await withKey('GET', `${t.api}/canvases/${canvasId}`, key);
    expect(res.status).toBe(200);
  });
});

const run = promisify(execFile);

function expectError(res: JsonResponse, status: number, code: string) {
  expect([res.status, res.body?.error?.code]).toEqual([status, code]);
  expect(res.body.error.message).toEqual(expect.any(String));
}

function rows<T>(result: unknown): T[] {
  return (result as { rows?: T[] }).rows ?? (result as T[]);
}
