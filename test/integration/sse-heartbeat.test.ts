import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import express from 'express';
import { SseStreams } from '../../src/http/sse-streams';
import { createLogger } from '../../src/lib/logger';
import { createRedis, type RedisClient } from '../../src/lib/redis';
import { redisKeys } from '../../src/lib/redis-keys';
import { testRedisTarget } from '../support/database';
import { eventually, waitUntil } from '../support/wait';

/**
 * The heartbeat of open event streams: every interval each open stream gets an SSE comment (so a
 * proxy keeps it open) and its lease in Redis is extended, the leases of one user together; a
 * stream that ended gives its lease back, and no later heartbeat extends it again.
 */
describe('SseStreams heartbeat', () => {
  const HEARTBEAT_MS = 100;
  let server: Server;
  let redis: RedisClient;
  let streams: SseStreams;
  let keyPrefix: string;
  const clients: Array<{ socket: Socket; text: () => string }> = [];

  beforeEach(async () => {
    keyPrefix = `test:sse-beat:${randomUUID()}`;
    redis = createRedis(testRedisTarget('realtime'), 'blocking');
    streams = new SseStreams({
      redis,
      keyPrefix,
      maxPerUser: 10,
      logger: createLogger({ level: 'silent' }),
      shuttingDown: () => false,
      heartbeatMs: HEARTBEAT_MS,
    });
    const app = express();
    app.get('/events/:user', async (req, res) => {
      await streams.serve(req, res, {
        userId: req.params.user,
        context: {},
        prepare: async () => ({
          interrupted: { event: 'error', data: '{}' },
          async *messages(signal: AbortSignal) {
            yield { id: 1, event: 'open', data: '{}' };
            if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          },
        }),
      });
    });
    server = createServer(app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    server.closeAllConnections();
    server.close();
    // One key per command: on a Redis Cluster the two users' keys sit in different slots.
    for (const user of ['ada', 'bea']) await redis.del(redisKeys(keyPrefix).sseLeases(user));
    redis.disconnect();
  });

  const open = async (user: string) => {
    let text = '';
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.write(`GET /events/${user} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    const client = { socket, text: () => text };
    clients.push(client);
    await waitUntil(() => text.includes('event: open'), 5_000);
    return client;
  };
  const leases = async (user: string) => {
    const flat = await redis.zrange(redisKeys(keyPrefix).sseLeases(user), '0', '-1', 'WITHSCORES');
    const byId = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) byId.set(flat[i], Number(flat[i + 1]));
    return byId;
  };
  const pings = (text: string) => text.split(': ping\n\n').length - 1;

  test("each open stream gets a ping every interval and every user's leases are extended; a closed stream's lease is removed and stays removed", async () => {
    const ada = await Promise.all([open('ada'), open('ada'), open('ada')]);
    const bea = await Promise.all([open('bea'), open('bea')]);
    const first = { ada: await leases('ada'), bea: await leases('bea') };
    expect([first.ada.size, first.bea.size]).toEqual([3, 2]);

    // Two heartbeats: every stream has its pings as whole chunks, and every lease ends later than it did.
    await waitUntil(() => [...ada, ...bea].every((client) => pings(client.text()) >= 2), 5_000);
    expect(ada[0].text()).toMatch(/\r\n: ping\n\n\r\n/);
    for (const user of ['ada', 'bea'] as const)
      await eventually(
        () => leases(user),
        (now) => now.size === first[user].size && [...first[user]].every(([id, score]) => (now.get(id) ?? 0) > score),
        5_000,
      );

    // Ada leaves one stream: its lease goes, the others stay and keep being extended.
    ada[0].socket.destroy();
    await waitUntil(() => streams.size === 4, 5_000);
    const afterLeave = await eventually(
      () => leases('ada'),
      (now) => now.size === 2,
      5_000,
    );
    const seen = pings(ada[1].text());
    await waitUntil(() => pings(ada[1].text()) >= seen + 2, 5_000);
    const later = await eventually(
      () => leases('ada'),
      (now) => [...afterLeave].every(([id, score]) => (now.get(id) ?? 0) > score),
      5_000,
    );
    expect([...later.keys()].sort()).toEqual([...afterLeave.keys()].sort());
    expect((await leases('bea')).size).toBe(2);
  });
});
