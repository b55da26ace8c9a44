import { io, type Socket } from 'socket.io-client';
import type { CanvasClientEvents, CanvasServerEvents } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { connectCanvas, type CanvasClient } from '../support/sockets';
import { waitUntil } from '../support/wait';

/**
 * Connection state recovery: a client that drops for less than two minutes gets, on reconnect,
 * the room events it missed — those emitted by the API (block_added) and by a worker (chunks).
 */
describe('a canvas client that briefly loses its connection', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let socket: Socket<CanvasServerEvents, CanvasClientEvents>;

  beforeAll(async () => {
    t = await startTestApp();
    user = await registerUser(t.api, 'Flaky');
    canvasId = await createCanvas(t.api, user);
  });

  const others: CanvasClient[] = [];
  afterAll(async () => {
    socket?.close();
    others.forEach((other) => other.close());
    await t.stop();
  });

  test('receives what it missed on reconnect, with its room membership restored', async () => {
    socket = io(`${t.url}/canvas`, {
      auth: { token: user.accessToken },
      transports: ['websocket'],
      // Reconnected by the test once the events it must miss have happened: a timer could fire
      // before them on a loaded machine, and the events would then arrive live.
      reconnection: false,
    });
    const added: string[] = [];
    const chunks: string[] = [];
    socket.on('block_added', ({ block }) => added.push(block.content.text as string));
    socket.on('blocks_bulk_added_chunk', ({ blocks }) => chunks.push(...blocks.map((b) => b.content.text as string)));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    expect((await socket.timeout(5_000).emitWithAck('canvas:join', canvasId)).ok).toBe(true);
    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'seen live' } },
    });
    await waitUntil(() => added.includes('seen live'));

    // Drop the transport; the client reconnects once these events have happened.
    const dropped = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
    socket.io.engine.close();
    await dropped;
    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'missed while away' } },
    });
    t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'generated while away' } }] });
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'one' },
      until: (m) => m.event === 'complete',
    });
    expect(sse.messages.at(-1)!.event).toBe('complete');
    expect(socket.connected).toBe(false);
    expect(added).toEqual(['seen live']);
    const reconnected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.connect();
    await reconnected;

    await waitUntil(() => added.includes('missed while away') && chunks.includes('generated while away'));
    expect(socket.recovered).toBe(true);
    expect(added).toEqual(['seen live', 'missed while away']);
    // Still in the room: a new event arrives without joining again.
    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'after recovery' } },
    });
    await waitUntil(() => added.includes('after recovery'));
  });

  test('is listed in the room again once recovered: for the others, and in its own list (a replayed "left" is not the last word)', async () => {
    const watcher = await registerUser(t.api, 'Watcher');
    const room = await createCanvas(t.api, user, 'Presence');
    await addMember(t.api, user, room, watcher, 'viewer');
    const watching: CanvasClient = await connectCanvas(t.url, watcher.accessToken);
    others.push(watching);
    const flaky: CanvasClient = io(`${t.url}/canvas`, {
      auth: { token: user.accessToken },
      transports: ['websocket'],
      reconnectionDelay: 300,
      reconnectionDelayMax: 300,
      randomizationFactor: 0,
    });
    others.push(flaky);
    await new Promise<void>((resolve) => flaky.once('connect', () => resolve()));
    const seen = { watcher: [] as string[][], flaky: [] as string[][] };
    watching.on('presence', (p) => p.canvasId === room && seen.watcher.push(p.users.map((u) => u.userId).sort()));
    flaky.on('presence', (p) => p.canvasId === room && seen.flaky.push(p.users.map((u) => u.userId).sort()));
    const both = [user.id, watcher.id].sort();
    expect((await watching.timeout(5_000).emitWithAck('canvas:join', room)).ok).toBe(true);
    expect((await flaky.timeout(5_000).emitWithAck('canvas:join', room)).ok).toBe(true);
    await waitUntil(() => JSON.stringify(seen.watcher.at(-1)) === JSON.stringify(both));

    const reconnected = new Promise<void>((resolve) => flaky.once('connect', () => resolve()));
    flaky.io.engine.close();
    // The watcher hears that the flaky member left…
    await waitUntil(() => JSON.stringify(seen.watcher.at(-1)) === JSON.stringify([watcher.id]));
    await reconnected;
    expect(flaky.recovered).toBe(true);
    // …and, once it is back (its room restored without a join), that it is here again; so does the flaky member itself.
    await waitUntil(
      () => JSON.stringify(seen.watcher.at(-1)) === JSON.stringify(both) && JSON.stringify(seen.flaky.at(-1)) === JSON.stringify(both),
    );
  });
});
