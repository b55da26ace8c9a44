import { createSwitchboardClient } from '@switchboard/client';
import { chatMessages, chatSessions, hitlRequests } from '../../src/models/schema';
import type { BlockInput } from '../../src/schemas/blocks';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type JsonResponse, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

/**
 * Lists and sizes: a canvas's blocks come in pages (`?limit` ≤ 200, default
 * 200, `?cursor`, `nextCursor`) in rank order; a canvas holds at most MAX_BLOCKS_PER_CANVAS blocks
 * (by hand: 409 canvas_full; a generation keeps what fits and says truncated); the audit trail is
 * newest first and paginated, so the latest events are visible however long it gets.
 */
const MAX_BLOCKS = 260;

describe('security: lists are paginated and canvases are bounded', () => {
  let t: TestApp;
  let owner: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ env: { MAX_BLOCKS_PER_CANVAS: String(MAX_BLOCKS) } });
    owner = await registerUser(t.api, 'Lister');
  }, 120_000);
  afterAll(async () => {
    await t.stop();
  }, 60_000);

  /** Fills a canvas with `count` text blocks in one transaction (setup only; reads stay black box). */
  const seedBlocks = async (canvasId: string, count: number, tag: string) => {
    const inputs: BlockInput[] = Array.from({ length: count }, (_, i) => ({ type: 'text', content: { text: `${tag} ${i}` } }));
    await t.app.repos.db.transaction((tx) =>
      t.app.repos.blocks.insertMany(tx, { canvasId, createdBy: owner.id, inputs, placement: {}, generationSessionId: null }),
    );
  };
  const list = (canvasId: string, query = '') =>
    request('GET', `${t.api}/canvases/${canvasId}/blocks${query}`, { token: owner.accessToken });

  test('GET /canvases/:id/blocks answers 200 at most per page in rank order with nextCursor; following it yields every block once', async () => {
    const canvasId = await createCanvas(t.api, owner, 'Big');
    await seedBlocks(canvasId, 230, 'big');

    const first = await list(canvasId);
    const second = await list(canvasId, `?cursor=${encodeURIComponent(first.body.nextCursor)}`);

    expect(first.status).toBe(200);
    expect(first.body.blocks).toHaveLength(200);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    expect(second.body.blocks).toHaveLength(30);
    expect(second.body.nextCursor).toBeNull();
    const all = [...first.body.blocks, ...second.body.blocks];
    expect(new Set(all.map((b: { id: string }) => b.id)).size).toBe(230);
    expect(all.map((b: { content: { text: string } }) => b.content.text)).toEqual(Array.from({ length: 230 }, (_, i) => `big ${i}`));
    const ranks = all.map((b: { rank: string }) => b.rank);
    expect([...ranks].sort()).toEqual(ranks);

    // Small pages walk the same sequence.
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await list(canvasId, `?limit=64${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.body.blocks.length).toBeLessThanOrEqual(64);
      walked.push(...page.body.blocks.map((b: { id: string }) => b.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(walked).toEqual(all.map((b: { id: string }) => b.id));

    // The SDK follows the cursor by itself.
    const sdk = createSwitchboardClient({ baseUrl: t.url, accessToken: owner.accessToken });
    expect((await sdk.blocks.listAll(canvasId)).map((b) => b.id)).toEqual(walked);
  });

  test('a limit over 200 or under 1, a foreign cursor and unknown query fields are 400, not a 500 or a silent full list', async () => {
    const canvasId = await createCanvas(t.api, owner, 'Bad paging');
    const answers = await Promise.all([
      list(canvasId, '?limit=201'),
      list(canvasId, '?limit=0'),
      list(canvasId, '?limit=abc'),
      list(canvasId, '?cursor=not-ours'),
      list(canvasId, `?cursor=${Buffer.from('["a"]').toString('base64url')}`),
      list(canvasId, '?offset=5'),
    ]);

    expect(answers.map((res) => res.status)).toEqual([400, 400, 400, 400, 400, 400]);
    expect(answers[3].body.error.code).toBe('invalid_cursor');
  });

  test('a crafted cursor (uuid-shaped but not a uuid, or a rank holding NUL) is 400 invalid_cursor on every list, never a 500', async () => {
    const canvasId = await createCanvas(t.api, owner, 'Crafted cursors');
    const cursor = (key: unknown[]) => encodeURIComponent(Buffer.from(JSON.stringify(key)).toString('base64url'));
    const notUuid = 'a'.repeat(36);
    const dashes = '-'.repeat(36);
    const uuid = '00000000-0000-4000-8000-000000000000';
    const get = (path: string) => request('GET', `${t.api}${path}`, { token: owner.accessToken });
    const answers = await Promise.all([
      get(`/canvases?cursor=${cursor([notUuid])}`),
      get(`/canvases?cursor=${cursor([dashes])}`),
      get(`/canvases/${canvasId}/members?cursor=${cursor([notUuid])}`),
      get(`/canvases/${canvasId}/audit?cursor=${cursor([notUuid])}`),
      get(`/agents/local?cursor=${cursor([notUuid])}`),
      get(`/agents/cloud?cursor=${cursor([dashes])}`),
      get(`/hitl/requests?cursor=${cursor([notUuid])}`),
      get(`/canvases/${canvasId}/blocks?cursor=${cursor(['a', notUuid])}`),
      get(`/canvases/${canvasId}/blocks?cursor=${cursor(['a\u0000', uuid])}`),
      get(`/canvases/${canvasId}/blocks?cursor=${cursor(['\ud800', uuid])}`),
    ]);

    expect(answers.map((res) => res.status)).toEqual(answers.map(() => 400));
    expect(answers.map((res) => res.body.error.code)).toEqual(answers.map(() => 'invalid_cursor'));
  });

  test(`past MAX_BLOCKS_PER_CANVAS (${MAX_BLOCKS}) a new block is 409 canvas_full and nothing is written`, async () => {
    const canvasId = await createCanvas(t.api, owner, 'Full');
    await seedBlocks(canvasId, MAX_BLOCKS - 1, 'full');

    const last = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'the last one' } },
    });
    const over = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'one too many' } },
    });

    expect(last.status).toBe(201);
    expect(over.status).toBe(409);
    expect(over.body.error).toMatchObject({ code: 'canvas_full', details: { limit: MAX_BLOCKS } });
    expect(await t.app.repos.blocks.count(canvasId)).toBe(MAX_BLOCKS);
  });

  test('a generation on a nearly full canvas keeps only what fits and completes truncated', async () => {
    const canvasId = await createCanvas(t.api, owner, 'Nearly full');
    await seedBlocks(canvasId, MAX_BLOCKS - 2, 'near');
    t.llm.push(
      { toolCalls: Array.from({ length: 5 }, (_, i) => ({ name: 'create_text', args: { text: `generated ${i}` } })) },
      { text: 'Done.' },
    );

    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { prompt: 'five more blocks' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });

    const complete = sse.messages.at(-1)!;
    expect(complete.event).toBe('complete');
    expect(complete.data.truncated).toBe(true);
    expect(complete.data.blocks.map((b: { content: { text: string } }) => b.content.text)).toEqual(['generated 0', 'generated 1']);
    expect(await t.app.repos.blocks.count(canvasId)).toBe(MAX_BLOCKS);
  });

  test('GET /canvases/:id/audit is newest first and paginated: the latest event is on the first page however long the trail', async () => {
    const canvasId = await createCanvas(t.api, owner, 'Audited');
    for (let i = 0; i < 600; i += 100) {
      await t.app.repos.db.transaction(async (tx) => {
        for (let j = i; j < i + 100; j++)
          await t.app.repos.audit.write({ actorId: owner.id, action: 'test.filler', canvasId, details: { n: j } }, tx);
      });
    }
    await t.app.repos.audit.write({ actorId: owner.id, action: 'ai.generation.undone', canvasId, targetType: 'generation' });

    const first = await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.audit[0]).toMatchObject({ action: 'ai.generation.undone' });
    expect(first.body.audit).toHaveLength(50);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: JsonResponse = await request(
        'GET',
        `${t.api}/canvases/${canvasId}/audit?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { token: owner.accessToken },
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.audit.map((entry: { id: string }) => entry.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(601);
    expect(new Set(seen).size).toBe(601);
    expect((await request('GET', `${t.api}/canvases/${canvasId}/audit?limit=500`, { token: owner.accessToken })).status).toBe(400);
  });

  /** Walks a list by `nextCursor` with `?limit=`; returns the ids in order and the page count. */
  const walk = async (path: string, field: string, token: string, limit: number) => {
    const ids: string[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page: JsonResponse = await request(
        'GET',
        `${t.api}${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { token },
      );
      expect(page.status).toBe(200);
      expect(page.body[field].length).toBeLessThanOrEqual(limit);
      ids.push(...page.body[field].map((row: { id: string }) => row.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    return { ids, pages };
  };

  test('siblings: GET /canvases, /hitl/requests, /agents/local and /agents/runs page by cursor, newest first, each row once', async () => {
    const user = await registerUser(t.api, 'Siblings');
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push(await createCanvas(t.api, user, `canvas ${i}`));
    const agent = await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Inbox',
        deviceId: 'laptop',
        directoryPaths: ['/Users/ana/Notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
        fileExtensions: ['.txt'],
      },
    });
    expect(agent.status).toBe(201);
    // Rows made in one transaction share a timestamp: the cursor must still order them (by id).
    const [session] = await t.app.repos.db.insert(chatSessions).values({ userId: user.id }).returning();
    const [message] = await t.app.repos.db
      .insert(chatMessages)
      .values({ sessionId: session.id, role: 'assistant', content: 'asking' })
      .returning();
    await t.app.repos.db.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) {
        await tx.insert(hitlRequests).values({
          userId: user.id,
          sessionId: session.id,
          messageId: message.id,
          deviceId: 'laptop',
          toolName: 'delete_task',
          parameters: { n: i },
          reason: 'r',
          continuation: {},
          expiresAt: new Date(Date.now() + 60_000),
        });
      }
    });

    const canvases = await walk('/canvases', 'canvases', user.accessToken, 3);
    expect(canvases.ids).toEqual([...made].reverse());
    expect(canvases.pages).toBe(3);
    const approvals = await walk('/hitl/requests', 'requests', user.accessToken, 2);
    expect(new Set(approvals.ids).size).toBe(5);
    expect(approvals.pages).toBe(3);
    expect((await request('GET', `${t.api}/canvases?limit=201`, { token: user.accessToken })).status).toBe(400);
    expect((await request('GET', `${t.api}/hitl/requests?cursor=nope`, { token: user.accessToken })).body.error.code).toBe(
      'invalid_cursor',
    );
    expect((await request('GET', `${t.api}/agents/runs?cursor=nope`, { token: user.accessToken })).body.error.code).toBe('invalid_cursor');
    expect((await request('GET', `${t.api}/agents/runs?limit=5`, { token: user.accessToken })).body).toMatchObject({
      runs: [],
      nextCursor: null,
    });
    for (let i = 0; i < 2; i++) {
      const more = await request('POST', `${t.api}/agents/local`, {
        token: user.accessToken,
        body: {
          name: `Inbox ${i}`,
          deviceId: 'laptop',
          directoryPaths: ['/Users/ana/Notes'],
          dataTypes: ['tasks'],
          promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
          fileExtensions: ['.txt'],
          enabled: false,
        },
      });
      expect(more.status).toBe(201);
    }
    const agents = await walk('/agents/local', 'agents', user.accessToken, 2);
    expect(agents.ids).toHaveLength(3);
    expect(agents.ids[2]).toBe(agent.body.id);
    expect(agents.pages).toBe(2);
  });
});
