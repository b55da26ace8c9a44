import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { SignJWT } from 'jose';
import { io, type Socket } from 'socket.io-client';
import { users } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * Access tokens: a token must carry `exp`, and a token whose user no
 * longer exists is refused everywhere — every route of the OpenAPI document and both socket
 * namespaces — with 401, never a 500.
 */
const SECRET = new TextEncoder().encode('test-secret-test-secret-test-secret-0123456789');

async function sign(claims: Record<string, unknown>, options: { exp?: number | null } = {}) {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('switchboard')
    .setAudience('switchboard-api')
    .setIssuedAt();
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600);
  return jwt.sign(SECRET);
}

/** Connects to a namespace; resolves 'connected' or the connect_error message. */
function handshake(url: string, namespace: string, auth: Record<string, unknown>): Promise<string> {
  const socket: Socket = io(`${url}${namespace}`, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (socket.close(), reject(new Error('handshake timed out'))), 10_000);
    socket.once('connect', () => (clearTimeout(timer), socket.close(), resolve('connected')));
    socket.once('connect_error', (error) => (clearTimeout(timer), socket.close(), resolve(error.message)));
  });
}

/** Every operation of the OpenAPI document that requires a token, with path parameters filled in. */
async function authenticatedOperations(t: TestApp): Promise<Array<{ method: string; url: string }>> {
  const doc = (await request('GET', `${t.api}/openapi.json`)).body;
  const operations: Array<{ method: string; url: string }> = [];
  for (const [path, item] of Object.entries<Record<string, { security?: unknown[] }>>(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const security = operation.security ?? doc.security ?? [];
      if (!Array.isArray(security) || security.length === 0 || security.every((s) => Object.keys(s as object).length === 0)) continue;
      const filled = path.replace(/\{[^}]+\}/g, () => randomUUID());
      operations.push({ method: method.toUpperCase(), url: `${t.url}${filled.startsWith('/api/v1') ? '' : '/api/v1'}${filled}` });
    }
  }
  return operations;
}

describe('security: access tokens', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  }, 120_000);

  afterAll(async () => {
    await t.stop();
  }, 60_000);

  const claimsOf = (user: TestUser) => ({ sub: user.id, email: user.email, name: user.name, tier: 'free', role: 'user' });

  test('a validly signed token without exp is 401 on the API and refused by both socket handshakes', async () => {
    const user = await registerUser(t.api, 'NoExp');
    const forever = await sign(claimsOf(user), { exp: null });
    const withExp = await sign(claimsOf(user));

    // The same claims with an exp work: only the missing exp is refused.
    expect((await request('GET', `${t.api}/me`, { token: withExp })).status).toBe(200);
    const me = await request('GET', `${t.api}/me`, { token: forever });
    const create = await request('POST', `${t.api}/canvases`, { token: forever, body: { title: 'Forever' } });

    expect(me.status).toBe(401);
    expect(me.body.error.code).toBe('unauthorized');
    expect(create.status).toBe(401);
    expect(await handshake(t.url, '/canvas', { token: forever })).toBe('unauthorized');
    expect(await handshake(t.url, '/device', { token: forever, deviceId: 'laptop-1' })).toBe('unauthorized');
    expect(await handshake(t.url, '/canvas', { token: withExp })).toBe('connected');
  });

  test('a token whose user was deleted is 401 on every authenticated route of the OpenAPI document and on both sockets, never a 500', async () => {
    const user = await registerUser(t.api, 'Gone');
    const other = await registerUser(t.api, 'Stays');
    expect((await request('POST', `${t.api}/canvases`, { token: user.accessToken, body: { title: 'Before' } })).status).toBe(201);
    expect(await handshake(t.url, '/canvas', { token: user.accessToken })).toBe('connected');

    await t.app.repos.db.delete(users).where(eq(users.id, user.id));

    const operations = await authenticatedOperations(t);
    expect(operations.length).toBeGreaterThan(40);
    const answers = await Promise.all(
      operations.map(async (op) => ({
        op: `${op.method} ${op.url}`,
        status: (
          await request(op.method, op.url, {
            token: user.accessToken,
            body: op.method === 'GET' || op.method === 'DELETE' ? undefined : {},
          })
        ).status,
      })),
    );
    expect(answers.filter((answer) => answer.status !== 401)).toEqual([]);
    expect(await handshake(t.url, '/canvas', { token: user.accessToken })).toBe('unauthorized');
    expect(await handshake(t.url, '/device', { token: user.accessToken, deviceId: 'laptop-1' })).toBe('unauthorized');
    // Signing in again is no way back either, and nobody else is affected.
    expect((await request('POST', `${t.api}/auth/refresh`, { body: { refreshToken: user.refreshToken } })).status).toBe(401);
    expect((await request('POST', `${t.api}/canvases`, { token: other.accessToken, body: { title: 'Fine' } })).status).toBe(201);
  });

  test('a token with a sub that never was a user (not even a UUID) is 401, not a 500', async () => {
    const ghost = await sign({ sub: 'not-a-uuid', email: 'ghost@example.test', name: 'Ghost', tier: 'free', role: 'user' });
    const ghostUuid = await sign({ sub: randomUUID(), email: 'ghost2@example.test', name: 'Ghost', tier: 'free', role: 'user' });

    for (const token of [ghost, ghostUuid]) {
      expect((await request('POST', `${t.api}/canvases`, { token, body: { title: 'Ghost' } })).status).toBe(401);
      expect((await request('GET', `${t.api}/canvases`, { token })).status).toBe(401);
      expect(await handshake(t.url, '/canvas', { token })).toBe('unauthorized');
    }
  });
});
