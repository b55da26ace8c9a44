import { connectCanvas, createSwitchboardClient, type CanvasRoomEvent, type SwitchboardClient } from '@switchboard/client';
import type { Block } from '../../src/schemas/blocks';
import { startTestApp, type TestApp } from '../support/app';
import { plantCrowdedPair } from '../support/ranks';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas as connectRaw, join, record, waitFor, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * A rebalance rewrites every rank of a canvas (decision 0013). Collaborators hold the old ranks, and
 * a block added afterwards carries a rank that only compares correctly with the new ones: the room
 * hears one `blocks_reranked` after the commit (not one event per block), and clients reload
 * (decision 0150). Ranks are planted at the length limit so that the next insert between them
 * rebalances, through the block route, the move route and a generation.
 */
describe('a rebalance is announced once, and clients reload into the right order', () => {
  let t: TestApp;
  let owner: TestUser;
  let viewer: TestUser;
  const sockets: CanvasClient[] = [];
  const closers: Array<() => void> = [];

  // Kept so that afterAll stops the app even when its start outlived the hook's deadline: an app
  // left running would go on using Redis after this file's environment is torn down.
  let starting: Promise<TestApp> | undefined;

  beforeAll(async () => {
    starting = startTestApp();
    t = await starting;
    [owner, viewer] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Viewer')]);
  }, 120_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    closers.forEach((close) => close());
    await (await starting)?.stop();
  });

  /** A canvas the viewer can see, holding `left` and `right` with ranks at the rebalance threshold. */
  async function crowdedCanvas() {
    const canvasId = await createCanvas(t.api, owner, 'Crowded');
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    const { left, right } = await plantCrowdedPair(t.app.repos.db, canvasId, owner.id);
    return { canvasId, left, right };
  }

  async function watch(canvasId: string) {
    const socket = await connectRaw(t.url, viewer.accessToken);
    sockets.push(socket);
    const joined = await join(socket, canvasId);
    if (!joined.ok) throw new Error(joined.error.code);
    return { socket, updated: record(socket, 'block_updated'), reranked: record(socket, 'blocks_reranked') };
  }

  async function textsInOrder(canvasId: string): Promise<{ texts: string[]; longest: number }> {
    const res = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: viewer.accessToken });
    const blocks = res.body.blocks as Block[];
    return { texts: blocks.map((block) => String(block.content.text)), longest: Math.max(...blocks.map((block) => block.rank.length)) };
  }

  test('POST a block between the crowded pair: block_added, then one blocks_reranked with the next seq, and no block_updated', async () => {
    const { canvasId, left } = await crowdedCanvas();
    const room = await watch(canvasId);
    const added = waitFor(room.socket, 'block_added');
    const reranked = waitFor(room.socket, 'blocks_reranked');

    const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'middle' }, afterId: left.id },
    });
    expect(res.status).toBe(201);

    const [event, rerank] = await Promise.all([added, reranked]);
    expect(rerank).toEqual({ canvasId, seq: event.seq + 1 });
    expect(await textsInOrder(canvasId)).toEqual({ texts: ['left', 'middle', 'right'], longest: 1 });
    // Settled (a round trip on the same socket), then counted.
    await room.socket.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq: rerank.seq });
    expect(room.reranked).toHaveLength(1);
    expect(room.updated).toEqual([]);
  });

  test('PATCH a move into the crowded gap: the move rebalances, and the room hears blocks_reranked after block_updated', async () => {
    const { canvasId, left } = await crowdedCanvas();
    const moved = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'mover' } },
    });
    expect(moved.status).toBe(201);
    const room = await watch(canvasId);
    const updated = waitFor(room.socket, 'block_updated');
    const reranked = waitFor(room.socket, 'blocks_reranked');

    const res = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${moved.body.block.id}`, {
      token: owner.accessToken,
      body: { afterId: left.id },
    });
    expect(res.status).toBe(200);

    const [event, rerank] = await Promise.all([updated, reranked]);
    expect(rerank.seq).toBe(event.seq + 1);
    expect((await textsInOrder(canvasId)).texts).toEqual(['left', 'mover', 'right']);
  });

  test('a generation inserting into the crowded gap: the worker announces blocks_reranked before its chunks', async () => {
    const { canvasId, left } = await crowdedCanvas();
    const room = await watch(canvasId);
    const chunks = record(room.socket, 'blocks_bulk_added_chunk');
    const reranked = waitFor(room.socket, 'blocks_reranked');
    t.llm.push(
      {
        toolCalls: [
          { name: 'create_text', args: { text: 'generated 1' } },
          { name: 'create_text', args: { text: 'generated 2' } },
        ],
      },
      { text: 'Done.' },
    );

    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { prompt: 'two', afterId: left.id },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    expect(sse.messages.at(-1)?.event).toBe('complete');

    const rerank = await reranked;
    await eventually(
      async () => chunks.length,
      (n) => n > 0,
      10_000,
    );
    expect(chunks.every((chunk) => chunk.seq > rerank.seq)).toBe(true);
    expect((await textsInOrder(canvasId)).texts).toEqual(['left', 'generated 1', 'generated 2', 'right']);
  });

  test('an SDK client that keeps the canvas from its events reloads on blocks_reranked and shows the right order; without the reload it would not', async () => {
    const { canvasId, left, right } = await crowdedCanvas();
    const sb: SwitchboardClient = createSwitchboardClient({ baseUrl: t.url });
    await sb.auth.login({ email: viewer.email, password: 'correct horse battery' });
    const room = await connectCanvas({ url: sb.serverUrl, token: () => sb.tokens().accessToken, reconnection: false });
    closers.push(() => room.close());
    // The application's copy: loaded after the join, kept from room events, reloaded when asked.
    const shown = new Map<string, Block>();
    const show = (list: Block[]) => list.forEach((block) => shown.set(block.id, block));
    const reloads: number[] = [];
    room.onResync(async (id, lastSeq) => {
      reloads.push(lastSeq);
      const fresh = await sb.blocks.listAll(id);
      shown.clear();
      show(fresh);
    });
    const events: CanvasRoomEvent[] = [];
    room.onEvent((event) => {
      events.push(event);
      if (event.event === 'block_added') show([event.payload.block]);
    });
    await room.join(canvasId, 10_000, async () => show(await sb.blocks.listAll(canvasId)));

    // Listening before the request: the room event may reach the socket before the HTTP answer.
    const rerankedEvent = room.waitFor('blocks_reranked');
    const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'middle' }, afterId: left.id },
    });
    expect(res.status).toBe(201);
    const reranked = await rerankedEvent;
    // An add after the rebalance lands where the new ranks say, in the reloaded copy.
    const tail = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'tail' } },
    });
    expect(tail.status).toBe(201);
    const deadline = Date.now() + 10_000;
    while (!shown.has(tail.body.block.id)) {
      if (Date.now() > deadline) throw new Error('the tail block never reached the SDK copy');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    expect(reloads).toEqual([reranked.seq]);
    expect(events.map((event) => event.event)).toEqual(['block_added', 'blocks_reranked', 'block_added']);
    const inOrder = [...shown.values()].sort((a, b) => (a.rank < b.rank ? -1 : 1)).map((block) => block.content.text);
    expect(inOrder).toEqual(['left', 'middle', 'right', 'tail']);
    // What the copy would show had it kept the old ranks of left and right (why the reload matters).
    const old = new Map([left, right].map((block) => [block.id, block.rank]));
    const stale = [...shown.values()].map((block) => ({ ...block, rank: old.get(block.id) ?? block.rank }));
    expect(stale.sort((a, b) => (a.rank < b.rank ? -1 : 1)).map((block) => block.content.text)).not.toEqual([
      'left',
      'middle',
      'right',
      'tail',
    ]);
  });

  test('a stranger learns nothing: blocks_reranked goes only to the canvas room', async () => {
    const { canvasId, left } = await crowdedCanvas();
    const stranger = await registerUser(t.api, 'Stranger');
    const socket = await connectRaw(t.url, stranger.accessToken);
    sockets.push(socket);
    expect((await join(socket, canvasId)).ok).toBe(false);
    const overheard = record(socket, 'blocks_reranked');
    const room = await watch(canvasId);
    const reranked = waitFor(room.socket, 'blocks_reranked');

    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'middle' }, afterId: left.id },
    });
    await reranked;
    await socket.timeout(5_000).emitWithAck('canvas:join', 'round-trip');
    expect(overheard).toEqual([]);
  });
});
