import { io, type Socket } from 'socket.io-client';
import { connectCanvas as connectSdk, type CanvasConnection, type CanvasRoomEvent } from '@switchboard/client';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import type { CanvasClientEvents, CanvasLogEntry, CanvasServerEvents } from '../../src/schemas/socket-events';
import { CANVAS_ROOM_EVENTS } from '../../src/schemas/socket-events';
import type { Block } from '../../src/schemas/blocks';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

/**
 * Room events under connection churn: many clients on one canvas, transports killed at random while
 * generations and hand edits flow; afterwards every client's blocks (built only from the events it
 * was handed) equal the database's, and no event was handed to the application twice — for raw
 * socket.io clients that follow the documented catch-up, and for the SDK.
 */

const RAW_CLIENTS = 24;
const SDK_CLIENTS = 8;
const GENERATIONS = 4;
const BLOCKS_PER_GENERATION = 14;
const HAND_EDITS = 40;

/** A canvas's blocks as a client knows them, from events only (plus an HTTP reload on resync). */
class CanvasView {
  readonly blocks = new Map<string, Block>();
  readonly handed: number[] = [];

  apply(event: string, payload: Record<string, any>): void {
    this.handed.push(payload.seq);
    if (event === 'block_added' || event === 'block_updated') this.blocks.set(payload.block.id, payload.block);
    else if (event === 'block_deleted') this.blocks.delete(payload.blockId);
    else if (event === 'blocks_bulk_added_chunk') for (const block of payload.blocks) this.blocks.set(block.id, block);
    else if (event === 'generation_undone') for (const id of payload.blockIds) this.blocks.delete(id);
  }

  reload(blocks: Block[]): void {
    this.blocks.clear();
    for (const block of blocks) this.blocks.set(block.id, block);
  }

  get duplicates(): number {
    return this.handed.length - new Set(this.handed).size;
  }
}

/**
 * A plain socket.io client that follows docs/protocol.md's catch-up rules, written from the doc:
 * join, then load; apply an event only when its seq is the last one + 1 (skip older ones, hold
 * newer ones and ask `canvas:sync` at once); after EVERY reconnect join again if the session was
 * not recovered, then `canvas:sync`; on `resync` reload, holding back live events until the reload
 * is in; a catch-up that fails is asked again.
 */
class RawFollower {
  readonly view = new CanvasView();
  last = 0;
  private readonly ahead = new Map<number, CanvasLogEntry>();
  private syncing = false;
  private again = false;
  private reloading = false;
  readonly socket: Socket<CanvasServerEvents, CanvasClientEvents>;

