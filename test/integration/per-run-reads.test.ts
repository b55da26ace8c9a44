import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config';
import { LimitsResolver } from '../../src/auth/limits';
import { SessionGuard } from '../../src/auth/session-guard';
import type { AccessClaims } from '../../src/auth/tokens';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { withRequestOrigin } from '../../src/lib/request-origin';
import { JsonEventLog } from '../../src/lib/redis-streams';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import { testRedisTarget } from '../support/database';
import { monitorEverywhere, redisServers } from '../support/redis';

/**
 * The fixed reads of a light run, each done once: the user's plan once per request (the session
 * check's read serves the feature gates and the budget door), a turn's start in one statement, and
 * a burst of chat events in one round trip to Redis.
 */
describe('reads done once per run', () => {
  let database: Database;
  let repos: Repositories;
  const tiers = loadConfig({}).tiers;

  beforeAll(async () => {
    database = await openDatabase({ url: 'memory://', dataDir: path.join(os.tmpdir(), 'switchboard-per-run-reads') });
    repos = createRepositories(database.db);
  });

  afterAll(async () => {
    await database?.close();
  });

  const newUser = async () => {
    const user = await repos.users.create({ email: `plan-${randomUUID()}@example.com`, name: 'Plan', passwordHash: 'argon2-hash' });
    if (!user) throw new Error('user not created');
    return user;
  };
  const inRequest = <T>(fn: () => Promise<T>) => withRequestOrigin({ ip: '127.0.0.1', userAgent: null }, fn);

  /** The resolver over the real repository, counting its reads of the user's row. */
  const countingResolver = () => {
    const reads = { count: 0 };
    const users = {
      findById: (id: string) => {
        reads.count += 1;
        return repos.users.findById(id);
      },
    };
    return { resolver: new LimitsResolver({ users, tiers }), reads };
  };

  test("given the session check read the plan, the request's feature gate and plan reads read the user no more", async () => {
    const user = await newUser();
    await repos.users.changePlan(user.id, { limitOverrides: { tokensPerHour: 1234, features: { flows: true } } }, { actorId: user.id });
    const { resolver, reads } = countingResolver();
    const guard = new SessionGuard(repos.users);
    const claims = { sub: user.id, email: user.email, name: user.name, tier: 'free', role: 'user' } as AccessClaims;

    const plan = await inRequest(async () => {
      expect(await guard.accept(claims)).toBe(true);
      await resolver.requireFeature(user.id, 'flows');
      return resolver.forUser(user.id);
    });

    expect(reads.count).toBe(0);
    // The plan is the stored one, overrides included.
    expect(plan?.limits.tokensPerHour).toBe(1234);
    expect(plan?.tier).toBe('free');
  });

  test('a plan changed after a request applies from the next request; outside a request every call reads', async () => {
    const user = await newUser();
    const { resolver, reads } = countingResolver();

    const first = await inRequest(async () => {
      const a = await resolver.forUser(user.id);
      const b = await resolver.forUser(user.id);
      return [a, b];
    });
    expect(reads.count).toBe(1);
    expect(first.map((plan) => plan?.tier)).toEqual(['free', 'free']);

    await repos.users.changePlan(user.id, { tier: 'pro' }, { actorId: user.id });
    const second = await inRequest(() => resolver.forUser(user.id));
    expect(second?.tier).toBe('pro');
    expect(reads.count).toBe(2);

    await resolver.forUser(user.id);
    await resolver.forUser(user.id);
    expect(reads.count).toBe(4);
  });

  test('two requests served at once keep their own plan reads', async () => {
    const [alice, bob] = [await newUser(), await newUser()];
    await repos.users.changePlan(bob.id, { tier: 'enterprise' }, { actorId: bob.id });
    const { resolver, reads } = countingResolver();

    const [a, b] = await Promise.all([
      inRequest(async () => [await resolver.forUser(alice.id), await resolver.forUser(alice.id)]),
      inRequest(async () => [await resolver.forUser(bob.id), await resolver.forUser(bob.id)]),
    ]);

    expect(a.map((plan) => plan?.tier)).toEqual(['free', 'free']);
    expect(b.map((plan) => plan?.tier)).toEqual(['enterprise', 'enterprise']);
    expect(reads.count).toBe(2);
  });

  test("a turn's start reads the session, the message, a stored answer and the session's flow in the statement that starts its run", async () => {
    const owner = await newUser();
    const session = await repos.chat.createSession({ userId: owner.id, deviceId: null, title: 'T', mode: 'none' });
    const message = await repos.chat.addMessage({ sessionId: session.id, role: 'user', content: 'Hello?' });
    await repos.runs.insert({ kind: 'chat', id: message.id, userId: owner.id, queue: 'assistant', jobId: message.id });
    const move = { from: ['queued', 'running'] as const, unlessCancelRequested: true };

    const fresh = await repos.chat.startTurn(message.id, move);
    expect(fresh.started).toBe(true);
    expect(fresh.run).toMatchObject({ kind: 'chat', id: message.id, status: 'running', userId: owner.id });
    expect(fresh.run?.startedAt).toBeInstanceOf(Date);
    expect(fresh.row?.session.id).toBe(session.id);
    expect(fresh.row?.message).toEqual(message);
    expect(fresh.row?.reply).toBeNull();
    expect(fresh.row?.earlier).toBe(false);
    expect(fresh.row?.flow).toBeNull();

    // A missing message: no rows, and no run to start.
    expect(await repos.chat.startTurn(randomUUID(), move)).toEqual({ run: null, started: false, row: null });

    await database.db.transaction((tx) =>
      repos.chat.storeAnswer({ sessionId: session.id, role: 'assistant', content: 'Hi.', replyTo: message.id }, tx),
    );
    // Answered: the run is not moved again (an answered turn has ended), the answer comes back.
    const answered = await repos.chat.startTurn(message.id, move);
    expect(answered.started).toBe(false);
    expect(answered.row?.reply).toMatchObject({ role: 'assistant', content: 'Hi.', replyTo: message.id, status: 'completed' });
    expect(answered.row?.message.id).toBe(message.id);
    // The next message of the session has history before it.
    const next = await repos.chat.addMessage({ sessionId: session.id, role: 'user', content: 'And then?' });
    expect((await repos.chat.startTurn(next.id, move)).row?.earlier).toBe(true);
  });

  test('a new session and its first message go in together, with every field the session was given', async () => {
    const owner = await newUser();
    const flowless = await repos.chat.openSession(
      { userId: owner.id, deviceId: 'laptop-1', title: 'First', mode: 'device', context: { project: 'Harbour' } },
      'Where is the plan?',
    );
    const bare = await repos.chat.openSession({ userId: owner.id, deviceId: null, title: 'Bare', mode: 'none' }, 'Hi');

    const session = await repos.chat.findOwned(owner.id, flowless.sessionId);
    expect(session).toMatchObject({
      deviceId: 'laptop-1',
      title: 'First',
      mode: 'device',
      status: 'active',
      context: { project: 'Harbour' },
    });
    expect((await repos.chat.history(flowless.sessionId)).map((row) => [row.id, row.role, row.content])).toEqual([
      [flowless.messageId, 'user', 'Where is the plan?'],
    ]);
    expect(await repos.chat.findOwned(owner.id, bare.sessionId)).toMatchObject({
      deviceId: null,
      mode: 'none',
      context: null,
      flowId: null,
    });
    expect((await repos.chat.startTurn(bare.messageId, { from: ['queued'], unlessCancelRequested: true })).row?.earlier).toBe(false);
  });

  test('a second answer to the same message stores nothing; each end marks the session active, with the device that answered', async () => {
    const owner = await newUser();
    const session = await repos.chat.createSession({ userId: owner.id, deviceId: null, title: 'T', mode: 'device' });
    const message = await repos.chat.addMessage({ sessionId: session.id, role: 'user', content: 'Twice?' });
    const store = (content: string, deviceId?: string) =>
      database.db.transaction((tx) =>
        repos.chat.storeAnswer(
          {
            sessionId: session.id,
            role: 'assistant',
            content,
            replyTo: message.id,
            provider: 'p',
            model: 'm',
            inputTokens: 3,
            outputTokens: 4,
            costUsd: 0.5,
          },
          tx,
          { deviceId },
        ),
      );

    await store('First.', 'laptop-1');
    const touched = await repos.chat.findOwned(owner.id, session.id);
    await store('Second.');

    expect((await repos.chat.history(session.id)).map((row) => [row.role, row.content, row.inputTokens, row.costUsd])).toEqual([
      ['user', 'Twice?', 0, 0],
      ['assistant', 'First.', 3, 0.5],
    ]);
    expect(touched?.deviceId).toBe('laptop-1');
    expect(touched!.updatedAt.getTime()).toBeGreaterThanOrEqual(session.updatedAt.getTime());
    // A later end without a device keeps the one recorded.
    expect((await repos.chat.findOwned(owner.id, session.id))?.deviceId).toBe('laptop-1');
    const refused = await repos.chat.addMessage({ sessionId: session.id, role: 'assistant', content: 'Third.', replyTo: message.id }).then(
      () => null,
      (error: unknown) => error as Error & { cause?: Error },
    );
    expect(refused?.cause?.message ?? refused?.message).toMatch(/duplicate key|chat_messages_one_answer_idx/);
  });

  describe('chat events appended in one tick', () => {
    let redis: RedisClient;
    type Event = { type: 'text_chunk' | 'final'; text: string };
    let log: JsonEventLog<Event>;
    const prefix = `per-run-${randomUUID()}`;

    beforeEach(async () => {
      redis = createRedis(testRedisTarget('realtime'), 'command');
      await redisReady(redis);
      log = new JsonEventLog<Event>(
        redis,
        (id) => `${prefix}:${id}`,
        (event) => event.type === 'final',
        600,
      );
    });

    afterEach(() => redis.disconnect());

    test('are written in order by one script call per batch, which refreshes the TTL, and each append resolves once stored', async () => {
      const id = randomUUID();
      // Every command MONITOR sees (Redis may be shared): the client's are told apart by their
      // connection below, the script's own by the log's key.
      const seen: Array<{ source: string; args: string[] }> = [];
      const watcher = await monitorEverywhere(redis, ({ args, source }) => seen.push({ source, args }));

      const chunks = Array.from({ length: 8 }, (_, i) => log.append(id, { type: 'text_chunk', text: `part ${i}` }));
      await Promise.all(chunks);
      // The terminal event of a later tick comes after every chunk.
      await log.append(id, { type: 'final', text: 'done' });

      expect((await log.stored(id)).map((event) => event.text)).toEqual([...Array.from({ length: 8 }, (_, i) => `part ${i}`), 'done']);
      expect(await log.ended(id)).toBe(true);
      expect(await redis.ttl(log.key(id))).toBeGreaterThan(590);
      await new Promise<void>((resolve) => setImmediate(resolve));
      watcher.stop();
      const mentions = seen.filter(({ args }) => args.includes(log.key(id)));
      const ours = new Set(mentions.filter(({ source }) => source !== 'lua').map(({ source }) => source));
      const sent = seen.filter(({ source }) => ours.has(source)).map(({ args }) => args[0].toLowerCase());
      const scripted = mentions.filter(({ source }) => source === 'lua').map(({ args }) => args[0].toLowerCase());
      // Two batches, the 8 chunks and then the final: two script calls, each with its XADDs and one EXPIRE.
      expect(sent.filter((command) => command === 'evalsha' || command === 'eval')).toHaveLength(2);
      expect(sent.filter((command) => ['multi', 'xadd', 'expire'].includes(command))).toEqual([]);
      expect(scripted.filter((command) => command === 'xadd')).toHaveLength(9);
      expect(scripted.filter((command) => command === 'expire')).toHaveLength(2);
    });

    test('batches in flight when the server lost its scripts (a restart, a failover) are stored in the order appended', async () => {
      const id = randomUUID();
      // The connection has run the script: later batches go by its SHA.
      await log.append(id, { type: 'text_chunk', text: 'part 0' });
      await Promise.all(redisServers(redis).map((server) => server.script('FLUSH')));
      const written: Array<Promise<void>> = [];
      for (let i = 1; i <= 5; i += 1) {
        written.push(log.append(id, { type: 'text_chunk', text: `part ${i}` }));
        // Each tick's appends are a batch of their own, sent before the previous one is answered.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      written.push(log.append(id, { type: 'final', text: 'done' }));
      await Promise.all(written);

      expect((await log.stored(id)).map((event) => event.text)).toEqual([...Array.from({ length: 6 }, (_, i) => `part ${i}`), 'done']);
    });

    test('a failed write rejects every append of its batch', async () => {
      const id = randomUUID();
      // A key of another type makes the script's XADD fail.
      await redis.set(log.key(id), 'not a stream', 'EX', 60);
      const appends = [log.append(id, { type: 'text_chunk', text: 'a' }), log.append(id, { type: 'text_chunk', text: 'b' })];
      await expect(appends[0]).rejects.toThrow(/WRONGTYPE/);
      await expect(appends[1]).rejects.toThrow(/WRONGTYPE/);
    });
  });
});
