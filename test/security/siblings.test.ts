import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createSwitchboardClient } from '@switchboard/client';
import { createLogger } from '../../src/lib/logger';
import { canvasMembers, chatMessages, chatSessions, users } from '../../src/models/schema';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { addMember, createCanvas, registerUser, request, type JsonResponse, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { WsDevice } from '../support/ws-device';

/**
 * The siblings of 0069's pagination: a chat session's history and a canvas's
 * members come in pages too (`?limit` ≤ 200, `?cursor`, `nextCursor`, foreign cursors 400). History
 * pages walk back from the newest message, each page reading oldest → newest (0100).
 */
describe('security: history and members are paginated', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  }, 120_000);
  afterAll(async () => {
    await t.stop();
  }, 60_000);

  /** A session of `count` messages `"<tag> i"`, inserted in order (setup only; reads stay black box). */
  const seedSession = async (user: TestUser, count: number, tag: string) => {
    const [session] = await t.app.repos.db.insert(chatSessions).values({ userId: user.id }).returning();
    const rows = Array.from({ length: count }, (_, i) => ({
      sessionId: session.id,
      role: i % 2 ? ('assistant' as const) : ('user' as const),
      content: `${tag} ${i}`,
    }));
    // One insert: the rows share a timestamp, so only `seq` orders them.
    await t.app.repos.db.insert(chatMessages).values(rows);
    return session.id;
  };
  const texts = (body: { messages: Array<{ content: string }> }) => body.messages.map((m) => m.content);
  const range = (tag: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${tag} ${from + i}`);

  test('GET /chat/sessions/:id/history: the first page is the latest messages oldest → newest; nextCursor walks back to the first', async () => {
    const user = await registerUser(t.api, 'Historian');
    const sessionId = await seedSession(user, 230, 'msg');
    const history = (query = '') => request('GET', `${t.api}/chat/sessions/${sessionId}/history${query}`, { token: user.accessToken });

    const latest = await history();
    expect(latest.status).toBe(200);
    expect(latest.body.session.id).toBe(sessionId);
    expect(texts(latest.body)).toEqual(range('msg', 30, 230));
    expect(latest.body.nextCursor).toEqual(expect.any(String));
    const earliest = await history(`?cursor=${encodeURIComponent(latest.body.nextCursor)}`);
    expect(texts(earliest.body)).toEqual(range('msg', 0, 30));
    expect(earliest.body.nextCursor).toBeNull();

    // Small pages: each in reading order, together every message once.
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page = await history(`?limit=64${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      pages.unshift(texts(page.body));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([38, 64, 64, 64]);
    expect(pages.flat()).toEqual(range('msg', 0, 230));

    // A message added while paging does not shift the older pages (keyset, not offsets).
    const page1 = await history('?limit=100');
    await t.app.repos.db.insert(chatMessages).values({ sessionId, role: 'user', content: 'late' });
    const page2 = await history(`?limit=100&cursor=${encodeURIComponent(page1.body.nextCursor)}`);
    expect(texts(page2.body)).toEqual(range('msg', 30, 130));

    // The SDK reads one page, or the whole conversation.
    const client = createSwitchboardClient({ baseUrl: t.url, accessToken: user.accessToken });
    expect((await client.chat.history(sessionId, { limit: 2 })).messages.map((m) => m.content)).toEqual(['msg 229', 'late']);
    expect((await client.chat.historyAll(sessionId)).messages.map((m) => m.content)).toEqual([...range('msg', 0, 230), 'late']);
  });

  test('history: a short session is whole with nextCursor null; bad limits and foreign cursors are 400; a stranger gets 404', async () => {
    const user = await registerUser(t.api, 'Brief');
    const stranger = await registerUser(t.api, 'Nosy');
    const sessionId = await seedSession(user, 3, 'short');
    const url = `${t.api}/chat/sessions/${sessionId}/history`;

    const whole = await request('GET', url, { token: user.accessToken });
    expect(whole.status).toBe(200);
    expect(texts(whole.body)).toEqual(range('short', 0, 3));
    expect(whole.body.nextCursor).toBeNull();

    const foreign = Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', 'x'])).toString('base64url');
    for (const query of [
      '?limit=0',
      '?limit=201',
      '?limit=abc',
      '?cursor=%F0%9F',
      `?cursor=${foreign}`,
      `?cursor=${Buffer.from('[-1]').toString('base64url')}`,
      '?page=2',
    ]) {
      const res = await request('GET', `${url}${query}`, { token: user.accessToken });
      expect([query, res.status]).toEqual([query, 400]);
      expect(['validation_failed', 'invalid_cursor']).toContain(res.body.error.code);
    }
    // A cursor from the owner's session does not open someone else's.
    const walk = await request('GET', `${url}?limit=1`, { token: user.accessToken });
    expect(
      (await request('GET', `${url}?cursor=${encodeURIComponent(walk.body.nextCursor)}`, { token: stranger.accessToken })).status,
    ).toBe(404);
  });

  test('a canvas of 230 members: GET /canvases/:id embeds the first 200 with membersNextCursor; the members list continues from it', async () => {
    const owner = await registerUser(t.api, 'Popular');
    const canvasId = await createCanvas(t.api, owner, 'Stadium');
    // Setup only: 229 accounts and memberships in one statement each (registration would cost 229 argon2 hashes).
    const tag = randomUUID().slice(0, 8);
    const made = await t.app.repos.db
      .insert(users)
      .values(Array.from({ length: 229 }, (_, i) => ({ email: `fan-${tag}-${i}@example.test`, name: `Fan ${i}` })))
      .returning({ id: users.id });
    for (const [i, row] of made.entries())
      await t.app.repos.db
        .insert(canvasMembers)
        .values({ canvasId, userId: row.id, role: 'viewer', createdAt: new Date(Date.now() + 1000 + i) });

    const withCanvas = await request('GET', `${t.api}/canvases/${canvasId}`, { token: owner.accessToken });
    expect(withCanvas.status).toBe(200);
    expect(withCanvas.body.members).toHaveLength(200);
    expect(withCanvas.body.members[0].userId).toBe(owner.id);
    expect(withCanvas.body.membersNextCursor).toEqual(expect.any(String));
    const rest = await request(
      'GET',
      `${t.api}/canvases/${canvasId}/members?cursor=${encodeURIComponent(withCanvas.body.membersNextCursor)}`,
      { token: owner.accessToken },
    );
    expect(rest.status).toBe(200);
    expect(rest.body.nextCursor).toBeNull();
    expect([...withCanvas.body.members, ...rest.body.members].map((m: { userId: string }) => m.userId)).toEqual([
      owner.id,
      ...made.map((row) => row.id),
    ]);
  });

  test('GET /canvases/:id/members: pages in join order (owner first), nextCursor, 400 on foreign cursors', async () => {
    const owner = await registerUser(t.api, 'Host');
    const canvasId = await createCanvas(t.api, owner, 'Crowded');
    const guests: TestUser[] = [];
    for (let i = 0; i < 5; i++) {
      const guest = await registerUser(t.api, `Guest${i}`);
      await addMember(t.api, owner, canvasId, guest, i % 2 ? 'viewer' : 'editor');
      guests.push(guest);
    }
    const url = `${t.api}/canvases/${canvasId}/members`;

    const whole = await request('GET', url, { token: guests[1].accessToken });
    expect(whole.status).toBe(200);
    expect(whole.body.members.map((m: { userId: string }) => m.userId)).toEqual([owner.id, ...guests.map((g) => g.id)]);
    expect(whole.body.nextCursor).toBeNull();

    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page: JsonResponse = await request('GET', `${url}?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
        token: owner.accessToken,
      });
      expect(page.status).toBe(200);
      expect(page.body.members.length).toBeLessThanOrEqual(2);
      walked.push(...page.body.members.map((m: { userId: string }) => m.userId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(walked).toEqual([owner.id, ...guests.map((g) => g.id)]);

    // GET /canvases/:id embeds the first page and says whether more follow.
    const withCanvas = await request('GET', `${t.api}/canvases/${canvasId}`, { token: owner.accessToken });
    expect(withCanvas.body.members.map((m: { userId: string }) => m.userId)).toEqual(walked);
    expect(withCanvas.body.membersNextCursor).toBeNull();

    const client = createSwitchboardClient({ baseUrl: t.url, accessToken: owner.accessToken });
    const first = await client.members.list(canvasId, { limit: 4 });
    expect(first.members).toHaveLength(4);
    expect((await client.members.list(canvasId, { cursor: first.nextCursor! })).members.map((m) => m.userId)).toEqual(
      guests.slice(3).map((g) => g.id),
    );

    for (const query of ['?limit=0', '?limit=201', '?cursor=bm9wZQ', '?cursor=W1swXV0', '?sort=name']) {
      const res = await request('GET', `${url}${query}`, { token: owner.accessToken });
      expect([query, res.status]).toEqual([query, 400]);
    }
    const outsider = await registerUser(t.api, 'Outsider');
    expect((await request('GET', url, { token: outsider.accessToken })).status).toBe(404);
  });
});

/**
 * A signed-out session's plain-WebSocket devices close too, on whichever API node holds them
 * (0102): Socket.IO sockets already did (rooms through the adapter); WebSockets are reached through
 * the device relay's Redis pub/sub. Two API nodes on one database and Redis.
 */
describe("security: logout closes the session's WebSocket devices on every node", () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  const nodes: RunningSwitchboard[] = [];
  const open: WsDevice[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(demoResponder);
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    for (const roles of ['api,worker', 'api']) {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: roles } });
      nodes.push(
        await startSwitchboard(config, {
          logger: createLogger({ level: 'silent' }),
          endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    open.forEach((device) => device.close());
    for (const node of [...nodes].reverse()) await node.stop();
    await llm?.close();
    await database?.drop();
  }, 60_000);

  /** Resolves with the close, or rejects after `ms` (so a connection that stays open fails the test, not the timeout). */
  const closedWithin = (device: WsDevice, ms = 20_000) =>
    Promise.race([
      device.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the websocket stayed open')), ms).unref()),
    ]);

  test("POST /auth/logout on node A closes that session's WebSockets on A and B with session_revoked and 4002; another session's stays; the token is 401 at the upgrade", async () => {
    const [a, b] = nodes.map((node) => node.url!);
    const user = await registerUser(`${a}/api/v1`, 'Leaver');
    const login = await request('POST', `${a}/api/v1/auth/login`, { body: { email: user.email, password: 'correct horse battery' } });
    expect(login.status).toBe(200);
    const other = login.body as { accessToken: string; refreshToken: string };

    const onB = await WsDevice.hello(b, user.accessToken, `laptop-${randomUUID().slice(0, 6)}`);
    const onA = await WsDevice.hello(a, user.accessToken, `tablet-${randomUUID().slice(0, 6)}`);
    const otherSession = await WsDevice.hello(b, other.accessToken, `desk-${randomUUID().slice(0, 6)}`);
    open.push(onB, onA, otherSession);
    // Served (hello handled): a bad frame gets its error frame.
    for (const device of [onB, onA, otherSession]) {
      device.send({ type: 'nonsense' });
      await device.next('error', (frame) => frame.code === 'unknown_type');
    }

    const logout = await request('POST', `${a}/api/v1/auth/logout`, { body: { refreshToken: user.refreshToken } });
    expect(logout.status).toBe(204);

    for (const device of [onB, onA]) {
      expect(await closedWithin(device)).toEqual({ code: 4002, reason: 'session revoked' });
      expect(device.all('error').map((frame) => frame.code)).toContain('session_revoked');
    }
    // The other sign-in session of the same user is untouched.
    const mark = otherSession.frames.length;
    otherSession.send({ type: 'nonsense' });
    await otherSession.next('error', (frame) => frame.code === 'unknown_type', { from: mark });
    expect(otherSession.open).toBe(true);
    expect(otherSession.all('error').map((frame) => frame.code)).not.toContain('session_revoked');

    // The revoked session's access token no longer opens a WebSocket, on either node.
    for (const node of [a, b]) await expect(WsDevice.connect(node, user.accessToken)).rejects.toThrow('status 401');
  });

  test('refresh-token reuse revokes the family: the WebSocket opened with a token of that family closes on the other node with 4002', async () => {
    const [a, b] = nodes.map((node) => node.url!);
    const user = await registerUser(`${a}/api/v1`, 'Reused');
    const rotated = await request('POST', `${a}/api/v1/auth/refresh`, { body: { refreshToken: user.refreshToken } });
    expect(rotated.status).toBe(200);
    // A WebSocket with the NEW access token (same family), on node B.
    const device = await WsDevice.hello(b, rotated.body.accessToken, `phone-${randomUUID().slice(0, 6)}`);
    open.push(device);
    device.send({ type: 'nonsense' });
    await device.next('error', (frame) => frame.code === 'unknown_type');

    const reuse = await request('POST', `${a}/api/v1/auth/refresh`, { body: { refreshToken: user.refreshToken } });
    expect(reuse.status).toBe(401);

    expect(await closedWithin(device)).toEqual({ code: 4002, reason: 'session revoked' });
    expect(device.all('error').map((frame) => frame.code)).toContain('session_revoked');
  });
});
