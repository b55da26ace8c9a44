import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { cacheLookups } from '../../src/lib/cache-stats';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import type { UserSubscriptions } from '../../src/models/webhooks-repository';
import { SubscriptionCache } from '../../src/webhooks/subscriptions';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisTarget, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually, waitUntil } from '../support/wait';

/**
 * A user's webhook subscriptions are cached per process, so a run's end reads nothing when nobody
 * subscribed; a change made on one node is announced and every other node reads them again.
 */
describe('webhook subscriptions cache, on the real Redis', () => {
  const prefix = `t-${randomUUID().slice(0, 8)}`;
  let redis: RedisClient;
  const caches: SubscriptionCache[] = [];
  const none: UserSubscriptions = { endpoints: [], pushes: false };

  beforeAll(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
  });
  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    redis.disconnect();
  });

  /** A cache whose loads are counted; a user's load waits for `gates[user]` when one is set. */
  const node = () => {
    const loads: string[] = [];
    const gates = new Map<string, Promise<void>>();
    const cache = new SubscriptionCache(redis, prefix, async (userId) => {
      loads.push(userId);
      await gates.get(userId);
      return none;
    });
    caches.push(cache);
    return { cache, loads, gates, of: (userId: string) => loads.filter((id) => id === userId).length };
  };

  /** Waits until `b` dropped its entry of `userId` (announced from elsewhere): its next lookup reads again. */
  const dropped = (b: ReturnType<typeof node>, userId: string, reads: number) =>
    waitUntil(() => {
      void b.cache.get(userId);
      return b.of(userId) >= reads;
    });

  test('a user is read once per process; a change announced on one node makes the other read again, that user only', async () => {
    const a = node();
    const b = node();
    await Promise.all([a.cache.listen(), b.cache.listen()]);
    const [user, other] = [randomUUID(), randomUUID()];
    // Two lookups at once (a run's end asks for its webhooks and its push configs) share one read.
    await Promise.all([b.cache.get(user), b.cache.get(user)]);
    await b.cache.get(user);
    await b.cache.get(other);
    expect(b.of(user)).toBe(1);

    await a.cache.changed(user);
    await dropped(b, user, 2);
    await b.cache.get(user);
    await b.cache.get(other);
    expect(b.of(user)).toBe(2);
    expect(b.of(other)).toBe(1);
  });

  test('a read that overlaps an announcement is not kept: the next lookup reads again', async () => {
    const a = node();
    const b = node();
    await Promise.all([a.cache.listen(), b.cache.listen()]);
    const [user, marker] = [randomUUID(), randomUUID()];
    await b.cache.get(marker);
    let release!: () => void;
    b.gates.set(user, new Promise<void>((resolve) => (release = resolve)));
    const reading = b.cache.get(user);
    // One channel, in order: once the marker's announcement arrived, the user's had.
    await a.cache.changed(user);
    await a.cache.changed(marker);
    await dropped(b, marker, 2);
    release();
    await reading;
    b.gates.delete(user);
    await b.cache.get(user);
    expect(b.of(user)).toBe(2);
  });

  test('before it is subscribed, and after it is closed, nothing is kept', async () => {
    const b = node();
    const user = randomUUID();
    await b.cache.get(user);
    await b.cache.get(user);
    expect(b.loads).toHaveLength(2);
    await b.cache.listen();
    await b.cache.get(user);
    await b.cache.get(user);
    expect(b.loads).toHaveLength(3);
    await b.cache.close();
    await b.cache.get(user);
    expect(b.loads).toHaveLength(4);
  });
});

/**
 * Two nodes on one database and Redis: the API node takes the requests (and the endpoint's
 * creation and deletion), the worker node ends the runs and publishes their webhooks.
 */
describe('webhook subscriptions across an API node and a worker node', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let api: RunningSwitchboard;
  let worker: RunningSwitchboard;
  let base: string;
  let ada: TestUser;
  let receiver: http.Server;
  let origin: string;
  const keyPrefix = `subs-${randomUUID().slice(0, 8)}`;

  const start = (roles: string) =>
    startSwitchboard(
      testConfig({ keyPrefix, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: roles, WEBHOOK_PRIVATE_ORIGINS: origin } }),
      {
        logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      },
    );

  beforeAll(async () => {
    receiver = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(204).end()));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    // A PostgreSQL server: the two nodes share the database (PGlite lives in one process).
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(() => ({ text: 'An answer.' }));
    api = await start('api');
    worker = await start('worker');
    base = `${api.url}/api/v1`;
    ada = await registerUser(base, 'Ada');
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    await llm?.close();
    await database?.drop();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const chat = async () => {
    const res = await request('POST', `${base}/chat`, { token: ada.accessToken, body: { message: 'Hello', tools: 'none' } });
    expect(res.status).toBe(200);
  };
  /** The worker's lookups (the API node makes none: it ends no run here). */
  const lookups = () => cacheLookups().webhook_subscriptions;
  /** Chats until the worker's lookups grew by `count` (a run's end is published just after its answer). */
  const turnEnds = async (count: number) => {
    const before = lookups();
    await chat();
    await eventually(
      async () => lookups(),
      (now) => now.hit + now.miss >= before.hit + before.miss + count,
    );
    return { misses: lookups().miss - before.miss };
  };
  const deliveries = async (endpointId: string) => {
    const res = await request('GET', `${base}/webhooks/${endpointId}/deliveries`, { token: ada.accessToken });
    expect(res.status).toBe(200);
    return res.body.deliveries as Array<{ eventType: string }>;
  };

  test("the worker reads a user's subscriptions once, and again after the API node changed them", async () => {
    // Each run's end looks twice (webhooks, push configs): the first turn reads, the second reads nothing.
    expect((await turnEnds(2)).misses).toBe(1);
    expect((await turnEnds(2)).misses).toBe(0);

    const created = await request('POST', `${base}/webhooks`, {
      token: ada.accessToken,
      body: { url: `${origin}/hook`, events: ['run.succeeded'] },
    });
    expect(created.status).toBe(201);
    const endpointId = (created.body as { webhook: { id: string } }).webhook.id;
    // The announcement made on the API node reached the worker: the next run's end reads again and is delivered.
    await eventually(
      async () => {
        await chat();
        return deliveries(endpointId);
      },
      (rows) => rows.length > 0,
    );
    expect((await deliveries(endpointId)).every((row) => row.eventType === 'run.succeeded')).toBe(true);
    expect((await turnEnds(2)).misses).toBe(0);

    const removed = await request('DELETE', `${base}/webhooks/${endpointId}`, { token: ada.accessToken });
    expect(removed.status).toBe(204);
    await eventually(
      async () => (await turnEnds(2)).misses,
      (misses) => misses === 1,
    );
  }, 60_000);
});
