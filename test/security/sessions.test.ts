import { SignJWT } from 'jose';
import { io, type Socket } from 'socket.io-client';
import { connectCanvas as sdkConnectCanvas } from '@switchboard/client';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { waitUntil } from '../support/wait';

/**
 * Sessions: refresh-token reuse revokes the whole family even when it
 * races a rotation; logout revokes the family and its access tokens; a socket lives no longer than
 * its token unless it re-authenticates (`auth:refresh`); connection-state recovery authenticates.
 */
const SECRET = new TextEncoder().encode('test-secret-test-secret-test-secret-0123456789');
const PASSWORD = 'correct horse battery';

/** A validly signed token for `user` that expires in `seconds`. */
function shortToken(user: TestUser, seconds: number) {
  const exp = Math.floor(Date.now() / 1000) + seconds;
  return {
    exp,
    token: new SignJWT({ email: user.email, name: user.name, tier: 'free', role: 'user' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuer('switchboard')
      .setAudience('switchboard-api')
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(SECRET),
  };
}

function connect(
  url: string,
  namespace: string,
  auth: Record<string, unknown> | ((cb: (data: object) => void) => void),
  reconnection = false,
): Promise<Socket> {
  const socket = io(`${url}${namespace}`, { auth, transports: ['websocket'], reconnection, forceNew: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (socket.close(), reject(new Error('connect timed out'))), 10_000);
    socket.once('connect', () => (clearTimeout(timer), resolve(socket)));
    socket.once('connect_error', (error) => (clearTimeout(timer), socket.close(), reject(error)));
  });
}

/** Resolves with the disconnect reason, and what `auth:expired` said before it (if anything). */
function disconnection(socket: Socket, timeoutMs = 20_000): Promise<{ reason: string; expired?: string }> {
  let expired: string | undefined;
  socket.on('auth:expired', (payload: { reason: string }) => (expired = payload.reason));
  return new Promise((resolve, reject) => {
    if (!socket.connected) return resolve({ reason: 'already disconnected', expired });
    const timer = setTimeout(() => reject(new Error('socket was not disconnected')), timeoutMs);
    socket.once('disconnect', (reason) => (clearTimeout(timer), resolve({ reason, expired })));
  });
}

describe('security: sessions', () => {
  let t: TestApp;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    t = await startTestApp();
  }, 120_000);

  afterEach(() => sockets.splice(0).forEach((socket) => socket.close()));

  afterAll(async () => {
    await t.stop();
  }, 60_000);

  const refresh = (refreshToken: string) => request('POST', `${t.api}/auth/refresh`, { body: { refreshToken } });
  const me = (token: string) => request('GET', `${t.api}/me`, { token });
  const login = async (user: TestUser) => {
    const res = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: PASSWORD } });
    expect(res.status).toBe(200);
    return res.body as { accessToken: string; refreshToken: string };
  };

  test('two concurrent refreshes with one token: the loser gets refresh_token_reused and the whole family dies, the winner’s new tokens included (12 races)', async () => {
    const user = await registerUser(t.api, 'Race');
    for (let run = 0; run < 12; run++) {
      const session = await login(user);

      const [a, b] = await Promise.all([refresh(session.refreshToken), refresh(session.refreshToken)]);

      const winners = [a, b].filter((res) => res.status === 200);
      const losers = [a, b].filter((res) => res.status !== 200);
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      expect(losers[0].status).toBe(401);
      expect(losers[0].body.error.code).toBe('refresh_token_reused');
      const won = winners[0].body as { accessToken: string; refreshToken: string };
      const later = await refresh(won.refreshToken);
      expect(later.status).toBe(401);
      expect(['invalid_refresh_token', 'refresh_token_reused']).toContain(later.body.error.code);
      // The access tokens issued in the family stop working too.
      expect((await me(won.accessToken)).status).toBe(401);
      expect((await me(session.accessToken)).status).toBe(401);
    }
    // Another sign-in of the same user is its own family and unaffected.
    const fresh = await login(user);
    expect((await refresh(fresh.refreshToken)).status).toBe(200);
  });

  test('POST /auth/logout revokes the family: every refresh token of it, its access tokens and its open sockets; other sessions live on', async () => {
    const user = await registerUser(t.api, 'Logout');
    const other = await login(user);
    const rotated = await refresh(user.refreshToken);
    expect(rotated.status).toBe(200);
    const current = rotated.body as { accessToken: string; refreshToken: string };
    const socket = await connect(t.url, '/canvas', { token: current.accessToken });
    sockets.push(socket);
    const gone = disconnection(socket);

    const out = await request('POST', `${t.api}/auth/logout`, { body: { refreshToken: current.refreshToken } });

    expect(out.status).toBe(204);
    expect(await gone).toEqual({ reason: 'io server disconnect', expired: 'session_revoked' });
    expect((await refresh(current.refreshToken)).status).toBe(401);
    expect((await refresh(user.refreshToken)).status).toBe(401);
    expect((await me(current.accessToken)).status).toBe(401);
    expect((await me(user.accessToken)).status).toBe(401);
    await expect(connect(t.url, '/canvas', { token: current.accessToken })).rejects.toThrow('unauthorized');
    expect((await me(other.accessToken)).status).toBe(200);
    expect((await refresh(other.refreshToken)).status).toBe(200);
    // Logging out twice, or with a token nobody issued, is a quiet 204; a malformed body is a 400.
    expect((await request('POST', `${t.api}/auth/logout`, { body: { refreshToken: current.refreshToken } })).status).toBe(204);
    expect((await request('POST', `${t.api}/auth/logout`, { body: { refreshToken: 'never-issued' } })).status).toBe(204);
    expect((await request('POST', `${t.api}/auth/logout`, { body: {} })).status).toBe(400);
  });

  test('a socket whose access token expires is disconnected with auth:expired; one that sent auth:refresh in time stays and can still join', async () => {
    const user = await registerUser(t.api, 'Expiry');
    const canvasId = await createCanvas(t.api, user);
    const short = shortToken(user, 3);
    const [stale, renewed, device] = await Promise.all([
      connect(t.url, '/canvas', { token: await short.token }),
      connect(t.url, '/canvas', { token: await short.token }),
      connect(t.url, '/device', { token: await short.token, deviceId: 'laptop-expiry' }),
    ]);
    sockets.push(stale, renewed, device);
    const staleGone = disconnection(stale);
    const deviceGone = disconnection(device);

    const ack = await renewed.timeout(5_000).emitWithAck('auth:refresh', { token: user.accessToken });

    expect(ack).toEqual({ ok: true, expiresAt: expect.any(String) });
    expect(Date.parse(ack.expiresAt)).toBeGreaterThan(short.exp * 1000);
    expect(await staleGone).toEqual({ reason: 'io server disconnect', expired: 'token_expired' });
    expect(await deviceGone).toEqual({ reason: 'io server disconnect', expired: 'token_expired' });
    // The stale socket's expiry has passed; the renewed one (same original expiry) is still there.
    expect(renewed.connected).toBe(true);
    expect(await renewed.timeout(5_000).emitWithAck('canvas:join', canvasId)).toMatchObject({ ok: true });
  });

  test('sockets with different expiries each leave at their own second, none earlier, a socket closed meanwhile among them', async () => {
    const user = await registerUser(t.api, 'Staggered');
    const [soon, later] = [shortToken(user, 2), shortToken(user, 4)];
    const [first, second, closed] = await Promise.all([
      connect(t.url, '/canvas', { token: await soon.token }),
      connect(t.url, '/canvas', { token: await later.token }),
      connect(t.url, '/canvas', { token: await soon.token }),
    ]);
    sockets.push(first, second, closed);
    const firstGone = disconnection(first).then((result) => ({ ...result, at: Date.now(), secondConnected: second.connected }));
    const secondGone = disconnection(second).then((result) => ({ ...result, at: Date.now() }));
    closed.close();

    const one = await firstGone;
    expect(one).toMatchObject({ reason: 'io server disconnect', expired: 'token_expired', secondConnected: true });
    expect(one.at).toBeGreaterThanOrEqual(soon.exp * 1000);
    const two = await secondGone;
    expect(two).toMatchObject({ reason: 'io server disconnect', expired: 'token_expired' });
    expect(two.at).toBeGreaterThanOrEqual(later.exp * 1000);
  });

  test('auth:refresh refuses another user’s token, a token without exp, and junk; the socket keeps its own identity', async () => {
    const user = await registerUser(t.api, 'Refuse');
    const intruder = await registerUser(t.api, 'Intruder');
    const socket = await connect(t.url, '/device', { token: user.accessToken, deviceId: 'laptop-refuse' });
    sockets.push(socket);
    const noExp = await new SignJWT({ email: user.email, name: user.name, tier: 'free', role: 'user' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.id)
      .setIssuer('switchboard')
      .setAudience('switchboard-api')
      .sign(SECRET);

    const asks = await Promise.all([
      socket.timeout(5_000).emitWithAck('auth:refresh', { token: intruder.accessToken }),
      socket.timeout(5_000).emitWithAck('auth:refresh', { token: noExp }),
      socket.timeout(5_000).emitWithAck('auth:refresh', { token: 42 }),
      socket.timeout(5_000).emitWithAck('auth:refresh', 'x'.repeat(10_000)),
    ]);

    expect(asks.map((a) => a.error?.code)).toEqual(['forbidden', 'unauthorized', 'validation_failed', 'validation_failed']);
    expect(socket.connected).toBe(true);
  });

  test('connection-state recovery authenticates: a dropped socket whose token expired meanwhile is not restored', async () => {
    const user = await registerUser(t.api, 'Recover');
    const canvasId = await createCanvas(t.api, user);
    const short = shortToken(user, 4);
    const token = await short.token;
    const socket = await connect(t.url, '/canvas', (cb) => cb({ token }), false);
    sockets.push(socket);
    expect(await socket.timeout(5_000).emitWithAck('canvas:join', canvasId)).toMatchObject({ ok: true });
    // A broadcast gives the client an offset, which it sends back to ask for recovery.
    const added = new Promise((resolve) => socket.once('block_added', resolve));
    expect(
      (
        await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
          token: user.accessToken,
          body: { type: 'text', content: { text: 'x' } },
        })
      ).status,
    ).toBe(201);
    await added;

    (socket.io as unknown as { engine: { close(): void } }).engine.close();
    await waitUntil(() => !socket.connected, 5_000);
    await waitUntil(() => Date.now() > short.exp * 1000 + 500, 15_000);
    const outcome = new Promise<string>((resolve) => {
      socket.once('connect', () => resolve(socket.recovered ? 'recovered' : 'connected'));
      socket.once('connect_error', (error) => resolve(error.message));
    });
    socket.connect();

    expect(await outcome).toBe('unauthorized');
  });

  test('the SDK socket renews its token before expiry (auth:refresh from the token source) and outlives its first token', async () => {
    const user = await registerUser(t.api, 'Sdk');
    const canvasId = await createCanvas(t.api, user);
    const short = shortToken(user, 4);
    const first = await short.token;
    let asked = 0;
    const sdk = await sdkConnectCanvas({ url: t.url, reconnection: false, token: () => (asked++ === 0 ? first : user.accessToken) });
    sockets.push(sdk);
    // A plain socket with the same first token and no renewal marks the moment that token expired.
    const witness = await connect(t.url, '/canvas', { token: first });
    sockets.push(witness);

    expect(await disconnection(witness)).toEqual({ reason: 'io server disconnect', expired: 'token_expired' });

    expect(asked).toBeGreaterThanOrEqual(2);
    expect(sdk.connected).toBe(true);
    expect(await sdk.join(canvasId)).toMatchObject({ ok: true });
  });
});
