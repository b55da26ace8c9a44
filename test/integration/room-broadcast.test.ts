import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'socket.io';
import { createRedis, isCluster, redisReady, type RedisClient } from '../../src/lib/redis';
import { CanvasEmitter } from '../../src/realtime/canvas-emitter';
import { CanvasLog } from '../../src/realtime/canvas-log';
import { CANVAS_NAMESPACE, rooms } from '../../src/schemas/socket-events';
import { closeSocketServer, createSocketServer } from '../../src/realtime/socket-server';
import { testRedisTarget } from '../support/database';
import { deleteKeysEverywhere } from '../support/redis';
import { connectCanvas, record, type CanvasClient } from '../support/sockets';
import { waitUntil } from '../support/wait';

/**
 * Decision 0158: a room event's seq, its place in the replay log and the adapter's record of it
 * are one Redis call, and a worker's emit-only server does not read the adapter's stream. Two
 * real Socket.IO servers on one Redis, as an API node and a worker node, and a real client.
 */
describe('room events written to the adapter stream with their seq', () => {
  const keyPrefix = `rb-${randomUUID().slice(0, 8)}`;
  const connections: RedisClient[] = [];
  const redis = (role: 'command' | 'blocking') => {
    const connection = createRedis(testRedisTarget('realtime'), role);
    connections.push(connection);
    return connection;
  };
  /**
   * The events in the order a client can rely on: as they arrived on one Redis, where one script
   * logs and sends; on a cluster, where logging and sending are two steps, two writers' events may
   * reach the stream out of seq order (each batch still whole and in order, checked below) and the
   * client's sequencer puts them back in order (decision 0258), so each once is what is promised.
   */
  const arrival = <T extends { seq: number }>(events: T[]) =>
    isCluster(connections[0]) ? [...events].sort((a, b) => a.seq - b.seq) : events;
  const httpServer = http.createServer();
  let api: Server;
  let worker: Server;
  let client: CanvasClient;
  const canvasId = randomUUID();
  const logOptions = { maxEvents: 1_000, ttlSeconds: 60, maxCatchUp: 1_000 };

  /** How many records each read of the adapter's stream returned, per node. */
  const apiReads: number[] = [];
  const workerReads: number[] = [];

  beforeAll(async () => {
    await redisReady(redis('command'));
    api = createSocketServer({ redis: redis('blocking'), keyPrefix, httpServer, onStreamRead: (records) => apiReads.push(records) });
    worker = createSocketServer({ redis: redis('blocking'), keyPrefix, onStreamRead: (records) => workerReads.push(records) });
    api.of(CANVAS_NAMESPACE).on('connection', (socket) => void socket.join(rooms.canvas(canvasId)));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    client = await connectCanvas(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`, undefined);
  });

  afterAll(async () => {
    client?.close();
    await Promise.all([closeSocketServer(api), closeSocketServer(worker)]);
    const cleanup = connections[0];
    await deleteKeysEverywhere(cleanup, `${keyPrefix}:*`);
    connections.forEach((connection) => connection.disconnect());
  });

  test('events from two processes at once reach the client once each, in seq order, and the worker node reads none of them', async () => {
    const [apiRedis, workerRedis] = [redis('command'), redis('command')];
    await Promise.all([redisReady(apiRedis), redisReady(workerRedis)]);
    const emitters = [
      new CanvasEmitter(api, new CanvasLog(apiRedis, keyPrefix, logOptions)),
      new CanvasEmitter(worker, new CanvasLog(workerRedis, keyPrefix, logOptions)),
    ];
    const deleted = record(client, 'block_deleted');

    const perEmitter = 150;
    const seqs = await Promise.all(
      emitters.flatMap((emitter, node) =>
        Array.from({ length: perEmitter }, (_, i) => emitter.emit(canvasId, 'block_deleted', { canvasId, blockId: `${node}-${i}` })),
      ),
    );
    await waitUntil(() => deleted.length >= 2 * perEmitter);

    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 2 * perEmitter }, (_, i) => i + 1));
    // In the order of their seq, each once, whichever node emitted it, the client's own node included.
    expect(arrival(deleted).map((event) => event.seq)).toEqual(Array.from({ length: 2 * perEmitter }, (_, i) => i + 1));
    expect(new Set(deleted.map((event) => event.blockId)).size).toBe(2 * perEmitter);
    const logged = await new CanvasLog(connections[0], keyPrefix, logOptions).since(canvasId, 0);
    expect(logged).toMatchObject({ resync: false, lastSeq: 2 * perEmitter });
    if (!logged.resync) expect(logged.events.map((event) => event.payload)).toEqual(arrival(deleted));
    expect(workerReads).toEqual([]);
    expect(apiReads.length).toBeGreaterThan(0);
  });

  test("a batch of events (a broadcast's chunks) is logged and sent in order, one seq each, among events from another process", async () => {
    const [apiRedis, workerRedis] = [redis('command'), redis('command')];
    await Promise.all([redisReady(apiRedis), redisReady(workerRedis)]);
    const other = randomUUID();
    const api2 = new CanvasEmitter(api, new CanvasLog(apiRedis, keyPrefix, logOptions));
    const worker2 = new CanvasEmitter(worker, new CanvasLog(workerRedis, keyPrefix, logOptions));
    const room = rooms.canvas(other);
    for (const socket of await api.of(CANVAS_NAMESPACE).fetchSockets()) socket.join(room);
    const deleted = record(client, 'block_deleted');
    const before = deleted.length;

    const batch = (n: number) => Array.from({ length: 20 }, (_, i) => ({ canvasId: other, blockId: `batch-${n}-${i}` }));
    const [first, , second] = await Promise.all([
      worker2.emitAll(other, 'block_deleted', batch(1)),
      Promise.all(Array.from({ length: 20 }, (_, i) => api2.emit(other, 'block_deleted', { canvasId: other, blockId: `single-${i}` }))),
      worker2.emitAll(other, 'block_deleted', batch(2)),
    ]);
    await waitUntil(() => deleted.filter((event) => event.canvasId === other).length >= 60);

    const received = deleted.slice(before).filter((event) => event.canvasId === other);
    expect(arrival(received).map((event) => event.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    // Each batch keeps its own order: increasing seqs, received in the order given.
    for (const [n, seqs] of [
      [1, first],
      [2, second],
    ] as const) {
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(received.filter((event) => event.blockId.startsWith(`batch-${n}-`)).map((event) => event.seq)).toEqual(seqs);
      expect(received.filter((event) => event.blockId.startsWith(`batch-${n}-`)).map((event) => event.blockId)).toEqual(
        batch(n).map((event) => event.blockId),
      );
    }
    const logged = await new CanvasLog(connections[0], keyPrefix, logOptions).since(other, 0);
    if (logged.resync) throw new Error('the replay log lost events');
    expect(logged.events.map((event) => event.payload)).toEqual(arrival(received));
    // One call per batch: its seqs are consecutive.
    for (const seqs of [first, second]) expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => seqs[0] + i));
  });

  test("a batch reaches a node in one read of the adapter's stream, so the node sends it in one go", async () => {
    const workerRedis = redis('command');
    await redisReady(workerRedis);
    const third = randomUUID();
    const emitter = new CanvasEmitter(worker, new CanvasLog(workerRedis, keyPrefix, logOptions));
    for (const socket of await api.of(CANVAS_NAMESPACE).fetchSockets()) socket.join(rooms.canvas(third));
    const deleted = record(client, 'block_deleted');
    const readsBefore = apiReads.length;

    await emitter.emitAll(
      third,
      'block_deleted',
      Array.from({ length: 20 }, (_, i) => ({ canvasId: third, blockId: `together-${i}` })),
    );
    await waitUntil(() => deleted.filter((event) => event.canvasId === third).length >= 20);

    // Redis answers a blocked XREAD after the first command that adds to its stream: had the batch
    // been 20 commands, the node would have read the first chunk alone and the rest a read later.
    expect(apiReads.slice(readsBefore)).toEqual([20]);
    expect(deleted.filter((event) => event.canvasId === third).map((event) => event.blockId)).toEqual(
      Array.from({ length: 20 }, (_, i) => `together-${i}`),
    );
  });
});
