import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { waitUntil, within } from '../support/wait';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { hashApiKey } from '../../src/auth/api-keys';
import { hashRefreshToken } from '../../src/auth/tokens';
import { createLogger } from '../../src/lib/logger';
import { rowsOf } from '../../src/models/migrate';
import { EXPORT_PAGE_ROWS } from '../../src/account/json-writer';
import { EXPORTS_PER_HOUR } from '../../src/http/routes/account-routes';
import {
  chatMessages,
  chatSessions,
  cloudAgents,
  flowEmbeds,
  flowVersions,
  httpCredentials,
  flows,
  llmUsage,
  oauthCredentials,
  psaConnections,
  systemAudit,
  users,
} from '../../src/models/schema';

/**
 * A user's own data, out (GET /me/export) or gone (DELETE /me), black box over real HTTP, Redis,
 * PostgreSQL and Socket.IO, on two API nodes sharing one database and one Redis.
 */
describe('account export and deletion', () => {
  let database: TestDatabase;
  let a: RunningSwitchboard;
  let b: RunningSwitchboard;
  let api: string;
  let otherApi: string;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    const config = testConfig({ keyPrefix: `t-${randomUUID().slice(0, 8)}`, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: 'api' } });
    a = await startSwitchboard(config, { logger: createLogger({ level: 'silent' }) });
    b = await startSwitchboard(config, { logger: createLogger({ level: 'silent' }) });
    api = `${a.url}/api/v1`;
    otherApi = `${b.url}/api/v1`;
  }, 120_000);

  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await database?.drop();
  });

  const db = () => a.repos.db;
  const addBlock = async (user: TestUser, canvasId: string, text: string) => {
    const res = await request('POST', `${api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text } },
    });
    expect(res.status).toBe(201);
    return res.body.block.id as string;
  };
  const createKey = async (user: TestUser, name: string) => {
    const res = await request('POST', `${api}/api-keys`, { token: user.accessToken, body: { name } });
    expect(res.status).toBe(201);
    return res.body.secret as string;
  };
  /** A chat session with two messages, written as the assistant would. */
  const chatWith = async (user: TestUser, words: string) => {
    const [session] = await db()
      .insert(chatSessions)
      .values({ userId: user.id, mode: 'none', title: `${words} title`, resolutionSummary: `${words} notes` })
      .returning();
    await db()
      .insert(chatMessages)
      .values([
        { sessionId: session.id, role: 'user', content: `${words} question` },
        { sessionId: session.id, role: 'assistant', content: `${words} answer` },
      ]);
    return session.id;
  };
  const exportOf = (user: TestUser) => request('GET', `${otherApi}/me/export`, { token: user.accessToken });

  test('an export holds the caller’s data and theirs only, and no secret the server stored', async () => {
    const alice = await registerUser(api, 'Alice');
    const bob = await registerUser(api, 'Bob');
    const aliceCanvas = await createCanvas(api, alice, 'Alice plans');
    await addBlock(alice, aliceCanvas, 'alice-block-text');
    const bobCanvas = await createCanvas(api, bob, 'Bob private plans');
    await addBlock(bob, bobCanvas, 'bob-block-text');
    await addMember(api, bob, bobCanvas, alice, 'editor');
    const zed = await registerUser(api, 'Zed');
    await addMember(api, bob, bobCanvas, zed, 'viewer');
    await addBlock(alice, bobCanvas, 'alice-on-bob-canvas');
    const aliceSession = await chatWith(alice, 'alice-chat');
    await chatWith(bob, 'bob-chat');
    const aliceKey = await createKey(alice, 'alice laptop');
    const bobKey = await createKey(bob, 'bob server');

    // Secrets stored as the OAuth vault and the embed widgets store them.
    const sealed = `sealed-${randomUUID()}`;
    const [credential] = await db()
      .insert(oauthCredentials)
      .values({ userId: alice.id, provider: 'gmail', keyId: 'k1', ciphertext: sealed, scope: 'mail.read' })
      .returning();
    await db()
      .insert(cloudAgents)
      .values({
        userId: alice.id,
        provider: 'gmail',
        name: 'Inbox tasks',
        dataTypes: ['tasks'],
        promptTemplate: 'Find tasks',
        credentialId: credential.id,
      });
    const psaSealed = `psa-sealed-${randomUUID()}`;
    await db().insert(psaConnections).values({
      userId: alice.id,
      provider: 'connectwise',
      baseUrl: 'https://psa.example.com/v4_6_release/apis/3.0',
      companyId: 'alice_msp',
      authType: 'member_keys',
      keyId: 'k1',
      ciphertext: psaSealed,
    });
    const [flow] = await db()
      .insert(flows)
      .values({ userId: alice.id, type: 'chatflow', name: 'Alice helpdesk', definition: { nodes: [] } })
      .returning();
    await db().insert(flowVersions).values({ flowId: flow.id, version: 1, definition: flow.definition });
    const sealedCredential = `v1.sealed-${randomUUID()}`;
    await db()
      .insert(httpCredentials)
      .values({
        userId: alice.id,
        name: 'alice_api',
        scheme: 'header',
        headerName: 'X-Api-Key',
        sealedValue: sealedCredential,
        origins: ['https://api.alice.example'],
      });
    const embedHash = `embed-${randomUUID()}`;
    await db()
      .insert(flowEmbeds)
      .values({ flowId: flow.id, userId: alice.id, tokenHash: embedHash, allowedOrigins: ['https://alice.example'], flowVersion: 1 });
    await db()
      .insert(llmUsage)
      .values({ userId: alice.id, purpose: 'chat', provider: 'p', model: 'm', inputTokens: 7, outputTokens: 11, costUsd: 0.5 });

    const res = await exportOf(alice);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="switchboard-export-\d{4}-\d{2}-\d{2}\.json"$/);
    const doc = res.body;
    expect(doc.format).toBe('switchboard.account-export.v1');
    expect(doc.profile).toMatchObject({ id: alice.id, email: alice.email, name: 'Alice' });
    expect(doc.canvases).toHaveLength(1);
    expect(doc.canvases[0]).toMatchObject({ id: aliceCanvas, title: 'Alice plans' });
    expect(doc.canvases[0].blocks.map((block: { content: { text: string } }) => block.content.text)).toEqual(['alice-block-text']);
    expect(doc.memberships).toEqual([{ canvasId: bobCanvas, role: 'editor', joinedAt: expect.any(String) }]);
    expect(doc.chatSessions).toHaveLength(1);
    expect(doc.chatSessions[0]).toMatchObject({ id: aliceSession, resolutionSummary: 'alice-chat notes' });
    expect(doc.chatSessions[0].messages.map((m: { content: string }) => m.content)).toEqual(['alice-chat question', 'alice-chat answer']);
    expect(doc.flows[0]).toMatchObject({
      id: flow.id,
      versions: [{ version: 1, definition: { nodes: [] } }],
      embeds: [{ allowedOrigins: ['https://alice.example'], version: 1 }],
      executions: [],
    });
    expect(doc.httpCredentials).toEqual([
      {
        name: 'alice_api',
        scheme: 'header',
        headerName: 'X-Api-Key',
        origins: ['https://api.alice.example'],
        createdAt: expect.any(String),
      },
    ]);
    expect(doc.agents.cloud[0]).toMatchObject({ name: 'Inbox tasks', credential: { id: credential.id, stored: true } });
    expect(doc.agents.connections).toEqual([expect.objectContaining({ id: credential.id, provider: 'gmail', stored: true })]);
    expect(doc.psaConnections).toEqual([
      expect.objectContaining({ provider: 'connectwise', companyId: 'alice_msp', authType: 'member_keys', credentials: { stored: true } }),
    ]);
    expect(JSON.stringify(doc)).not.toContain(psaSealed);
    expect(doc.usage).toEqual([expect.objectContaining({ inputTokens: 7, outputTokens: 11 })]);
    expect(doc.apiKeys).toEqual([expect.objectContaining({ name: 'alice laptop', scopes: ['read', 'write'] })]);

    const text = JSON.stringify(doc);
    const [stored] = await db().select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, alice.id));
    for (const secret of [
      stored.passwordHash!,
      alice.refreshToken,
      hashRefreshToken(alice.refreshToken),
      aliceKey,
      hashApiKey(aliceKey),
      aliceKey.slice(0, 14),
      sealed,
      sealedCredential,
      embedHash,
      'correct horse battery',
    ])
      expect(text).not.toContain(secret);
    expect(text).not.toMatch(/hash|ciphertext|password/i);
    // Nothing of Bob's: not his id, email, canvas title, blocks, chat or key — only the id of the canvas Alice edits.
    for (const his of [
      bob.id,
      bob.email,
      zed.id,
      'Bob private plans',
      'bob-block-text',
      'bob-chat',
      'bob server',
      bobKey,
      'alice-on-bob-canvas',
    ])
      expect(text).not.toContain(his);
  });

  test('lists longer than a page come out whole and in order', async () => {
    const frank = await registerUser(api, 'Frank');
    const count = 2 * EXPORT_PAGE_ROWS + 17;
    const [session] = await db().insert(chatSessions).values({ userId: frank.id, mode: 'none' }).returning();
    await db()
      .insert(chatMessages)
      .values(Array.from({ length: count }, (_, i) => ({ sessionId: session.id, role: 'user' as const, content: `message ${i}` })));
    await db()
      .insert(llmUsage)
      .values(
        Array.from({ length: count }, (_, i) => ({
          userId: frank.id,
          purpose: 'chat',
          provider: 'p',
          model: 'm',
          inputTokens: i,
          outputTokens: 0,
          costUsd: 0,
        })),
      );

    const res = await exportOf(frank);
    expect(res.status).toBe(200);
    expect(res.body.chatSessions[0].messages.map((m: { content: string }) => m.content)).toEqual(
      Array.from({ length: count }, (_, i) => `message ${i}`),
    );
    const tokens = res.body.usage.map((row: { inputTokens: number }) => row.inputTokens).sort((x: number, y: number) => x - y);
    expect(tokens).toEqual(Array.from({ length: count }, (_, i) => i));
  });

  test('an export needs a session and is limited per hour', async () => {
    const carol = await registerUser(api, 'Carol');
    const key = await createKey(carol, 'reader');
    const byKey = await request('GET', `${api}/me/export`, { token: key });
    expect(byKey.status).toBe(403);
    expect(byKey.body.error.code).toBe('forbidden');

    for (let i = 0; i < EXPORTS_PER_HOUR; i++) expect((await exportOf(carol)).status).toBe(200);
    const limited = await request('GET', `${api}/me/export`, { token: carol.accessToken });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('a deletion with a wrong or missing confirmation, or by API key, changes nothing', async () => {
    const dave = await registerUser(api, 'Dave');
    const key = await createKey(dave, 'writer');
    for (const body of [{ confirm: 'someone@example.test' }, {}, { confirm: '' }, { confirm: dave.email, extra: true }]) {
      const res = await request('DELETE', `${api}/me`, { token: dave.accessToken, body });
      expect(res.status).toBe(400);
    }
    const wrong = await request('DELETE', `${api}/me`, { token: dave.accessToken, body: { confirm: 'someone@example.test' } });
    expect(wrong.body.error).toMatchObject({ code: 'confirmation_mismatch', details: [{ path: 'confirm' }] });
    const byKey = await request('DELETE', `${api}/me`, { token: key, body: { confirm: dave.email } });
    expect(byKey.status).toBe(403);
    expect((await request('GET', `${api}/me`, { token: dave.accessToken })).status).toBe(200);
    expect((await request('GET', `${api}/me`, { token: key })).status).toBe(200);
  });

  test('deleting an account signs out every session and key on every node, hands shared canvases to the longest-standing editor, and is audited', async () => {
    const erin = await registerUser(api, 'Erin');
    const viewer = await registerUser(api, 'Viewer');
    const firstEditor = await registerUser(api, 'First');
    const laterEditor = await registerUser(api, 'Later');
    const other = await registerUser(api, 'Other');
    const shared = await createCanvas(api, erin, 'Shared');
    await addMember(api, erin, shared, viewer, 'viewer');
    await addMember(api, erin, shared, firstEditor, 'editor');
    await addMember(api, erin, shared, laterEditor, 'editor');
    const erinBlock = await addBlock(erin, shared, 'written by erin');
    const alone = await createCanvas(api, erin, 'Alone');
    await addBlock(erin, alone, 'only erin');
    const othersCanvas = await createCanvas(api, other, 'Other’s');
    await addMember(api, other, othersCanvas, erin, 'editor');
    await chatWith(erin, 'erin-chat');
    const key = await createKey(erin, 'writer');
    // A second sign-in session, besides the one registering opened.
    const login = await request('POST', `${api}/auth/login`, { body: { email: erin.email, password: 'correct horse battery' } });
    expect(login.status).toBe(200);

    // Sockets on the node that does NOT handle the deletion: one per session, one by the API key.
    const bySession = await connectCanvas(b.url!, erin.accessToken);
    const bySecondSession = await connectCanvas(b.url!, login.body.accessToken);
    const byKey = await connectCanvas(b.url!, key);
    sockets.push(bySession, bySecondSession, byKey);
    expect((await join(bySession, shared)).ok).toBe(true);
    const closed = [bySession, bySecondSession, byKey].map(
      (socket) => new Promise<void>((resolve) => socket.once('disconnect', () => resolve())),
    );

    const res = await request('DELETE', `${api}/me`, { token: erin.accessToken, body: { confirm: erin.email.toUpperCase() } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: true, canvasesDeleted: [alone], canvasesTransferred: [{ canvasId: shared, to: firstEditor.id }] });
    await within(Promise.all(closed), 10_000, 'every socket of the deleted account to disconnect');

    // Every credential is dead on every node.
    for (const base of [api, otherApi]) {
      expect((await request('GET', `${base}/me`, { token: erin.accessToken })).status).toBe(401);
      expect((await request('GET', `${base}/me`, { token: login.body.accessToken })).status).toBe(401);
      expect((await request('GET', `${base}/me`, { token: key })).status).toBe(401);
    }
    expect((await request('POST', `${api}/auth/refresh`, { body: { refreshToken: erin.refreshToken } })).status).toBe(401);
    expect((await request('POST', `${api}/auth/login`, { body: { email: erin.email, password: 'correct horse battery' } })).status).toBe(
      401,
    );
    await expect(connectCanvas(b.url!, erin.accessToken)).rejects.toThrow();

    // The shared canvas survives, owned by the editor who joined first, with what Erin wrote on it.
    const kept = await request('GET', `${api}/canvases/${shared}`, { token: firstEditor.accessToken });
    expect(kept.status).toBe(200);
    expect(kept.body.canvas).toMatchObject({ id: shared, ownerId: firstEditor.id, role: 'owner' });
    expect((await request('GET', `${api}/canvases/${shared}`, { token: viewer.accessToken })).body.canvas.role).toBe('viewer');
    expect((await request('GET', `${api}/canvases/${shared}`, { token: laterEditor.accessToken })).body.canvas.role).toBe('editor');
    const blocks = await request('GET', `${api}/canvases/${shared}/blocks`, { token: firstEditor.accessToken });
    expect(blocks.body.blocks.map((block: { id: string }) => block.id)).toContain(erinBlock);
    // Another user's canvas Erin edited is untouched, without Erin.
    const theirs = await request('GET', `${api}/canvases/${othersCanvas}`, { token: other.accessToken });
    expect(theirs.status).toBe(200);
    expect(theirs.body.members.map((member: { userId: string }) => member.userId)).not.toContain(erin.id);
    // The canvas only Erin had is gone, and so is everything of hers.
    const left = await db().execute<{ canvases: number; sessions: number; users: number }>(
      sql`select (select count(*)::int from canvases where id = ${alone}) as canvases,
                 (select count(*)::int from chat_sessions where user_id = ${erin.id}) as sessions,
                 (select count(*)::int from users where id = ${erin.id}) as users`,
    );
    expect(rowsOf(left)[0]).toEqual({ canvases: 0, sessions: 0, users: 0 });

    const audit = await db().select().from(systemAudit).where(eq(systemAudit.targetId, erin.id));
    expect(audit.map((row) => row.action)).toContain('account.deleted');
    expect(audit.find((row) => row.action === 'account.deleted')).toMatchObject({
      actorId: erin.id,
      details: { via: 'api', canvasesDeleted: 1, canvasesTransferred: 1 },
    });

    // Deleting again with a dead token is a 401, not a second deletion.
    expect((await request('DELETE', `${otherApi}/me`, { token: erin.accessToken, body: { confirm: erin.email } })).status).toBe(401);
  });
});

/** Work of the account still running when it is deleted, on every role in one process with a paced model. */
describe('account deletion while a generation runs', () => {
  const logs: string[] = [];
  let t: TestApp;

  beforeAll(async () => {
    const turn: ChatTurn = { toolCalls: Array.from({ length: 15 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })) };
    t = await startTestApp({ llmDelayMs: 30, responder: () => turn, logs: (line) => void logs.push(line) });
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
  });

  test('its result is dropped: nothing lands on the canvas its editor inherits', async () => {
    const erin = await registerUser(t.api, 'Erin');
    const heir = await registerUser(t.api, 'Heir');
    const canvasId = await createCanvas(t.api, erin, 'Shared');
    await addMember(t.api, erin, canvasId, heir, 'editor');

    const started = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: erin.accessToken,
      body: { prompt: 'Write fifteen paragraphs' },
      until: (m) => m.event === 'tool_output',
    });
    const generationId = started.headers.get('x-generation-id')!;
    const res = await request('DELETE', `${t.api}/me`, { token: erin.accessToken, body: { confirm: erin.email } });
    expect(res.status).toBe(200);
    expect(res.body.canvasesTransferred).toEqual([{ canvasId, to: heir.id }]);

    await waitUntil(() => logs.some((line) => line.includes(generationId) && line.includes('result dropped')), 20_000);
    const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: heir.accessToken });
    expect(blocks.status).toBe(200);
    expect(blocks.body.blocks).toEqual([]);
    const generation = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: heir.accessToken });
    expect(generation.status).toBe(404);
  });
});
