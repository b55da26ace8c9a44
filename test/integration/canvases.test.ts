import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type JsonResponse, type TestUser } from '../support/http';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

describe('canvases, members, blocks and the /canvas namespace', () => {
  let t: TestApp;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  describe('canvas CRUD', () => {
    test('given an owner, a canvas is created, listed only for its members, read, renamed and deleted', async () => {
      const [owner, stranger] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Stranger')]);
      const strangersCanvas = await createCanvas(t.api, stranger, 'Not yours');

      const created = await request('POST', `${t.api}/canvases`, { token: owner.accessToken, body: { title: 'Roadmap' } });
      expect(created.status).toBe(201);
      const canvas = created.body.canvas;
      expect(canvas).toMatchObject({ id: expect.any(String), title: 'Roadmap', ownerId: owner.id, role: 'owner' });

      const list = await request('GET', `${t.api}/canvases`, { token: owner.accessToken });
      expect(list.status).toBe(200);
      expect(list.body.canvases.map((c: { id: string }) => c.id)).toEqual([canvas.id]);
      expect(list.body.canvases.map((c: { id: string }) => c.id)).not.toContain(strangersCanvas);

      const read = await request('GET', `${t.api}/canvases/${canvas.id}`, { token: owner.accessToken });
      expect(read.status).toBe(200);
      expect(read.body.canvas).toMatchObject({ id: canvas.id, title: 'Roadmap' });
      expect(read.body.members).toEqual([expect.objectContaining({ userId: owner.id, role: 'owner' })]);

      const renamed = await request('PATCH', `${t.api}/canvases/${canvas.id}`, { token: owner.accessToken, body: { title: 'Roadmap 2' } });
      expect(renamed.status).toBe(200);
      expect(renamed.body.canvas.title).toBe('Roadmap 2');
      expect((await request('GET', `${t.api}/canvases/${canvas.id}`, { token: owner.accessToken })).body.canvas.title).toBe('Roadmap 2');

      const deleted = await request('DELETE', `${t.api}/canvases/${canvas.id}`, { token: owner.accessToken });
      expect(deleted.status).toBe(204);
      expectError(await request('GET', `${t.api}/canvases/${canvas.id}`, { token: owner.accessToken }), 404, 'not_found');
      expect((await request('GET', `${t.api}/canvases`, { token: owner.accessToken })).body.canvases).toEqual([]);
    });
  });

  describe('members and object-level authorisation', () => {
    test('given an owner, members are added by email as editor and viewer; an unknown email is 404 user_not_found', async () => {
      const { owner, canvasId } = await givenCanvas();
      const [editor, viewer] = await Promise.all([registerUser(t.api, 'Editor'), registerUser(t.api, 'Viewer')]);

      const addEditor = await request('POST', `${t.api}/canvases/${canvasId}/members`, {
        token: owner.accessToken,
        body: { email: editor.email, role: 'editor' },
      });
      const addViewer = await request('POST', `${t.api}/canvases/${canvasId}/members`, {
        token: owner.accessToken,
        body: { email: viewer.email, role: 'viewer' },
      });
      const unknown = await request('POST', `${t.api}/canvases/${canvasId}/members`, {
        token: owner.accessToken,
        body: { email: `nobody-${randomUUID()}@example.test`, role: 'viewer' },
      });

      expect(addEditor.status).toBe(201);
      expect(addEditor.body.member).toMatchObject({ userId: editor.id, role: 'editor' });
      expect(addViewer.status).toBe(201);
      expectError(unknown, 404, 'user_not_found');
      const members = (await request('GET', `${t.api}/canvases/${canvasId}`, { token: owner.accessToken })).body.members;
      expect(members.map((m: { userId: string; role: string }) => [m.userId, m.role]).sort()).toEqual(
        [
          [owner.id, 'owner'],
          [editor.id, 'editor'],
          [viewer.id, 'viewer'],
        ].sort(),
      );
      const viewersList = await request('GET', `${t.api}/canvases`, { token: viewer.accessToken });
      expect(viewersList.body.canvases).toEqual([expect.objectContaining({ id: canvasId, role: 'viewer' })]);
    });

    test('given a member whose role changes, or who signs out, the very next request on the canvas follows (the role is read with the session, never kept)', async () => {
      const { owner, canvasId } = await givenCanvas();
      const member = await registerUser(t.api, 'Changing');
      const setRole = (role: string) =>
        request('POST', `${t.api}/canvases/${canvasId}/members`, { token: owner.accessToken, body: { email: member.email, role } });
      const write = () =>
        request('POST', `${t.api}/canvases/${canvasId}/blocks`, { token: member.accessToken, body: textBlock('by the member') });
      const read = () => request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: member.accessToken });

      const asOutsider = await write();
      await setRole('viewer');
      const asViewer = [await write(), await read()];
      await setRole('editor');
      const asEditor = await write();
      await setRole('viewer');
      const demoted = await write();
      await request('POST', `${t.api}/auth/logout`, { body: { refreshToken: member.refreshToken } });
      const signedOut = [
        await write(),
        await read(),
        await request('PATCH', `${t.api}/canvases/${canvasId}`, { token: member.accessToken, body: { title: 'Signed out' } }),
      ];

      expectError(asOutsider, 404, 'not_found');
      expectError(asViewer[0], 403, 'forbidden');
      expect(asViewer[1].status).toBe(200);
      expect(asEditor.status).toBe(201);
      expectError(demoted, 403, 'forbidden');
      for (const res of signedOut) expectError(res, 401, 'unauthorized');
      expect((await blocksOf(owner, canvasId)).map((block) => block.content.text)).toEqual(['by the member']);
    });

    test('given an outsider, every canvas route answers 404 and nothing changes', async () => {
      const { owner, canvasId, blockId } = await givenCanvas({ withBlock: true });
      const generationId = await givenGeneration(owner, canvasId);
      const outsider = await registerUser(t.api, 'Outsider');
      const before = await blocksOf(owner, canvasId);
      const as = { token: outsider.accessToken };

      const responses = {
        getCanvas: await request('GET', `${t.api}/canvases/${canvasId}`, as),
        patchCanvas: await request('PATCH', `${t.api}/canvases/${canvasId}`, { ...as, body: { title: 'Hijacked' } }),
        deleteCanvas: await request('DELETE', `${t.api}/canvases/${canvasId}`, as),
        listBlocks: await request('GET', `${t.api}/canvases/${canvasId}/blocks`, as),
        createBlock: await request('POST', `${t.api}/canvases/${canvasId}/blocks`, { ...as, body: textBlock('intruder') }),
        patchBlock: await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, { ...as, body: { content: { text: 'x' } } }),
        deleteBlock: await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, as),
        generationStatus: await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, as),
        audit: await request('GET', `${t.api}/canvases/${canvasId}/audit`, as),
        addMember: await request('POST', `${t.api}/canvases/${canvasId}/members`, {
          ...as,
          body: { email: outsider.email, role: 'owner' },
        }),
      };

      for (const [route, res] of Object.entries(responses)) {
        expect([route, res.status]).toEqual([route, 404]);
        expectError(res, 404, 'not_found');
      }
      const canvas = await request('GET', `${t.api}/canvases/${canvasId}`, { token: owner.accessToken });
      expect(canvas.body.canvas.title).toBe('Canvas');
      expect(canvas.body.members).toHaveLength(1);
      expect(await blocksOf(owner, canvasId)).toEqual(before);
    });

    test('given a viewer, blocks can be read but not written, and generation is refused before the model is called', async () => {
      const { owner, canvasId, blockId } = await givenCanvas({ withBlock: true });
      const viewer = await registerUser(t.api, 'Viewer');
      await addMember(t.api, owner, canvasId, viewer, 'viewer');
      const before = await blocksOf(owner, canvasId);
      const modelCalls = t.llm.chatRequests().length;
      const as = { token: viewer.accessToken };

      const read = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, as);
      const create = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, { ...as, body: textBlock('viewer says hi') });
      const update = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, {
        ...as,
        body: { content: { text: 'edited' } },
      });
      const remove = await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, as);
      const generate = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        ...as,
        body: { prompt: 'a heading please' },
      });

      expect(read.status).toBe(200);
      expect(read.body.blocks).toEqual(before);
      expectError(create, 403, 'forbidden');
      expectError(update, 403, 'forbidden');
      expectError(remove, 403, 'forbidden');
      expect(generate.status).toBe(403);
      expect(generate.body.error.code).toBe('forbidden');
      expect(await blocksOf(owner, canvasId)).toEqual(before);
      expect(t.llm.chatRequests()).toHaveLength(modelCalls);
    });

    test('given an editor, blocks can be written, but the canvas cannot be deleted, members not added, the audit not read', async () => {
      const { owner, canvasId } = await givenCanvas();
      const [editor, friend] = await Promise.all([registerUser(t.api, 'Editor'), registerUser(t.api, 'Friend')]);
      await addMember(t.api, owner, canvasId, editor, 'editor');
      const as = { token: editor.accessToken };

      const create = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, { ...as, body: textBlock('from the editor') });
      const update = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${create.body.block.id}`, {
        ...as,
        body: { content: { text: 'edited by the editor' } },
      });
      const deleteCanvas = await request('DELETE', `${t.api}/canvases/${canvasId}`, as);
      const addFriend = await request('POST', `${t.api}/canvases/${canvasId}/members`, {
        ...as,
        body: { email: friend.email, role: 'editor' },
      });
      const audit = await request('GET', `${t.api}/canvases/${canvasId}/audit`, as);

      expect(create.status).toBe(201);
      expect(create.body.block).toMatchObject({ canvasId, createdBy: editor.id, content: { text: 'from the editor' } });
      expect(update.status).toBe(200);
      expectError(deleteCanvas, 403, 'forbidden');
      expectError(addFriend, 403, 'forbidden');
      expectError(audit, 403, 'forbidden');
      expect((await request('GET', `${t.api}/canvases/${canvasId}`, { token: owner.accessToken })).body.members).toHaveLength(2);
      expect((await request('GET', `${t.api}/canvases`, { token: friend.accessToken })).body.canvases).toEqual([]);
    });
  });

  describe('blocks', () => {
    test('given placements at the end, after, before and between, the list is ordered by strictly increasing rank', async () => {
      const { owner, canvasId } = await givenCanvas();

      const a = await addBlock(owner, canvasId, 'A');
      const b = await addBlock(owner, canvasId, 'B');
      const c = await addBlock(owner, canvasId, 'C', { afterId: a.id });
      const d = await addBlock(owner, canvasId, 'D', { beforeId: a.id });
      const e = await addBlock(owner, canvasId, 'E', { afterId: c.id, beforeId: b.id });

      const blocks = await blocksOf(owner, canvasId);
      expect(blocks.map(text)).toEqual(['D', 'A', 'C', 'E', 'B']);
      expect(blocks.map((block) => block.id)).toEqual([d.id, a.id, c.id, e.id, b.id]);
      expectStrictlyIncreasing(blocks.map((block) => block.rank));
      for (const block of blocks) {
        expect(block).toMatchObject({
          canvasId,
          type: 'text',
          generationSessionId: null,
          createdBy: owner.id,
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
        });
      }
    });

    test('given a block, PATCH validates content against its own type and a move changes the order', async () => {
      const { owner, canvasId } = await givenCanvas();
      const heading = await addBlock(owner, canvasId, 'Title', {}, { type: 'heading', content: { text: 'Title', level: 1 } });
      const second = await addBlock(owner, canvasId, 'second');
      const third = await addBlock(owner, canvasId, 'third');

      const edited = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${heading.id}`, {
        token: owner.accessToken,
        body: { content: { text: 'New title', level: 2 } },
      });
      const wrongShape = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${heading.id}`, {
        token: owner.accessToken,
        body: { content: { text: 'no level' } },
      });
      const moved = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${heading.id}`, {
        token: owner.accessToken,
        body: { afterId: third.id },
      });

      expect(edited.status).toBe(200);
      expect(edited.body.block).toMatchObject({ id: heading.id, type: 'heading', content: { text: 'New title', level: 2 } });
      expectError(wrongShape, 400, 'validation_failed');
      expect(moved.status).toBe(200);
      const blocks = await blocksOf(owner, canvasId);
      expect(blocks.map((block) => block.id)).toEqual([second.id, third.id, heading.id]);
      expect(blocks[2].content).toEqual({ text: 'New title', level: 2 });
      expectStrictlyIncreasing(blocks.map((block) => block.rank));
    });

    test('given a deleted block, DELETE answers 204 and then 404, and the block is gone', async () => {
      const { owner, canvasId, blockId } = await givenCanvas({ withBlock: true });

      const first = await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, { token: owner.accessToken });
      const second = await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, { token: owner.accessToken });
      const patch = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blockId}`, {
        token: owner.accessToken,
        body: { content: { text: 'ghost' } },
      });

      expect(first.status).toBe(204);
      expectError(second, 404, 'not_found');
      expectError(patch, 404, 'not_found');
      expect(await blocksOf(owner, canvasId)).toEqual([]);
    });

    test('given another member in the room, each mutation reaches them, and a non-member cannot join or hear it', async () => {
      const { owner, canvasId } = await givenCanvas();
      const [editor, outsider] = await Promise.all([registerUser(t.api, 'Editor'), registerUser(t.api, 'Outsider')]);
      await addMember(t.api, owner, canvasId, editor, 'editor');
      const [editorSocket, outsiderSocket] = await Promise.all([connect(editor), connect(outsider)]);
      expect((await join(editorSocket, canvasId)).ok).toBe(true);
      expect(await join(outsiderSocket, canvasId)).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
      const overheard = [
        record(outsiderSocket, 'block_added'),
        record(outsiderSocket, 'block_updated'),
        record(outsiderSocket, 'block_deleted'),
      ];

      const added = waitFor(editorSocket, 'block_added', (p) => p.canvasId === canvasId);
      const block = await addBlock(owner, canvasId, 'hello');
      // Every room event of the canvas carries the next seq: 1, 2, 3 on a fresh canvas.
      expect(await added).toEqual({ canvasId, block, seq: 1 });

      const updated = waitFor(editorSocket, 'block_updated', (p) => p.block.id === block.id);
      const patch = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${block.id}`, {
        token: owner.accessToken,
        body: { content: { text: 'hello again' } },
      });
      expect(await updated).toEqual({ canvasId, block: patch.body.block, seq: 2 });
      expect(patch.body.block.content).toEqual({ text: 'hello again' });

      const deleted = waitFor(editorSocket, 'block_deleted', (p) => p.blockId === block.id);
      await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${block.id}`, { token: owner.accessToken });
      expect(await deleted).toEqual({ canvasId, blockId: block.id, seq: 3 });

      await roundTrip(outsiderSocket);
      expect(overheard).toEqual([[], [], []]);
    });
  });

  describe('realtime /canvas namespace', () => {
    test('given a bad or missing token, the handshake fails with connect_error "unauthorized"', async () => {
      const user = await registerUser(t.api, 'Socket');

      await expect(connectCanvas(t.url, 'not-a-token')).rejects.toThrow('unauthorized');
      await expect(connectCanvas(t.url, user.accessToken.slice(0, -4) + 'AAAA')).rejects.toThrow('unauthorized');
      await expect(connectCanvas(t.url, undefined)).rejects.toThrow('unauthorized');
    });

    test('given A in the room, when B joins, A receives presence listing both', async () => {
      const { owner: a, canvasId } = await givenCanvas();
      const b = await registerUser(t.api, 'B');
      await addMember(t.api, a, canvasId, b, 'viewer');
      const [socketA, socketB] = await Promise.all([connect(a), connect(b)]);
      const joinedA = await join(socketA, canvasId);
      expect(joinedA).toEqual({ ok: true, presence: [expect.objectContaining({ userId: a.id })], seq: 0 });
      const presence = waitFor(socketA, 'presence', (p) => p.canvasId === canvasId && p.users.length === 2);

      const joinedB = await join(socketB, canvasId);

      expect(joinedB.ok).toBe(true);
      const users = (await presence).users.map((u) => u.userId).sort();
      expect(users).toEqual([a.id, b.id].sort());
    });

    test("given A in the room, A's second tab coming and going announces nothing: the next presence A hears is B's arrival", async () => {
      const { owner: a, canvasId } = await givenCanvas();
      const b = await registerUser(t.api, 'B');
      await addMember(t.api, a, canvasId, b, 'viewer');
      const [tab1, tab2, socketB] = await Promise.all([connect(a), connect(a), connect(b)]);
      expect((await join(tab1, canvasId)).ok).toBe(true);
      // A's own arrival is announced once; wait for it so it is not mistaken for a later one.
      await waitFor(tab1, 'presence', (p) => p.canvasId === canvasId);
      const heard: string[][] = [];
      tab1.on('presence', (p) => p.canvasId === canvasId && heard.push(p.users.map((u) => u.userId).sort()));

      // The second tab joins and leaves: the room's users stay [A] throughout.
      expect((await join(tab2, canvasId)).ok).toBe(true);
      tab2.disconnect();
      const withB = waitFor(tab1, 'presence', (p) => p.canvasId === canvasId && p.users.length === 2);
      expect((await join(socketB, canvasId)).ok).toBe(true);
      await withB;

      expect(heard[0]).toEqual([a.id, b.id].sort());
    });

    test('given A and B joining at the same moment (in 12 rooms at once), each ends with a presence that lists both', async () => {
      const a = await registerUser(t.api, 'A');
      const b = await registerUser(t.api, 'B');
      const canvasIds = await Promise.all(Array.from({ length: 12 }, () => createCanvas(t.api, a, 'Race')));
      await Promise.all(canvasIds.map((canvasId) => addMember(t.api, a, canvasId, b, 'viewer')));
      const [socketA, socketB] = await Promise.all([connect(a), connect(b)]);
      // What each socket believes about a canvas: the join's ack, then every presence event after it.
      const view = new Map<string, string[]>();
      for (const [name, socket] of [
        ['A', socketA],
        ['B', socketB],
      ] as const) {
        socket.on('presence', (p) => view.set(`${name}:${p.canvasId}`, p.users.map((u) => u.userId).sort()));
      }
      await Promise.all(
        canvasIds.flatMap((canvasId) =>
          (
            [
              ['A', socketA],
              ['B', socketB],
            ] as const
          ).map(async ([name, socket]) => {
            const joined = await join(socket, canvasId);
            if (!joined.ok) throw new Error(`join failed: ${joined.error.code}`);
            if (!view.has(`${name}:${canvasId}`)) view.set(`${name}:${canvasId}`, joined.presence.map((u) => u.userId).sort());
          }),
        ),
      );

      const both = [a.id, b.id].sort();
      const everyone = () =>
        canvasIds.every((canvasId) => ['A', 'B'].every((name) => JSON.stringify(view.get(`${name}:${canvasId}`)) === JSON.stringify(both)));
      await eventually(async () => everyone(), Boolean, 5_000);
      // Settled: the last word each socket hears is still both (no stale list arrives late).
      await roundTrip(socketA);
      await roundTrip(socketB);
      expect(everyone()).toBe(true);
    });

    test("given A and B in the room, A's cursor reaches B as {userId, x, y} and not A; a cursor for a room A has not joined is dropped", async () => {
      const { owner: a, canvasId } = await givenCanvas();
      const b = await registerUser(t.api, 'B');
      await addMember(t.api, a, canvasId, b, 'editor');
      const bOwnCanvas = await createCanvas(t.api, b, 'B only');
      const [socketA, socketB] = await Promise.all([connect(a), connect(b)]);
      await join(socketA, canvasId);
      await join(socketB, canvasId);
      await join(socketB, bOwnCanvas);
      const seenByA = record(socketA, 'cursor');
      const seenByB = record(socketB, 'cursor');

      socketA.emit('canvas:cursor', { canvasId: bOwnCanvas, x: 666, y: 666 });
      socketA.emit('canvas:cursor', { canvasId, x: 12.5, y: 40 });
      await waitFor(socketB, 'cursor', (p) => p.x === 12.5);
      await roundTrip(socketA);

      expect(seenByB).toEqual([{ userId: a.id, x: 12.5, y: 40 }]);
      expect(seenByA).toEqual([]);
    });

    test('given malformed canvas:join payloads, the server answers or ignores them and the socket can still join', async () => {
      const { owner, canvasId } = await givenCanvas();
      const socket = await connect(owner);
      const raw = socket as unknown as {
        timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
        emit(event: string, ...args: unknown[]): void;
      };

      const number = await raw.timeout(5_000).emitWithAck('canvas:join', 42);
      const object = await raw.timeout(5_000).emitWithAck('canvas:join', { canvasId });
      const notUuid = await raw.timeout(5_000).emitWithAck('canvas:join', 'not-a-uuid');
      raw.emit('canvas:join'); // neither id nor ack
      raw.emit('canvas:join', canvasId); // no ack: must not throw on the server
      raw.emit('canvas:join', null);
      raw.emit('canvas:cursor', 'garbage');
      raw.emit('canvas:cursor', null);

      for (const ack of [number, object, notUuid])
        expect(ack).toEqual({ ok: false, error: expect.objectContaining({ code: 'validation_failed' }) });
      expect(await join(socket, canvasId)).toEqual({ ok: true, presence: [expect.objectContaining({ userId: owner.id })], seq: 0 });
      expect(socket.connected).toBe(true);
      expect((await request('GET', `${t.url}/healthz`)).status).toBe(200);
    });
  });

  /** A canvas of a fresh owner, optionally holding one text block. */
  async function givenCanvas(options: { withBlock?: boolean } = {}) {
    const owner = await registerUser(t.api, 'Owner');
    const canvasId = await createCanvas(t.api, owner);
    const blockId = options.withBlock ? (await addBlock(owner, canvasId, 'existing')).id : undefined;
    return { owner, canvasId, blockId: blockId! };
  }

  /** A completed (empty) generation on the canvas, so its status route exists. */
  async function givenGeneration(user: TestUser, canvasId: string): Promise<string> {
    t.llm.push({ text: 'Nothing to add.' });
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'nothing yet' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    expect(sse.messages.at(-1)?.event).toBe('complete');
    return sse.messages[0].data.generationId;
  }

  async function addBlock(
    user: TestUser,
    canvasId: string,
    label: string,
    placement: { afterId?: string; beforeId?: string } = {},
    block: { type: string; content: unknown } = textBlock(label),
  ) {
    const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { ...block, ...placement },
    });
    expect(res.status).toBe(201);
    return res.body.block as Block;
  }

  async function blocksOf(user: TestUser, canvasId: string): Promise<Block[]> {
    const res = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(res.status).toBe(200);
    return res.body.blocks;
  }

  async function connect(user: TestUser) {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    return socket;
  }
});

interface Block {
  id: string;
  canvasId: string;
  type: string;
  content: Record<string, unknown>;
  rank: string;
  generationSessionId: string | null;
  createdBy: string;
}

const textBlock = (value: string) => ({ type: 'text', content: { text: value } });
const text = (block: Block) => block.content.text;

function expectStrictlyIncreasing(ranks: string[]) {
  for (let i = 1; i < ranks.length; i++) expect(ranks[i - 1] < ranks[i]).toBe(true);
}

/**
 * Waits until the server has handled everything this socket sent before (one acked request on the
 * same connection), so "nothing arrived" can be asserted without a timer.
 */
async function roundTrip(socket: CanvasClient) {
  await socket.timeout(5_000).emitWithAck('canvas:join', 'round-trip');
}

/** Asserts the uniform error shape `{error:{code,message,details?}}` and the code. */
function expectError(res: JsonResponse, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body ?? {})).toEqual(['error']);
  expect(res.body.error).toMatchObject({ code, message: expect.any(String) });
}
