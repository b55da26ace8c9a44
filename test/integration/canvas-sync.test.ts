import { randomUUID } from 'node:crypto';
import { connectCanvas as connectSdk } from '@switchboard/client';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { CanvasLog } from '../../src/realtime/canvas-log';
import type { SyncAck } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, type CanvasClient } from '../support/sockets';
import { waitUntil } from '../support/wait';

/**
 * Every room event of a canvas carries `seq`, and `canvas:sync` returns what a member
 * missed, or `resync` when it is no longer kept. Real server, real sockets, real Redis.
 */
describe('canvas event sequence and catch-up', () => {
  let t: TestApp;
  const sockets: Array<{ close(): void }> = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { CANVAS_SYNC_MAX_EVENTS: '5' } });
  }, 120_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  const open = async (user: TestUser): Promise<CanvasClient> => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    return socket;
  };
  const sync = (socket: CanvasClient, canvasId: string, afterSeq: unknown): Promise<SyncAck> =>
    socket.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq } as never);
  const addBlock = async (user: TestUser, canvasId: string, text: string) =>
    (await request('POST', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken, body: { type: 'text', content: { text } } }))
      .body.block as { id: string };

  test('a member who was away gets exactly the events it missed, in order, by canvas:sync', async () => {
    const owner = await registerUser(t.api, 'Owner');
    const canvasId = await createCanvas(t.api, owner, 'Sync');
    const first = await open(owner);
    const joined = await join(first, canvasId);
    expect(joined).toMatchObject({ ok: true, seq: 0 });
    first.close();

    const a = await addBlock(owner, canvasId, 'a');
    const b = await addBlock(owner, canvasId, 'b');
    await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${a.id}`, { token: owner.accessToken });

    const back = await open(owner);
    const caughtUp = await sync(back, canvasId, 0);
    expect(caughtUp).toEqual({
      ok: true,
      resync: false,
      lastSeq: 3,
      events: [
        {
          seq: 1,
          event: 'block_added',
          payload: expect.objectContaining({ canvasId, seq: 1, block: expect.objectContaining({ id: a.id }) }),
        },
        { seq: 2, event: 'block_added', payload: expect.objectContaining({ seq: 2, block: expect.objectContaining({ id: b.id }) }) },
        { seq: 3, event: 'block_deleted', payload: { canvasId, blockId: a.id, seq: 3 } },
      ],
    });
    expect(await sync(back, canvasId, 2)).toMatchObject({ ok: true, resync: false, events: [expect.objectContaining({ seq: 3 })] });
    expect(await sync(back, canvasId, 3)).toEqual({ ok: true, resync: false, events: [], lastSeq: 3 });
  });

  test('more missed events than CANVAS_SYNC_MAX_EVENTS, or a cursor ahead of the log, answer resync', async () => {
    const owner = await registerUser(t.api, 'Busy');
    const canvasId = await createCanvas(t.api, owner, 'Busy');
    for (let i = 0; i < 8; i += 1) await addBlock(owner, canvasId, `block ${i}`);
    const socket = await open(owner);

    expect(await sync(socket, canvasId, 0)).toEqual({ ok: true, resync: true, lastSeq: 8 });
    expect(await sync(socket, canvasId, 4)).toMatchObject({ ok: true, resync: false, lastSeq: 8 });
    // A cursor past the counter means Redis lost its data: only a reload is safe.
    expect(await sync(socket, canvasId, 50)).toEqual({ ok: true, resync: true, lastSeq: 8 });
  });

  test('only members can sync; malformed requests get validation_failed and the socket stays usable', async () => {
    const owner = await registerUser(t.api, 'Keeper');
    const outsider = await registerUser(t.api, 'Outsider');
    const viewer = await registerUser(t.api, 'Viewer');
    const canvasId = await createCanvas(t.api, owner, 'Private');
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    await addBlock(owner, canvasId, 'secret');
    const [outsiderSocket, viewerSocket] = await Promise.all([open(outsider), open(viewer)]);

    expect(await sync(outsiderSocket, canvasId, 0)).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    expect(await sync(outsiderSocket, randomUUID(), 0)).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    for (const bad of [-1, 1.5, '3', null, Number.MAX_VALUE]) {
      expect(await sync(outsiderSocket, canvasId, bad)).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'validation_failed' }),
      });
    }
    // A viewer may catch up without joining first (it is checked as a member).
    expect(await sync(viewerSocket, canvasId, 0)).toMatchObject({ ok: true, resync: false, lastSeq: 1 });
  });

  test('seq is strictly increasing and never repeats when many connections append to one canvas at once', async () => {
    const connections: RedisClient[] = [];
    try {
      for (let i = 0; i < 4; i += 1) {
        const redis = createRedis(testRedisTarget('realtime'), 'command');
        await redisReady(redis);
        connections.push(redis);
      }
      // Four connections stand for four processes (API nodes and workers) sharing one Redis.
      const prefix = `seq-${randomUUID().slice(0, 8)}`;
      const writers = connections.map((redis) => new CanvasLog(redis, prefix, { maxEvents: 1000, ttlSeconds: 120, maxCatchUp: 1000 }));
      const canvasId = randomUUID();
      const seqs = (
        await Promise.all(
          writers.flatMap((log, w) =>
            Array.from({ length: 50 }, (_, n) => log.append(canvasId, 'block_deleted', { canvasId, blockId: `${w}-${n}` })),
          ),
        )
      ).sort((x, y) => x - y);

      expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const replay = await writers[0].since(canvasId, 0);
      expect(replay.resync).toBe(false);
      if (!replay.resync) expect(replay.events.map((event) => event.seq)).toEqual(seqs);
    } finally {
      connections.forEach((redis) => redis.disconnect());
    }
  });

  test('deleting a canvas removes its seq counter and replay log from Redis; a job still running for it cannot bring them back', async () => {
    const owner = await registerUser(t.api, 'Deleter');
    const canvasId = await createCanvas(t.api, owner, 'Doomed');
    await addBlock(owner, canvasId, 'one');
    const redis = createRedis(testRedisTarget('realtime'), 'command');
    try {
      await redisReady(redis);
      const keys = [`${t.keyPrefix}:canvas:{${canvasId}}:seq`, `${t.keyPrefix}:canvas:{${canvasId}}:log`];
      expect(await redis.exists(...keys)).toBe(2);
      expect((await request('DELETE', `${t.api}/canvases/${canvasId}`, { token: owner.accessToken })).status).toBe(204);
      expect(await redis.exists(...keys)).toBe(0);
      // As a broadcast or generation job that was mid-way when the canvas went would: refused.
      const late = new CanvasLog(redis, t.keyPrefix, { maxEvents: 10, ttlSeconds: 60, maxCatchUp: 10 });
      expect(await late.append(canvasId, 'block_deleted', { canvasId, blockId: 'late' })).toBe(0);
      expect(await late.appendAll(canvasId, 'block_deleted', [{ canvasId, blockId: 'later' }])).toEqual([0]);
      expect(await redis.exists(...keys)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  test('the SDK hands each event to the application once, in order, across a dropped connection', async () => {
    const owner = await registerUser(t.api, 'Sdk');
    const canvasId = await createCanvas(t.api, owner, 'SDK');
    const connection = await connectSdk({
      url: t.url,
      token: owner.accessToken,
      socketOptions: { reconnectionDelay: 50, reconnectionDelayMax: 100 },
    });
    sockets.push(connection);
    const handed: number[] = [];
    connection.onEvent(({ payload }) => handed.push(payload.seq));
    expect(await connection.join(canvasId)).toMatchObject({ ok: true, seq: 0 });

    await addBlock(owner, canvasId, 'before');
    await waitUntil(() => handed.length === 1);
    connection.io.engine.close(); // the transport drops; the client reconnects by itself
    await addBlock(owner, canvasId, 'while away 1');
    await addBlock(owner, canvasId, 'while away 2');
    await waitUntil(() => connection.connected && handed.length >= 3);
    await addBlock(owner, canvasId, 'after');
    await waitUntil(() => handed.length >= 4);

    expect(handed).toEqual([1, 2, 3, 4]);
    expect(connection.lastSeq(canvasId)).toBe(4);
  });
});