  constructor(
    url: string,
    token: string,
    private readonly canvasId: string,
    private readonly loadBlocks: () => Promise<Block[]>,
  ) {
    this.socket = io(`${url}/canvas`, {
      auth: { token },
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 20,
      reconnectionDelayMax: 200,
    });
    for (const name of CANVAS_ROOM_EVENTS) {
      (this.socket as unknown as Socket).on(name, (payload: Record<string, any>) =>
        this.handle({ seq: payload.seq, event: name, payload }, true),
      );
    }
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.once('connect', () => resolve()));
    // Join first, then load: nothing after the join's seq can be missed.
    this.reloading = true;
    const ack = await this.socket.timeout(10_000).emitWithAck('canvas:join', this.canvasId);
    if (!ack.ok) throw new Error('join refused');
    this.last = ack.seq;
    this.view.reload(await this.loadBlocks());
    this.reloading = false;
    this.drainAhead();
    this.socket.on('connect', () => void this.afterReconnect());
  }

  private async afterReconnect(): Promise<void> {
    while (this.socket.connected) {
      try {
        if (!this.socket.recovered) {
          const ack = await this.socket.timeout(10_000).emitWithAck('canvas:join', this.canvasId);
          if (!ack.ok) throw new Error('join refused');
        }
        await this.sync();
        return;
      } catch {
        // Timed out, refused or dropped: ask again shortly while connected (a new connection asks by itself).
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  private handle(entry: CanvasLogEntry, live: boolean): void {
    if (entry.seq <= this.last) return;
    if (this.reloading || entry.seq > this.last + 1) {
      this.ahead.set(entry.seq, entry);
      if (live && !this.reloading) void this.sync().catch(() => undefined);
      return;
    }
    this.last = entry.seq;
    this.view.apply(entry.event, entry.payload);
    this.drainAhead();
  }

  private drainAhead(): void {
    for (const seq of [...this.ahead.keys()]) if (seq <= this.last) this.ahead.delete(seq);
    const next = this.ahead.get(this.last + 1);
    if (next) {
      this.ahead.delete(next.seq);
      this.handle(next, false);
    }
  }

  private async sync(): Promise<void> {
    if (this.syncing) return void (this.again = true);
    this.syncing = true;
    try {
      do {
        this.again = false;
        const ack = await this.socket.timeout(10_000).emitWithAck('canvas:sync', { canvasId: this.canvasId, afterSeq: this.last });
        if (!ack.ok) throw new Error(ack.error.code);
        if (ack.resync) {
          this.reloading = true;
          try {
            this.view.reload(await this.loadBlocks());
            // Events applied while the sync was asked (a recovered connection's replay) are not applied again.
            this.last = Math.max(this.last, ack.lastSeq);
          } finally {
            this.reloading = false;
          }
          this.drainAhead();
        } else {
          for (const entry of ack.events) this.handle(entry, false);
        }
      } while (this.again || this.ahead.size > 0);
    } finally {
      this.syncing = false;
    }
  }
}

/** The canvas's blocks over HTTP, page by page (small pages, so a reload really spans several). */
async function loadAllBlocks(api: string, canvasId: string, token: string): Promise<Block[]> {
  const blocks: Block[] = [];
  let cursor: string | undefined;
  do {
    const query = `?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await request('GET', `${api}/canvases/${canvasId}/blocks${query}`, { token });
    if (res.status !== 200) throw new Error(`list blocks: ${res.status}`);
    blocks.push(...(res.body.blocks as Block[]));
    cursor = res.body.nextCursor ?? undefined;
  } while (cursor);
  return blocks;
}

describe('no lost blocks under connection churn', () => {
  let t: TestApp;
  const opened: Array<{ close(): unknown }> = [];

  beforeAll(async () => {
    const responder = (req: ChatRequest) =>
      req.messages.some((m) => m.role === 'tool')
        ? { text: 'Done.' }
        : {
            toolCalls: Array.from({ length: BLOCKS_PER_GENERATION }, (_, i) => ({
              name: 'create_text',
              args: { text: `generated paragraph ${i + 1}` },
            })),
          };
    // A small catch-up cap: a client that missed more than 6 events is told to resync, so the
    // reload path (paginated HTTP read, live events held meanwhile) runs under churn as well.
    t = await startTestApp({
      responder,
      env: { CANVAS_SYNC_MAX_EVENTS: '6', TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 100, concurrentGenerations: 4 } }) },
    });
  }, 120_000);

  afterAll(async () => {
    opened.forEach((socket) => socket.close());
    await t.stop();
  });

  test("every client ends with the database's blocks, each event handed on once, raw and SDK clients alike", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const canvasId = await createCanvas(t.api, owner, 'Churn');
    const viewers: TestUser[] = [];
    for (let i = 0; i < 4; i += 1) {
      const viewer = await registerUser(t.api, `Viewer${i}`);
      await addMember(t.api, owner, canvasId, viewer, 'viewer');
      viewers.push(viewer);
    }
    const loadBlocks = (user: TestUser) => loadAllBlocks(t.api, canvasId, user.accessToken);

    const raw = Array.from(
      { length: RAW_CLIENTS },
      (_, i) => new RawFollower(t.url, viewers[i % viewers.length].accessToken, canvasId, () => loadBlocks(viewers[i % viewers.length])),
    );
    opened.push(...raw.map((client) => client.socket));
    await Promise.all(raw.map((client) => client.start()));
    const sdk: Array<{ connection: CanvasConnection; view: CanvasView }> = [];
    // One more SDK client is never cut: once it holds the database's blocks, every block event is out.
    for (let i = 0; i <= SDK_CLIENTS; i += 1) {
      const user = viewers[i % viewers.length];
      const connection = await connectSdk({
        url: t.url,
        token: user.accessToken,
        socketOptions: { reconnectionDelay: 20, reconnectionDelayMax: 200 },
      });
      opened.push(connection);
      const view = new CanvasView();
      connection.onEvent((event: CanvasRoomEvent) => view.apply(event.event, event.payload as Record<string, any>));
      connection.onResync(async () => view.reload(await loadBlocks(user)));
      expect((await connection.join(canvasId, 10_000, async () => view.reload(await loadBlocks(user)))).ok).toBe(true);
      sdk.push({ connection, view });
    }
    const observer = sdk.pop()!;
    const sockets = [...raw.map((client) => client.socket), ...sdk.map((client) => client.connection)];

    // Chaos: a random client's transport is cut every 40 ms (it reconnects by itself, 20–200 ms later).
    let chaos = true;
    let cuts = 0;
    const chaosLoop = (async () => {
      while (chaos) {
        const victim = sockets[Math.floor(Math.random() * sockets.length)];
        if (victim.connected) {
          victim.io.engine.close();
          cuts += 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();

    // Traffic: generations of 14 blocks and hand edits, at the same time. Each hand edit waits for
    // another cut, so the edits are spread over the churn however fast or slow the machine is.
    const generations = (async () => {
      for (let g = 0; g < GENERATIONS; g += 1) {
        const stream = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
          method: 'POST',
          token: owner.accessToken,
          body: { prompt: `Write part ${g}` },
          timeoutMs: 60_000,
        });
        expect(stream.messages.at(-1)?.event).toBe('complete');
      }
    })();
    const edits = (async () => {
      const made: string[] = [];
      for (let i = 0; i < HAND_EDITS; i += 1) {
        const cutsBefore = cuts;
        await waitUntil(() => cuts > cutsBefore, 30_000);
        const block = (
          await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
            token: owner.accessToken,
            body: { type: 'text', content: { text: `hand ${i}` } },
          })
        ).body.block as Block;
        made.push(block.id);
        if (i % 4 === 3)
          expect(
            (await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${made.shift()}`, { token: owner.accessToken })).status,
          ).toBe(204);
        if (i % 5 === 4)
          expect(
            (
              await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${made[0]}`, {
                token: owner.accessToken,
                body: { content: { text: `edited ${i}` } },
              })
            ).status,
          ).toBe(200);
      }
    })();
    await Promise.all([generations, edits]);
    chaos = false;
    await chaosLoop;

    // The last generation's chunks are broadcast after its stream completes: wait until the
    // uncut observer holds the database's blocks; its last seq is then the canvas's last block event.
    const database = await loadBlocks(owner);
    const expected = new Map(database.map((block) => [block.id, JSON.stringify(block.content)]));
    const same = (view: CanvasView) =>
      view.blocks.size === expected.size && [...view.blocks].every(([id, block]) => expected.get(id) === JSON.stringify(block.content));
    await waitUntil(() => same(observer.view), 30_000);
    const finalSeq = observer.connection.lastSeq(canvasId)!;
    await waitUntil(() => sockets.every((socket) => socket.connected), 30_000);
    await waitUntil(
      () => raw.every((client) => client.last >= finalSeq) && sdk.every((client) => (client.connection.lastSeq(canvasId) ?? 0) >= finalSeq),
      30_000,
    );

    const views = [...raw.map((client) => client.view), ...sdk.map((client) => client.view)];
    expect(cuts).toBeGreaterThanOrEqual(HAND_EDITS);
    expect(database.length).toBe(GENERATIONS * BLOCKS_PER_GENERATION + HAND_EDITS - HAND_EDITS / 4);
    expect(views.filter((view) => !same(view))).toHaveLength(0);
    expect(views.map((view) => view.duplicates)).toEqual(views.map(() => 0));
  }, 120_000);
});
