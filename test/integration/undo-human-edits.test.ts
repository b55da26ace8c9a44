import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { AI_AGENT_USER_ID } from '../../config';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import { rowsOf } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, waitFor, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

interface BlockView {
  id: string;
  rank: string;
  content: Record<string, unknown>;
  generationSessionId: string | null;
}

const threeTexts = {
  toolCalls: [
    { name: 'create_text', args: { text: 'first' } },
    { name: 'create_text', args: { text: 'second' } },
    { name: 'create_text', args: { text: 'third' } },
  ],
};

describe('undo keeps the blocks people edited; redo puts back what an undo removed', () => {
  let t: TestApp;
  let owner: TestUser;
  let editor: TestUser;
  let viewer: TestUser;
  let outsider: TestUser;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 100, concurrentGenerations: 5 } }) } });
    [owner, editor, viewer, outsider] = await Promise.all([
      registerUser(t.api, 'Owner'),
      registerUser(t.api, 'Editor'),
      registerUser(t.api, 'Viewer'),
      registerUser(t.api, 'Outsider'),
    ]);
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  /** A canvas of its own with the editor and the viewer as members, and one completed generation of three blocks on it. */
  async function generatedCanvas() {
    const canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, editor, 'editor');
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    t.llm.push(threeTexts);
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { prompt: 'three paragraphs' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    const complete = sse.messages.at(-1)!;
    expect(complete.event).toBe('complete');
    const blocks: BlockView[] = complete.data.blocks;
    expect(blocks).toHaveLength(3);
    const base = `${t.api}/canvases/${canvasId}/ai/generations/${complete.data.generationId as string}`;
    return { canvasId, generationId: complete.data.generationId as string, blocks, undoUrl: `${base}/undo`, redoUrl: `${base}/redo` };
  }

  const listBlocks = async (canvasId: string): Promise<BlockView[]> =>
    (await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: owner.accessToken })).body.blocks;

  const watch = async (user: TestUser, canvasId: string) => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    expect((await join(socket, canvasId)).ok).toBe(true);
    return socket;
  };

  const auditOf = async (canvasId: string, generationId: string) =>
    (await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken })).body.audit.filter(
      (row: { targetId: string }) => row.targetId === generationId,
    ) as Array<{ action: string; actorId: string; details: Record<string, unknown> }>;

  test('given an editor edited one block, the owner undo removes the others and keeps it, and the room hears both lists', async () => {
    const { canvasId, generationId, blocks, undoUrl } = await generatedCanvas();
    const [first, second, third] = blocks;
    const edit = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${second.id}`, {
      token: editor.accessToken,
      body: { content: { text: 'second, reworded by the editor' } },
    });
    expect(edit.status).toBe(200);
    const editorSocket = await watch(editor, canvasId);
    const heard = waitFor(editorSocket, 'generation_undone', (p) => p.generationId === generationId);

    const undo = await request('POST', undoUrl, { token: owner.accessToken });

    expect(undo.status).toBe(200);
    expect(undo.body).toEqual({ generationId, blockIds: [first.id, third.id], keptBlockIds: [second.id] });
    expect(await heard).toMatchObject({ canvasId, generationId, blockIds: [first.id, third.id], keptBlockIds: [second.id] });
    const left = await listBlocks(canvasId);
    expect(left.map((b) => b.id)).toEqual([second.id]);
    expect(left[0].content).toEqual({ text: 'second, reworded by the editor' });
    const [undone] = await auditOf(canvasId, generationId).then((rows) => rows.filter((row) => row.action === 'ai.generation.undone'));
    expect(undone).toMatchObject({ actorId: owner.id, details: { blockCount: 2, keptBlockIds: [second.id], force: false } });
    const again = await request('POST', undoUrl, { token: owner.accessToken, body: { force: true } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_undone');
  });

  test('given a block moved by hand, an undo keeps it too', async () => {
    const { canvasId, blocks, undoUrl } = await generatedCanvas();
    const [first, second, third] = blocks;
    const move = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${third.id}`, {
      token: editor.accessToken,
      body: { beforeId: first.id },
    });
    expect(move.status).toBe(200);

    const undo = await request('POST', undoUrl, { token: owner.accessToken, body: {} });

    expect(undo.status).toBe(200);
    expect(undo.body.blockIds).toEqual([first.id, second.id]);
    expect(undo.body.keptBlockIds).toEqual([third.id]);
  });

  test('given edited blocks, {force: true} removes them as well', async () => {
    const { canvasId, generationId, blocks, undoUrl } = await generatedCanvas();
    await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blocks[0].id}`, {
      token: editor.accessToken,
      body: { content: { text: 'edited' } },
    });

    const undo = await request('POST', undoUrl, { token: owner.accessToken, body: { force: true } });

    expect(undo.status).toBe(200);
    expect(undo.body).toEqual({ generationId, blockIds: blocks.map((b) => b.id), keptBlockIds: [] });
    expect(await listBlocks(canvasId)).toEqual([]);
  });

  test('given askIfEdited and an edited block, the undo is 409 edited_blocks listing it, and nothing changes until the user chooses', async () => {
    const { canvasId, generationId, blocks, undoUrl } = await generatedCanvas();
    const [first, second, third] = blocks;
    await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${third.id}`, {
      token: editor.accessToken,
      body: { content: { text: 'third, edited' } },
    });
    await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${first.id}`, {
      token: editor.accessToken,
      body: { content: { text: 'first, edited' } },
    });
    const before = await listBlocks(canvasId);

    const asked = await request('POST', undoUrl, { token: owner.accessToken, body: { askIfEdited: true } });

    expect(asked.status).toBe(409);
    expect(asked.body.error).toMatchObject({ code: 'edited_blocks', details: { editedBlockIds: [first.id, third.id] } });
    expect(await listBlocks(canvasId)).toEqual(before);
    expect((await auditOf(canvasId, generationId)).filter((row) => row.action === 'ai.generation.undone')).toEqual([]);
    const generation = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: owner.accessToken });
    expect(generation.body.generation.status).toBe('completed');

    // "Keep edited blocks": the plain undo removes the rest.
    const keep = await request('POST', undoUrl, { token: owner.accessToken, body: {} });
    expect(keep.body).toEqual({ generationId, blockIds: [second.id], keptBlockIds: [first.id, third.id] });
  });

  test('given askIfEdited with force, or no edited block, the undo proceeds at once', async () => {
    const clean = await generatedCanvas();
    const plain = await request('POST', clean.undoUrl, { token: editor.accessToken, body: { askIfEdited: true } });
    expect(plain.status).toBe(200);
    expect(plain.body.blockIds).toEqual(clean.blocks.map((b) => b.id));

    const edited = await generatedCanvas();
    await request('PATCH', `${t.api}/canvases/${edited.canvasId}/blocks/${edited.blocks[1].id}`, {
      token: editor.accessToken,
      body: { content: { text: 'edited' } },
    });
    const forced = await request('POST', edited.undoUrl, { token: owner.accessToken, body: { askIfEdited: true, force: true } });
    expect(forced.status).toBe(200);
    expect(forced.body).toEqual({ generationId: edited.generationId, blockIds: edited.blocks.map((b) => b.id), keptBlockIds: [] });

    const bad = await request('POST', edited.undoUrl, { token: owner.accessToken, body: { askIfEdited: 'yes' } });
    expect(bad.status).toBe(400);
  });

  test('redo restores exactly what the undo removed (ids, ranks, edits), tells the room, and only once', async () => {
    const { canvasId, generationId, blocks, undoUrl, redoUrl } = await generatedCanvas();
    const before = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blocks[1].id}`, {
      token: editor.accessToken,
      body: { content: { text: 'kept through the undo' } },
    });
    expect(before.status).toBe(200);
    const edited = (
      await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blocks[2].id}`, {
        token: editor.accessToken,
        body: { content: { text: 'edited, then removed by force' } },
      })
    ).body.block as BlockView;
    const original = await listBlocks(canvasId);
    expect((await request('POST', undoUrl, { token: owner.accessToken, body: { force: true } })).status).toBe(200);
    const editorSocket = await watch(editor, canvasId);
    const heard = waitFor(editorSocket, 'generation_redone', (p) => p.generationId === generationId);

    const redo = await request('POST', redoUrl, { token: editor.accessToken });

    expect(redo.status).toBe(200);
    expect(redo.body.generationId).toBe(generationId);
    expect(redo.body.blocks).toEqual(original);
    expect(redo.body.blocks[2]).toEqual(edited);
    expect((await heard).blocks).toEqual(original);
    expect(await listBlocks(canvasId)).toEqual(original);
    const generation = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: owner.accessToken });
    expect(generation.body.generation).toMatchObject({ status: 'completed', undoneAt: null });
    const twice = await request('POST', redoUrl, { token: editor.accessToken });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('nothing_to_redo');
    expect(await listBlocks(canvasId)).toEqual(original);
    expect((await auditOf(canvasId, generationId)).filter((row) => row.action === 'ai.generation.redone')).toEqual([
      expect.objectContaining({ actorId: editor.id, details: { blockCount: 3 } }),
    ]);

    // The restored blocks keep their edit marks: a later undo keeps the two edited ones again.
    const undoAgain = await request('POST', undoUrl, { token: owner.accessToken });
    expect(undoAgain.body).toEqual({ generationId, blockIds: [blocks[0].id], keptBlockIds: [blocks[1].id, blocks[2].id] });
  });

  test('a redo without an undo is 409 and writes nothing', async () => {
    const { canvasId, generationId, redoUrl } = await generatedCanvas();
    const before = await listBlocks(canvasId);

    const redo = await request('POST', redoUrl, { token: owner.accessToken });

    expect(redo.status).toBe(409);
    expect(redo.body.error.code).toBe('nothing_to_redo');
    expect(await listBlocks(canvasId)).toEqual(before);
    expect((await auditOf(canvasId, generationId)).filter((row) => row.action === 'ai.generation.redone')).toEqual([]);
  });

  test('given a block added where a removed one stood, redo is 409 redo_conflict and restores nothing', async () => {
    const { canvasId, blocks, undoUrl, redoUrl } = await generatedCanvas();
    expect((await request('POST', undoUrl, { token: owner.accessToken })).status).toBe(200);
    // The canvas is empty again: a block appended takes the middle rank, one a removed block held.
    const added = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: editor.accessToken,
      body: { type: 'text', content: { text: 'new' } },
    });
    expect(added.status).toBe(201);
    expect(blocks.map((b) => b.rank)).toContain(added.body.block.rank);

    const redo = await request('POST', redoUrl, { token: owner.accessToken });

    expect(redo.status).toBe(409);
    expect(redo.body.error.code).toBe('redo_conflict');
    expect((await listBlocks(canvasId)).map((b) => b.id)).toEqual([added.body.block.id]);
  });

  test('a hand edit racing an undo: the block is either kept with its edit or removed, never half', async () => {
    const { canvasId, generationId, blocks, undoUrl } = await generatedCanvas();
    const target = blocks[1];

    const [edit, undo] = await Promise.all([
      request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${target.id}`, {
        token: editor.accessToken,
        body: { content: { text: 'racing edit' } },
      }),
      request('POST', undoUrl, { token: owner.accessToken }),
    ]);

    expect(undo.status).toBe(200);
    const left = await listBlocks(canvasId);
    if (edit.status === 200) {
      expect(undo.body.keptBlockIds).toEqual([target.id]);
      expect(left).toEqual([
        expect.objectContaining({ id: target.id, content: { text: 'racing edit' }, generationSessionId: generationId }),
      ]);
    } else {
      expect(edit.status).toBe(404);
      expect(undo.body.keptBlockIds).toEqual([]);
      expect(left).toEqual([]);
    }
    expect([...undo.body.blockIds, ...undo.body.keptBlockIds].sort()).toEqual(blocks.map((b) => b.id).sort());
  });

  test('bad input, other people and viewers: 400, 404 and 403, and nothing changes', async () => {
    const { canvasId, generationId, blocks, undoUrl, redoUrl } = await generatedCanvas();
    const cases: Array<[TestUser, string, unknown, number, string]> = [
      [owner, undoUrl, { force: 'yes' }, 400, 'validation_failed'],
      [owner, undoUrl, { force: true, extra: 1 }, 400, 'validation_failed'],
      [outsider, undoUrl, { force: true }, 404, 'not_found'],
      [outsider, redoUrl, undefined, 404, 'not_found'],
      [viewer, undoUrl, undefined, 403, 'forbidden'],
      [viewer, redoUrl, undefined, 403, 'forbidden'],
    ];
    for (const [user, url, body, status, code] of cases) {
      const res = await request('POST', url, { token: user.accessToken, body });
      expect([url.split('/').at(-1), user.id, res.status, res.body.error?.code]).toEqual([url.split('/').at(-1), user.id, status, code]);
    }
    // The outsider's own canvas does not open this generation either.
    const foreign = await createCanvas(t.api, outsider);
    const viaOwnCanvas = await request('POST', `${t.api}/canvases/${foreign}/ai/generations/${generationId}/undo`, {
      token: outsider.accessToken,
    });
    expect(viaOwnCanvas.status).toBe(404);
    expect(await listBlocks(canvasId)).toEqual(blocks);
    const generation = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: owner.accessToken });
    expect(generation.body.generation.status).toBe('completed');
  });
});

