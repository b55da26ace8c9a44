import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'socket.io';
import { io as connect, type Socket } from 'socket.io-client';
import { createLogger } from '../../src/lib/logger';
import { createRedis, isCluster, redisReady, type RedisClient } from '../../src/lib/redis';
import { redisKeys } from '../../src/lib/redis-keys';
import { RedisStreamsCluster } from '../../src/realtime/redis-streams-adapter';
import { closeSocketServer, createSocketServer } from '../../src/realtime/socket-server';
import { testRedisTarget, testRedisUrl } from '../support/database';
import { clientsEverywhere, deleteKeysEverywhere, redisServers } from '../support/redis';
import { startTcpProxy } from '../support/tcp-proxy';
import { eventually, waitUntil } from '../support/wait';

/**
 * Our Redis Streams adapter (redis-streams-adapter.ts) on real Redis with real Socket.IO servers
 * and clients: two API nodes and an emit-only worker node sharing one stream.
 */
describe('the Redis Streams adapter', () => {
  const keyPrefix = `sa-${randomUUID().slice(0, 8)}`;
  const connections: RedisClient[] = [];
  const redis = (role: 'command' | 'blocking') => {
    const connection = createRedis(testRedisTarget('realtime'), role);
    connections.push(connection);
    return connection;
  };
  const httpServers = [http.createServer(), http.createServer()];
  const clients: Socket[] = [];
  let apiA: Server;
  let apiB: Server;
  let worker: Server;
  let command: RedisClient;

  /** A client of `server`, connected, in room `r` (the servers put every socket there). */
  const client = async (server: http.Server): Promise<Socket> => {
    const socket = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    clients.push(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timed out')), 10_000);
      socket.once('connect', () => (clearTimeout(timer), resolve()));
    });
    return socket;
  };

  beforeAll(async () => {
    command = redis('command');
    await redisReady(command);
    apiA = createSocketServer({ redis: redis('blocking'), keyPrefix, httpServer: httpServers[0] });
    apiB = createSocketServer({ redis: redis('blocking'), keyPrefix, httpServer: httpServers[1] });
    worker = createSocketServer({ redis: redis('blocking'), keyPrefix });
    for (const node of [apiA, apiB, worker]) {
      node.on('connection', (socket) => void socket.join('r'));
      node.on('ping-nodes', (answer: (name: string) => void) => answer(node === worker ? 'worker' : node === apiA ? 'a' : 'b'));
    }
    await Promise.all(httpServers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
    // Every node subscribed: the cluster counts three.
    await eventually(
      () => apiA.of('/').adapter.serverCount(),
      (n) => n === 3,
    );
  });

  afterAll(async () => {
    clients.forEach((socket) => socket.close());
    await Promise.all([apiA, apiB, worker].map((node) => closeSocketServer(node)));
    await deleteKeysEverywhere(command, `${keyPrefix}:*`);
    connections.forEach((connection) => connection.disconnect());
  });

  test('a room spans both API nodes, and the worker node emits into it without serving HTTP', async () => {
    const [onA, onB] = [await client(httpServers[0]), await client(httpServers[1])];
    const got = { a: [] as number[], b: [] as number[] };
    onA.on('hello', (n: number) => got.a.push(n));
    onB.on('hello', (n: number) => got.b.push(n));

    worker.to('r').emit('hello', 1);
    apiA.to('r').emit('hello', 2);
    await waitUntil(() => got.a.length >= 2 && got.b.length >= 2, 15_000);

    expect(got.a.sort()).toEqual([1, 2]);
    expect(got.b.sort()).toEqual([1, 2]);
  }, 30_000);

  test('emitWithAck, serverSideEmitWithAck and fetchSockets answer across nodes', async () => {
    const [onA, onB] = [await client(httpServers[0]), await client(httpServers[1])];
    onA.on('ask', (question: string, answer: (reply: string) => void) => answer(`a:${question}`));
    onB.on('ask', (question: string, answer: (reply: string) => void) => answer(`b:${question}`));
    const room = `ask-${randomUUID()}`;
    apiA.in(onA.id!).socketsJoin(room);
    apiB.in(onB.id!).socketsJoin(room);
    await waitUntil(() => Boolean(apiA.of('/').adapter.rooms.get(room)?.size && apiB.of('/').adapter.rooms.get(room)?.size), 15_000);

    const replies = (await worker.to(room).timeout(5_000).emitWithAck('ask', 'q')) as string[];
    const nodes = (await apiA.serverSideEmitWithAck('ping-nodes')) as string[];
    const sockets = await worker.in(room).fetchSockets();

    expect(replies.sort()).toEqual(['a:q', 'b:q']);
    expect(nodes.sort()).toEqual(['b', 'worker']);
    expect(sockets.map((socket) => socket.id).sort()).toEqual([onA.id, onB.id].sort());
  }, 30_000);

  test('an answered emitWithAck across nodes leaves no timer that holds the process for its timeout', async () => {
    const onA = await client(httpServers[0]);
    onA.on('ask', (question: string, answer: (reply: string) => void) => answer(`a:${question}`));
    const room = `ask-${randomUUID()}`;
    apiA.in(onA.id!).socketsJoin(room);
    await waitUntil(() => Boolean(apiA.of('/').adapter.rooms.get(room)?.size), 15_000);
    const holding = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = holding();
    // Twenty calls of a device-like timeout, all answered at once from the other node.
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, n) => worker.to(room).timeout(120_000).emitWithAck('ask', String(n)) as Promise<string[]>),
    );
    expect(replies.map((reply) => reply[0]).sort()).toEqual(Array.from({ length: 20 }, (_, n) => `a:${n}`).sort());
    // Before, each left a two-minute timer behind (socket.io-adapter's forgetting of the answers).
    expect(holding() - before).toBeLessThan(10);
  }, 30_000);

  test('a client that drops and comes back within the window is recovered and gets what it missed, in order', async () => {
    const socket = await client(httpServers[0]);
    const got: number[] = [];
    socket.on('count', (n: number) => got.push(n));
    worker.to('r').emit('count', 0);
    await waitUntil(() => got.length === 1, 15_000);
    const gone = new Promise<void>((resolve) => {
      const serverSide = apiA.of('/').sockets.get(socket.id!);
      serverSide?.once('disconnect', () => resolve());
    });
    const back = new Promise<void>((resolve) => socket.io.once('reconnect', () => resolve()));

    socket.io.engine.close();
    await gone;
    for (let n = 1; n <= 5; n += 1) worker.to('r').emit('count', n);
    await back;
    await waitUntil(() => got.length >= 6, 15_000);

    expect(socket.recovered).toBe(true);
    expect(got).toEqual([0, 1, 2, 3, 4, 5]);
  }, 30_000);

  test('under a steady stream of room events, every recovered reconnect gets every event it missed, once, in order', async () => {
    // The socket is restored, then waits for an asynchronous middleware (as authentication does)
    // before it receives room broadcasts: events the node reads meanwhile must not fall between.
    const httpServer = http.createServer();
    const node = createSocketServer({ redis: redis('blocking'), keyPrefix, httpServer });
    node.use((_socket, next) => void command.ping().then(() => next(), next));
    node.on('connection', (socket) => void socket.join('steady'));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const socket = await client(httpServer);
    const got: number[] = [];
    socket.on('tick', (n: number) => got.push(n));
    let sent = 0;
    const ticker = setInterval(() => void worker.to('steady').emit('tick', sent++), 2);
    const recovered: boolean[] = [];

    try {
      for (let cut = 0; cut < 12; cut += 1) {
        const seen = got.length;
        await waitUntil(() => got.length > seen + 5, 15_000);
        const back = new Promise<void>((resolve) => socket.io.once('reconnect', () => resolve()));
        socket.io.engine.close();
        await back;
        await waitUntil(() => socket.connected, 15_000);
        recovered.push(socket.recovered);
      }
    } finally {
      clearInterval(ticker);
    }
    // The last event sent arrives last: everything before it arrived by then or was lost.
    await waitUntil(() => got.at(-1) === sent - 1, 15_000);

    expect(recovered).toEqual(Array.from({ length: 12 }, () => true));
    // The count starts with the first event the node read: its stream reader may begin after the
    // ticker did (a loaded machine). From there on, nothing may be missing, repeated or out of order.
    const first = got[0];
    expect(first).toBeLessThan(50);
    expect(got).toEqual(Array.from({ length: sent - first }, (_, n) => first + n));
    await closeSocketServer(node);
  }, 120_000);

  test('a recovered socket whose node reads the stream behind its replay gets each missed event once', async () => {
    // The node's Redis is one server behind a proxy (on every topology: the proxy fronts one
    // server), which holds its stream reader's replies while the socket is away and comes back:
    // the replay reads the stream up to its end, the reader is still behind it when the socket connects.
    const server = new URL(testRedisUrl());
    const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port) });
    const prefix = `${keyPrefix}-behind`;
    const direct = createRedis(testRedisUrl(), 'blocking');
    const through = createRedis(`redis://127.0.0.1:${proxy.port}`, 'blocking');
    const httpServer = http.createServer();
    const node = createSocketServer({ redis: through, keyPrefix: prefix, httpServer });
    const emitter = createSocketServer({ redis: direct, keyPrefix: prefix });
    node.on('connection', (socket) => void socket.join('behind'));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    // Reconnects only when told, so the events it misses are on the stream before it asks for them.
    const socket = connect(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    });
    const got: number[] = [];
    socket.on('n', (n: number) => got.push(n));
    const streamKey = redisKeys(prefix).socketIoStream();
    let release = () => undefined as void;
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // The node's reader starts at the stream's end once connected: until then an event misses it.
      let warmed = false;
      socket.once('warm', () => (warmed = true));
      const warming = setInterval(() => void emitter.to('behind').emit('warm'), 20);
      await waitUntil(() => warmed, 15_000).finally(() => clearInterval(warming));
      emitter.to('behind').emit('n', 0);
      await waitUntil(() => got.length === 1, 15_000);

      release = proxy.hold('xread');
      const gone = new Promise<void>((resolve) =>
        node
          .of('/')
          .sockets.get(socket.id!)
          ?.once('disconnect', () => resolve()),
      );
      socket.io.engine.close();
      await gone;
      for (let n = 1; n <= 3; n += 1) emitter.to('behind').emit('n', n);
      await eventually(
        () => direct.xlen(streamKey),
        (length) => length >= 4,
      );
      socket.connect();
      await waitUntil(() => socket.connected && got.length === 4, 15_000);
      expect(socket.recovered).toBe(true);

      // The reader reads the events the replay gave, then a new one.
      release();
      emitter.to('behind').emit('n', 4);
      await waitUntil(() => got.at(-1) === 4, 15_000);
      expect(got).toEqual([0, 1, 2, 3, 4]);
    } finally {
      release();
      socket.close();
      await Promise.all([closeSocketServer(node), closeSocketServer(emitter)]);
      await direct.del(streamKey);
      direct.disconnect();
      through.disconnect();
      await proxy.close();
    }
  }, 60_000);

  test('the stream stays near its length bound', async () => {
    const blocking = redis('blocking');
    const keys = redisKeys(`${keyPrefix}:bounded`);
    const streamKey = keys.socketIoStream();
    const cluster = new RedisStreamsCluster(blocking, {
      keys,
      maxLen: 100,
      recoveryWindowMs: 60_000,
      readStream: false,
      logger: createLogger({ level: 'warn', name: 'bounded-adapter-test' }),
    });
    const bounded = createSocketServer({ redis: redis('blocking'), keyPrefix: `${keyPrefix}:other` });
    const adapter = cluster.adapterFor(bounded.of('/bounded'));

    for (let i = 0; i < 1_000; i += 1) await adapter.broadcast({ type: 2, data: ['n', i] }, { rooms: new Set(['x']), except: new Set() });
    const length = await command.xlen(streamKey);

    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(300);
    await adapter.close();
    await closeSocketServer(bounded);
  }, 60_000);

  test('closing a server closes the connections its adapter opened', async () => {
    const name = `${keyPrefix}-closing`;
    const own = createRedis(testRedisTarget('realtime'), 'blocking', { connectionName: name });
    connections.push(own);
    await redisReady(own);
    // The given connection, to each server: one, or each master of a cluster (opened now, so it
    // opens none later).
    await Promise.all(redisServers(own).map((server) => server.ping()));
    const alone = redisServers(own).length;
    // A cluster client names its subscriber's connection `ioredis-cluster(subscriber):<name>`.
    const named = new RegExp(` name=(ioredis-cluster\\(subscriber\\):)?${name} `);
    const lines = async () => (await clientsEverywhere(command)).filter(({ line }) => named.test(line)).map(({ line }) => line);
    expect(await eventually(lines, (found) => found.length === alone)).toHaveLength(alone);
    const server = http.createServer();
    const node = createSocketServer({ redis: own, keyPrefix, httpServer: server });
    node.of('/device');
    // The given connection, the stream reader and the subscriber; on a cluster the reader and the
    // subscriber are cluster clients of their own, with a connection to each node they use.
    const open = await eventually(lines, (found) => found.length >= alone + 2 && found.some((line) => / sub=[1-9]/.test(line)));
    if (!isCluster(own)) expect(open).toHaveLength(3);

    await closeSocketServer(node);

    // The given connection is the caller's to close: only its own are left.
    expect(await eventually(lines, (found) => found.length === alone)).toHaveLength(alone);
  }, 30_000);
});
