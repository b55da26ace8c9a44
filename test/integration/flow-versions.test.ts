import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { MIGRATIONS_DIR } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually, waitUntil } from '../support/wait';

/**
 * Flow versions: every save of a definition is an immutable version; one is published (what new
 * executions and the owner's chat turns run), publishing an older one rolls back; executions and
 * embeds keep the version they started with / were pinned to; another user's versions are 404.
 */

/** A node's tag: its prompt starts with `[tag]`. */
const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';
const systemOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'system') ?? { content: '' });

const twoNodes = (second: string) => ({
  nodes: [
    { id: 'a', prompt: '[a] facts about {{input.topic}}' },
    { id: 'b', prompt: `[${second}] use {{nodes.a.output}}`, dependsOn: ['a'] },
  ],
  output: 'b',
});

describe('flow versions', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  /** Node `a` waits for this when set (an execution held mid-way). */
  let holdA: Promise<void> | null = null;

  beforeAll(async () => {
    t = await startTestApp({
      responder: async (req): Promise<ChatTurn> => {
        const tag = tagOf(req);
        if (tag === 'a' && holdA) await holdA;
        return { text: tag === '?' ? `reply(${systemOf(req)})` : `out(${tag})` };
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(() => t.stop());

  const api = (method: string, user: TestUser, pathname: string, body?: unknown) =>
    request(method, `${t.api}${pathname}`, { token: user.accessToken, body });
  const createFlow = async (user: TestUser, body: Record<string, unknown>) => {
    const res = await api('POST', user, '/flows', body);
    expect(res.status).toBe(201);
    return res.body.flow as { id: string; publishedVersion: number; latestVersion: number; definition: unknown };
  };
  const finished = (flowId: string, executionId: string) =>
    eventually(
      () => api('GET', ada, `/flows/${flowId}/executions/${executionId}`),
      (res) => ['completed', 'failed'].includes(res.body.execution?.status),
    );
  const tagsOf = (before: number) => t.llm.chatRequests().slice(before).map(tagOf);

  test('each save is a new immutable version; draft, publish and rollback change what runs', async () => {
    const flow = await createFlow(ada, { type: 'agentflow', name: `Versions ${Date.now()}`, definition: twoNodes('b1') });
    expect(flow).toMatchObject({ publishedVersion: 1, latestVersion: 1 });

    const v2 = await api('PATCH', ada, `/flows/${flow.id}`, { definition: twoNodes('b2') });
    expect(v2.status).toBe(200);
    expect(v2.body.flow).toMatchObject({ publishedVersion: 2, latestVersion: 2, definition: twoNodes('b2') });
    // A draft: saved as version 3, not published.
    const v3 = await api('PATCH', ada, `/flows/${flow.id}`, { definition: twoNodes('b3'), publish: false });
    expect(v3.body.flow).toMatchObject({ publishedVersion: 2, latestVersion: 3, definition: twoNodes('b2') });
    // A rename is no version.
    const renamed = await api('PATCH', ada, `/flows/${flow.id}`, { name: 'Renamed' });
    expect(renamed.body.flow).toMatchObject({ name: 'Renamed', latestVersion: 3 });

    const list = await api('GET', ada, `/flows/${flow.id}/versions?limit=2`);
    expect(list.status).toBe(200);
    expect(list.body.versions.map((v: { version: number; published: boolean }) => [v.version, v.published])).toEqual([
      [3, false],
      [2, true],
    ]);
    expect(list.body.versions[0].definition).toBeUndefined();
    const older = await api('GET', ada, `/flows/${flow.id}/versions?limit=2&cursor=${list.body.nextCursor}`);
    expect(older.body).toMatchObject({ versions: [{ version: 1, published: false }], nextCursor: null });

    // Version 1 is as first saved, whatever was saved after it.
    const one = await api('GET', ada, `/flows/${flow.id}/versions/1`);
    expect(one.body.version).toMatchObject({ version: 1, published: false, definition: twoNodes('b1') });
    // The database refuses to change a version, whatever code tries.
    const refused = await t.app.repos.db
      .execute(sql`update flow_versions set definition = '{}'::jsonb where flow_id = ${flow.id} and version = 1`)
      .then(
        () => null,
        (error: Error) => String(error.cause),
      );
    expect(refused).toMatch(/flow versions are immutable/);

    // The published version runs; a draft runs only when asked for by number.
    let before = t.llm.chatRequests().length;
    const run2 = await api('POST', ada, `/flows/${flow.id}/execute`, { input: { topic: 'x' } });
    expect((await finished(flow.id, run2.body.executionId)).body.execution).toMatchObject({ status: 'completed', flowVersion: 2 });
    expect(tagsOf(before)).toEqual(['a', 'b2']);
    before = t.llm.chatRequests().length;
    const draft = await api('POST', ada, `/flows/${flow.id}/execute`, { input: { topic: 'x' }, version: 3 });
    expect((await finished(flow.id, draft.body.executionId)).body.execution).toMatchObject({ status: 'completed', flowVersion: 3 });
    expect(tagsOf(before)).toEqual(['a', 'b3']);

    // Rollback: publish version 1.
    const rolledBack = await api('POST', ada, `/flows/${flow.id}/versions/1/publish`);
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body.flow).toMatchObject({ publishedVersion: 1, latestVersion: 3, definition: twoNodes('b1') });
    before = t.llm.chatRequests().length;
    const run1 = await api('POST', ada, `/flows/${flow.id}/execute`, { input: { topic: 'x' } });
    expect((await finished(flow.id, run1.body.executionId)).body.execution).toMatchObject({ status: 'completed', flowVersion: 1 });
    expect(tagsOf(before)).toEqual(['a', 'b1']);

    // The next save is version 4, published; missing or malformed versions are 404, never a 500.
    const v4 = await api('PATCH', ada, `/flows/${flow.id}`, { definition: twoNodes('b4') });
    expect(v4.body.flow).toMatchObject({ publishedVersion: 4, latestVersion: 4 });
    for (const bad of ['5', '0', '-1', 'abc', '1.5', '99999999999', '%F0%9F%98%80'])
      expect([bad, (await api('GET', ada, `/flows/${flow.id}/versions/${bad}`)).status]).toEqual([bad, 404]);
    expect((await api('POST', ada, `/flows/${flow.id}/versions/9/publish`)).status).toBe(404);
    expect((await api('POST', ada, `/flows/${flow.id}/execute`, { input: { topic: 'x' }, version: 9 })).status).toBe(404);
    expect((await api('PATCH', ada, `/flows/${flow.id}`, { name: 'x', publish: false })).status).toBe(400);
    expect((await api('GET', ada, `/flows/${flow.id}/versions?cursor=bm9wZQ`)).status).toBe(400);
    expect((await api('GET', ada, `/flows/${flow.id}`)).body.flow.latestVersion).toBe(4);
  });

  test('an execution started before a publish runs the version it started with', async () => {
    const flow = await createFlow(ada, { type: 'agentflow', name: `Pinned ${Date.now()}`, definition: twoNodes('old') });
    let release!: () => void;
    holdA = new Promise((resolve) => (release = resolve));
    const before = t.llm.chatRequests().length;
    try {
      const started = await api('POST', ada, `/flows/${flow.id}/execute`, { input: { topic: 'y' } });
      expect(started.status).toBe(202);
      // Node `a` is at the model: publish a new version meanwhile.
      await waitUntil(() => tagsOf(before).includes('a'));
      const published = await api('PATCH', ada, `/flows/${flow.id}`, { definition: twoNodes('new') });
      expect(published.body.flow.publishedVersion).toBe(2);
      release();
      const done = await finished(flow.id, started.body.executionId);
      expect(done.body.execution).toMatchObject({ status: 'completed', flowVersion: 1, output: 'out(old)' });
      expect(tagsOf(before)).toEqual(['a', 'old']);
    } finally {
      release();
      holdA = null;
    }
  });

  test('an embed answers with the version it was created for until it is pinned to another', async () => {
    const flow = await createFlow(ada, { type: 'chatflow', name: `Embed ${Date.now()}`, definition: { systemPrompt: 'first' } });
    const created = await api('POST', ada, `/flows/${flow.id}/embeds`, { allowedOrigins: ['https://shop.example'] });
    expect(created.status).toBe(201);
    expect(created.body.embed.version).toBe(1);
    const token = created.body.embedToken as string;
    const visit = (message: string) => request('POST', `${t.api}/embed/public/${token}/chat`, { body: { message } });

    await api('PATCH', ada, `/flows/${flow.id}`, { definition: { systemPrompt: 'second' } });
    // The owner chats with the published version; the embed keeps version 1.
    const owner = await api('POST', ada, `/flows/${flow.id}/chat`, { message: 'hi' });
    expect(owner.body.response).toBe('reply(second)');
    const visitor = await visit('hello');
    expect(visitor.status).toBe(200);
    expect(visitor.body.response).toBe('reply(first)');

    // Re-pinned to version 2; a version the flow lacks is 404 and changes nothing.
    const missing = await api('PATCH', ada, `/flows/${flow.id}/embeds/${created.body.embedId}`, {
      allowedOrigins: ['https://shop.example'],
      version: 7,
    });
    expect(missing.status).toBe(404);
    expect((await visit('again')).body.response).toBe('reply(first)');
    const repinned = await api('PATCH', ada, `/flows/${flow.id}/embeds/${created.body.embedId}`, {
      allowedOrigins: ['https://shop.example'],
      version: 2,
    });
    expect(repinned.body.embed.version).toBe(2);
    expect((await visit('now')).body.response).toBe('reply(second)');
    // A new embed may be created for an older version.
    const old = await api('POST', ada, `/flows/${flow.id}/embeds`, { allowedOrigins: ['https://shop.example'], version: 1 });
    expect(old.body.embed.version).toBe(1);
  });

  test("another user's flow versions are 404 on every route and change nothing", async () => {
    const flow = await createFlow(ada, { type: 'agentflow', name: `Private ${Date.now()}`, definition: twoNodes('p1') });
    await api('PATCH', ada, `/flows/${flow.id}`, { definition: twoNodes('p2'), publish: false });
    const answers = await Promise.all([
      api('GET', bob, `/flows/${flow.id}/versions`),
      api('GET', bob, `/flows/${flow.id}/versions/1`),
      api('POST', bob, `/flows/${flow.id}/versions/2/publish`),
      api('POST', bob, `/flows/${flow.id}/execute`, { input: { topic: 'z' }, version: 2 }),
      api('PATCH', bob, `/flows/${flow.id}`, { definition: twoNodes('evil') }),
      api('POST', bob, `/flows/${flow.id}/embeds`, { allowedOrigins: ['https://evil.example'], version: 1 }),
    ]);
    expect(answers.map((res) => res.status)).toEqual([404, 404, 404, 404, 404, 404]);
    expect(answers[1].body.error.code).toBe('not_found');
    const after = await api('GET', ada, `/flows/${flow.id}`);
    expect(after.body.flow).toMatchObject({ publishedVersion: 1, latestVersion: 2, definition: twoNodes('p1') });
  });

  test('the migration turns every existing flow into version 1, published, and pins its embeds and executions', async () => {
    const pg = new PGlite();
    try {
      const files = readdirSync(MIGRATIONS_DIR)
        .filter((file) => file.endsWith('.sql'))
        .sort();
      const run = async (file: string) => {
        for (const statement of readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8').split('--> statement-breakpoint'))
          if (statement.trim()) await pg.exec(statement);
      };
      const at = files.indexOf('0026_flow_versions.sql');
      for (const file of files.slice(0, at)) await run(file);
      const [user] = (await pg.query<{ id: string }>(`insert into users (email, name) values ('m@example.com', 'M') returning id`)).rows;
      const definition = JSON.stringify({ systemPrompt: 'kept' });
      const [flow] = (
        await pg.query<{ id: string }>(
          `insert into flows (user_id, type, name, definition) values ($1, 'chatflow', 'Old', $2) returning id`,
          [user.id, definition],
        )
      ).rows;
      await pg.query(
        `insert into flow_embeds (flow_id, user_id, token_hash, allowed_origins) values ($1, $2, 'h', '["https://a.example"]')`,
        [flow.id, user.id],
      );
      await run(files[at]);
      const versions = await pg.query(`select version, definition from flow_versions where flow_id = $1`, [flow.id]);
      expect(versions.rows).toEqual([{ version: 1, definition: { systemPrompt: 'kept' } }]);
      const row = await pg.query(`select published_version, latest_version from flows where id = $1`, [flow.id]);
      expect(row.rows).toEqual([{ published_version: 1, latest_version: 1 }]);
      expect((await pg.query(`select flow_version from flow_embeds`)).rows).toEqual([{ flow_version: 1 }]);
    } finally {
      await pg.close();
    }
  });
});