/**
 * The two orders of a hand edit racing an undo, made deterministic on a PostgreSQL server: the first
 * writer holds its transaction open (in its before-commit hook) until the second is seen waiting on
 * a lock, then commits.
 */
describe('a hand edit and an undo of the same generation on PostgreSQL', () => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;

  beforeAll(async () => {
    testDb = await createTestDatabase({ server: serverPostgresUrl() });
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-undo-race-test') });
    repos = createRepositories(database.db);
  }, 60_000);

  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  /** A canvas with one completed generation of three blocks. */
  async function generated() {
    const owner = await repos.users.create({ email: `owner-${randomUUID()}@example.com`, name: 'Owner', passwordHash: 'x' });
    if (!owner) throw new Error('no user');
    const canvas = await repos.canvases.create(owner.id, 'Race');
    const generationId = randomUUID();
    await repos.generations.create({ id: generationId, canvasId: canvas.id, userId: owner.id, prompt: 'three', afterId: null });
    const blocks = await repos.db.transaction((tx) =>
      repos.blocks.insertMany(tx, {
        canvasId: canvas.id,
        createdBy: AI_AGENT_USER_ID,
        inputs: ['a', 'b', 'c'].map((text) => ({ type: 'text' as const, content: { text } })),
        placement: {},
        generationSessionId: generationId,
      }),
    );
    await repos.generations.update(generationId, { status: 'completed', completedAt: new Date(), blockCount: 3 });
    return { owner, canvasId: canvas.id, generationId, blocks };
  }

  /** Resolves once some statement of this test's database waits on a lock. */
  const someoneWaits = () =>
    eventually(
      async () =>
        rowsOf<{ n: number }>(
          await repos.db.execute(
            sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          ),
        )[0].n,
      (n) => n > 0,
    );

  test('the edit commits first: the undo waits for it and keeps the edited block', async () => {
    const { owner, canvasId, generationId, blocks } = await generated();
    let undoing: ReturnType<Repositories['generations']['undo']> | undefined;

    const edited = await repos.blocks.update(canvasId, blocks[1].id, { content: { text: 'by hand' }, editedBy: owner.id }, async () => {
      undoing = repos.generations.undo({ generationId, canvasId, actorId: owner.id, force: false }, async () => undefined);
      await someoneWaits();
    });

    expect(edited).toMatchObject({ id: blocks[1].id, content: { text: 'by hand' } });
    expect(await undoing).toEqual({ undone: true, blockIds: [blocks[0].id, blocks[2].id], keptBlockIds: [blocks[1].id] });
    expect(await repos.blocks.list(canvasId)).toEqual([edited]);
  });

  test('the undo commits first: the edit waits for it and finds its block gone', async () => {
    const { owner, canvasId, generationId, blocks } = await generated();
    let editing: Promise<unknown> | undefined;

    const undone = await repos.generations.undo({ generationId, canvasId, actorId: owner.id, force: false }, async () => {
      editing = repos.blocks.update(canvasId, blocks[1].id, { content: { text: 'too late' }, editedBy: owner.id });
      await someoneWaits();
    });

    expect(undone).toEqual({ undone: true, blockIds: blocks.map((b) => b.id), keptBlockIds: [] });
    expect(await editing).toBeNull();
    expect(await repos.blocks.list(canvasId)).toEqual([]);
  });
});
