import { randomUUID } from 'node:crypto';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { redisScripts, type RedisScripts } from '../../src/lib/redis-scripts';
import { testRedisTarget } from '../support/database';
import { deleteKeysEverywhere, monitorEverywhere, redisServers } from '../support/redis';

function waitFor(event: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not seen within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([event, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Each Lua script of `redis-scripts.ts` against the run's Redis (or cluster), under a key prefix of
 * its own: one hash tag, so every key a script is given shares a slot, as the app's keys do.
 */
describe('RedisScripts', () => {
  let redis: RedisClient;
  let scripts: RedisScripts;
  let prefix: string;

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    scripts = redisScripts(redis);
    prefix = `scripts-test:{${randomUUID()}}`;
  });

  afterEach(async () => {
    await deleteKeysEverywhere(redis, `${prefix}:*`);
    redis.disconnect();
  });

  const key = (name: string) => `${prefix}:${name}`;

  /** The commands (lower case) that reach the server naming `watched` while `act` runs, in order. */
  async function commandsSent(watched: string, act: () => Promise<void>): Promise<string[]> {
    const sent: string[] = [];
    let markerSeen: () => void = () => undefined;
    const marker = new Promise<void>((resolve) => (markerSeen = resolve));
    const watcher = await monitorEverywhere(redis, ({ args, source }) => {
      if (source === 'lua') return;
      if (args.includes(key('marker'))) markerSeen();
      else if (args.includes(watched)) sent.push(args[0].toLowerCase());
    });
    try {
      await act();
      // MONITOR reports a server's commands in the order they ran: once the marker (same slot, so
      // same server) shows, every command before it has.
      await redis.exists(key('marker'));
      await waitFor(marker, 10_000);
    } finally {
      watcher.stop();
    }
    return sent;
  }

  test('one connection makes its scripts once, sends EVAL the first time and EVALSHA after, nothing else', async () => {
    expect(redisScripts(redis)).toBe(scripts);
    const sent = await commandsSent(key('window'), async () => {
      for (let hit = 0; hit < 3; hit += 1) await scripts.fixedWindowHit({ window: key('window') }, { limit: 10, windowMs: 60_000 });
    });
    expect(sent).toEqual(['eval', 'evalsha', 'evalsha']);
  });

  test('a script the server no longer holds (a restart, SCRIPT FLUSH) is sent whole again and runs', async () => {
    const window = { window: key('flushed') };
    expect(await scripts.fixedWindowHit(window, { limit: 100, windowMs: 60_000 })).toBe(0);
    let hits = 1;
    // The run's Redis is shared with the other test files, whose connections load the same scripts:
    // one of them may send this script whole between the flush and the first call here, and the
    // call then finds it. Such a round shows no miss and is flushed again (a few rounds at most).
    let sent: string[] = [];
    for (let round = 0; round < 5 && sent[1] !== 'eval'; round += 1) {
      // Every server's cache, so the next EVALSHA misses whichever node holds the key. The app's
      // other connections (and BullMQ's) reload their scripts the same way.
      await Promise.all(redisServers(redis).map((server) => server.script('FLUSH')));
      sent = await commandsSent(key('flushed'), async () => {
        expect(await scripts.fixedWindowHit(window, { limit: 100, windowMs: 60_000 })).toBe(0);
        expect(await scripts.fixedWindowHit(window, { limit: 100, windowMs: 60_000 })).toBe(0);
      });
      hits += 2;
    }
    // NOSCRIPT is answered before anything runs: the hit is counted once, by the EVAL after it.
    expect(sent).toEqual(['evalsha', 'eval', 'evalsha']);
    expect(await redis.get(key('flushed'))).toBe(String(hits));
  });

  test('fixedWindowHit counts hits up to the limit, then answers the ms left in the window', async () => {
    const window = { window: key('rl') };
    expect(await scripts.fixedWindowHit(window, { limit: 2, windowMs: 30_000 })).toBe(0);
    expect(await scripts.fixedWindowHit(window, { limit: 2, windowMs: 30_000 })).toBe(0);
    const retryMs = await scripts.fixedWindowHit(window, { limit: 2, windowMs: 30_000 });
    expect(retryMs).toBeGreaterThan(25_000);
    expect(retryMs).toBeLessThanOrEqual(30_000);
    expect(await redis.pttl(key('rl'))).toBeGreaterThan(25_000);
  });

  test('takeGenerationSlot counts both windows and the in-flight set, and names the limit that refuses', async () => {
    const keys = { minute: key('m'), hour: key('h'), inFlight: key('active') };
    const args = (generationId: string, limits: { perMinute: number; perHour: number; concurrent: number }) => ({
      ...limits,
      nowMs: Date.now(),
      generationId,
      slotMs: 900_000,
      minuteMs: 60_000,
      hourMs: 3_600_000,
    });
    expect(await scripts.takeGenerationSlot(keys, args('g1', { perMinute: 5, perHour: 10, concurrent: 1 }))).toEqual({ taken: true });
    expect(await redis.zrange(key('active'), '0', '-1')).toEqual(['g1']);
    expect(await redis.get(key('m'))).toBe('1');
    expect(await redis.get(key('h'))).toBe('1');

    expect(await scripts.takeGenerationSlot(keys, args('g2', { perMinute: 5, perHour: 10, concurrent: 1 }))).toEqual({
      taken: false,
      reason: 'concurrent',
      retryMs: 2_000,
    });
    const perHour = await scripts.takeGenerationSlot(keys, args('g3', { perMinute: 5, perHour: 1, concurrent: 5 }));
    expect(perHour).toMatchObject({ taken: false, reason: 'per-hour' });
    const perMinute = await scripts.takeGenerationSlot(keys, args('g4', { perMinute: 1, perHour: 10, concurrent: 5 }));
    expect(perMinute).toMatchObject({ taken: false, reason: 'per-minute' });
    if (perMinute.taken) throw new Error('unreachable');
    expect(perMinute.retryMs).toBeGreaterThan(55_000);
    // A refusal counts nothing.
    expect(await redis.get(key('m'))).toBe('1');
  });

  test('takeGenerationSlot frees a slot whose time is up (a worker that died)', async () => {
    const keys = { minute: key('m'), hour: key('h'), inFlight: key('active') };
    const limits = { perMinute: 5, perHour: 10, concurrent: 1, minuteMs: 60_000, hourMs: 3_600_000 };
    const now = Date.now();
    await scripts.takeGenerationSlot(keys, { ...limits, nowMs: now - 2_000, generationId: 'old', slotMs: 1_000 });
    expect(await scripts.takeGenerationSlot(keys, { ...limits, nowMs: now, generationId: 'new', slotMs: 900_000 })).toEqual({
      taken: true,
    });
    expect(await redis.zrange(key('active'), '0', '-1')).toEqual(['new']);
  });

  test('untakeGenerationSlot undoes one take (slot and both counts), once, and nothing for a slot no longer held', async () => {
    const keys = { minute: key('m'), hour: key('h'), inFlight: key('active') };
    const take = (generationId: string) =>
      scripts.takeGenerationSlot(keys, {
        perMinute: 5,
        perHour: 10,
        concurrent: 5,
        nowMs: Date.now(),
        generationId,
        slotMs: 900_000,
        minuteMs: 60_000,
        hourMs: 3_600_000,
      });
    await take('kept');
    await take('undone');
    const ttl = await redis.pttl(key('m'));

    expect(await scripts.untakeGenerationSlot(keys, { generationId: 'undone' })).toBe(true);
    expect(await redis.zrange(key('active'), '0', '-1')).toEqual(['kept']);
    expect([await redis.get(key('m')), await redis.get(key('h'))]).toEqual(['1', '1']);
    // The windows keep their end.
    expect(await redis.pttl(key('m'))).toBeLessThanOrEqual(ttl);
    expect(await redis.pttl(key('m'))).toBeGreaterThan(ttl - 5_000);

    // Again, or for a slot released meanwhile: nothing changes.
    expect(await scripts.untakeGenerationSlot(keys, { generationId: 'undone' })).toBe(false);
    await redis.zrem(key('active'), 'kept');
    expect(await scripts.untakeGenerationSlot(keys, { generationId: 'kept' })).toBe(false);
    expect([await redis.get(key('m')), await redis.get(key('h'))]).toEqual(['1', '1']);
  });

  test('appendNext appends after the last seq and renews the TTL', async () => {
    const log = { log: key('events') };
    expect(await scripts.appendNext(log, { json: '{"n":1}', ttlSeconds: 120 })).toBe(1);
    await redis.xadd(key('events'), '7-0', 'e', '{"n":7}');
    expect(await scripts.appendNext(log, { json: '{"n":8}', ttlSeconds: 120 })).toBe(8);
    expect((await redis.xrange(key('events'), '-', '+')).map(([id, fields]) => [id, fields])).toEqual([
      ['1-0', ['e', '{"n":1}']],
      ['7-0', ['e', '{"n":7}']],
      ['8-0', ['e', '{"n":8}']],
    ]);
    expect(await redis.ttl(key('events'))).toBeGreaterThan(100);
  });

  test('appendNextOnce appends a tag once; a second call with the same tag appends nothing and answers 0', async () => {
    const keys = { log: key('events'), once: key('events:once') };
    expect(await scripts.appendNextOnce(keys, { json: '"a"', ttlSeconds: 120, tag: 'job-1' })).toBe(1);
    expect(await scripts.appendNextOnce(keys, { json: '"a again"', ttlSeconds: 120, tag: 'job-1' })).toBe(0);
    expect(await scripts.appendNextOnce(keys, { json: '"b"', ttlSeconds: 120, tag: 'job-2' })).toBe(2);
    expect((await redis.xrange(key('events'), '-', '+')).map(([, fields]) => fields[1])).toEqual(['"a"', '"b"']);
    expect(await redis.ttl(key('events:once'))).toBeGreaterThan(100);
  });

  test('appendBatch appends entries in order in one call; an id at or below the last stops it with Redis’s error', async () => {
    const log = { log: key('events') };
    const entries = [
      ['1-0', '"one"'],
      ['2-0', '"two"'],
    ] as const;
    expect(await scripts.appendBatch(log, { ttlSeconds: 120, entries })).toBe(2);
    expect((await redis.xrange(key('events'), '-', '+')).map(([id, fields]) => [id, fields[1]])).toEqual([
      ['1-0', '"one"'],
      ['2-0', '"two"'],
    ]);
    expect(await redis.ttl(key('events'))).toBeGreaterThan(100);
    await expect(scripts.appendBatch(log, { ttlSeconds: 120, entries: [['2-0', '"again"']] })).rejects.toThrow(/equal or smaller/);
  });

  test('appendBatch gives entries of id `*` automatic ids, in order after the last', async () => {
    const log = { log: key('events') };
    await scripts.appendBatch(log, { ttlSeconds: 120, entries: [['5-0', '"first"']] });
    const entries = [
      ['*', '"a"'],
      ['*', '"b"'],
    ] as const;
    expect(await scripts.appendBatch(log, { ttlSeconds: 120, entries })).toBe(2);
    // XRANGE reads in id order: the values in the order appended means ids given in that order.
    expect((await redis.xrange(key('events'), '-', '+')).map(([, fields]) => fields[1])).toEqual(['"first"', '"a"', '"b"']);
  });

  test("roomRecordsAppend adds one room event record per payload to the adapter's stream, in order", async () => {
    const stream = { stream: key('adapter') };
    const args = { maxLen: 1_000, nsp: '/', room: 'canvas:c1', event: 'block:created' };
    expect(await scripts.roomRecordsAppend(stream, { ...args, payloads: ['{"seq":1}', '{"seq":2}'] })).toBe(2);
    expect(await scripts.roomRecordsAppend(stream, { ...args, event: 'block:deleted', payloads: ['{"seq":3}'] })).toBe(1);
    expect((await redis.xrange(key('adapter'), '-', '+')).map(([, fields]) => fields)).toEqual([
      ['nsp', '/', 'room', 'canvas:c1', 'event', 'block:created', 'payload', '{"seq":1}'],
      ['nsp', '/', 'room', 'canvas:c1', 'event', 'block:created', 'payload', '{"seq":2}'],
      ['nsp', '/', 'room', 'canvas:c1', 'event', 'block:deleted', 'payload', '{"seq":3}'],
    ]);
  });

  test('loginFailed counts failures and, from the threshold on, locks for a doubling time up to the cap', async () => {
    const keys = { failures: key('fails'), lock: key('lock') };
    const args = { threshold: 2, firstLockMs: 10_000, maxLockMs: 25_000, failuresTtlMs: 60_000 };
    expect(await scripts.loginFailed(keys, args)).toBe(1);
    expect(await redis.exists(key('lock'))).toBe(0);
    expect(await scripts.loginFailed(keys, args)).toBe(2);
    const first = await redis.pttl(key('lock'));
    expect(first).toBeGreaterThan(9_000);
    expect(first).toBeLessThanOrEqual(10_000);
    expect(await scripts.loginFailed(keys, args)).toBe(3);
    expect(await redis.pttl(key('lock'))).toBeGreaterThan(19_000);
    expect(await scripts.loginFailed(keys, args)).toBe(4);
    const capped = await redis.pttl(key('lock'));
    expect(capped).toBeGreaterThan(24_000);
    expect(capped).toBeLessThanOrEqual(25_000);
    expect(await redis.pttl(key('fails'))).toBeGreaterThan(55_000);
  });

  test('fairShareTake answers the set size after each id, counting an id already in once', async () => {
    const owned = { owned: key('fair') };
    expect(await scripts.fairShareTake(owned, { ttlSeconds: 120, jobIds: ['a', 'b'] })).toEqual([1, 2]);
    expect(await scripts.fairShareTake(owned, { ttlSeconds: 120, jobIds: ['b', 'c'] })).toEqual([2, 3]);
    expect((await redis.smembers(key('fair'))).sort()).toEqual(['a', 'b', 'c']);
    expect(await redis.ttl(key('fair'))).toBeGreaterThan(100);
  });

  test('sseLeaseAcquire admits up to max leases; an expired lease frees its place', async () => {
    const leases = { leases: key('sse') };
    expect(await scripts.sseLeaseAcquire(leases, { leaseId: 'a', max: 2, leaseMs: 60_000 })).toBe(true);
    expect(await scripts.sseLeaseAcquire(leases, { leaseId: 'b', max: 2, leaseMs: 60_000 })).toBe(true);
    expect(await scripts.sseLeaseAcquire(leases, { leaseId: 'c', max: 2, leaseMs: 60_000 })).toBe(false);
    // Lease `a` of a node that died: its score is in the past.
    await redis.zadd(key('sse'), 1, 'a');
    expect(await scripts.sseLeaseAcquire(leases, { leaseId: 'c', max: 2, leaseMs: 60_000 })).toBe(true);
    expect((await redis.zrange(key('sse'), '0', '-1')).sort()).toEqual(['b', 'c']);
  });

  test('sseLeaseRefresh extends every lease named that is still held, 1,200 in one call, and adds back none released', async () => {
    const held = Array.from({ length: 1_200 }, (_, i) => `held-${i}`);
    // Leases that were about to lapse (scores long past in Redis time would already be dropped by an acquire).
    await redis.zadd(key('sse'), ...held.flatMap((id) => [1, id]));
    const [seconds] = await redis.time();

    await scripts.sseLeaseRefresh({ leases: key('sse') }, { leaseIds: [...held, 'released'], leaseMs: 60_000 });

    const scores = await redis.zrange(key('sse'), '0', '-1', 'WITHSCORES');
    expect(scores.length / 2).toBe(1_200);
    expect(await redis.zscore(key('sse'), 'released')).toBeNull();
    const lowest = Number((await redis.zrange(key('sse'), '0', '0', 'WITHSCORES'))[1]);
    expect(lowest).toBeGreaterThanOrEqual(Number(seconds) * 1000 + 59_000);
    expect(await redis.pttl(key('sse'))).toBeGreaterThan(50_000);
  });

  test('workerLeaseBeat renews its own lease and hands each lapsed one to one caller only', async () => {
    const leases = { leases: key('workers') };
    const beat = (name: string, watchingSince: number, max = 10) =>
      scripts.workerLeaseBeat(leases, { name, leaseMs: 60_000, max, watchingSince });
    // First beat: the lease is new, not renewed; it answers Redis's time.
    const first = await beat('alive', 0);
    expect(first).toEqual({ renewed: false, now: expect.any(Number), lapsed: [] });
    const since = first.now - 120_000; // watching for two leases already
    expect(await beat('alive', since)).toMatchObject({ renewed: true, lapsed: [] });
    // Three processes that died: their leases ended long ago.
    await redis.zadd(key('workers'), 1, 'dead-1', 2, 'dead-2', 3, 'dead-3');
    expect(await beat('alive', since, 2)).toMatchObject({ renewed: true, lapsed: ['dead-1', 'dead-2'] });
    // Taken out: the next beat (of anyone) sees only what is left.
    expect(await beat('other', since)).toMatchObject({ renewed: false, lapsed: ['dead-3'] });
    // A process whose own lease lapsed is told so and holds it again; it is not handed its own name.
    await redis.zadd(key('workers'), 1, 'alive');
    expect(await beat('alive', since)).toMatchObject({ renewed: false, lapsed: [] });
    expect((await redis.zrange(key('workers'), '0', '-1')).sort()).toEqual(['alive', 'other']);
    const [seconds] = await redis.time();
    expect(Number(await redis.zscore(key('workers'), 'alive'))).toBeGreaterThanOrEqual(Number(seconds) * 1000 + 59_000);
  });

  test('workerLeaseBeat leaves a lease that lapsed before the caller was watching until a whole lease has passed', async () => {
    const leases = { leases: key('workers') };
    const beat = (watchingSince: number) => scripts.workerLeaseBeat(leases, { name: 'back', leaseMs: 60_000, max: 10, watchingSince });
    const { now } = await beat(0);
    // A lease that lapsed while Redis was out of reach for everyone (before `back` could beat again),
    // and one that lapsed since `back` has been watching.
    await redis.zadd(key('workers'), now - 5_000, 'quiet-in-the-outage', now - 1, 'died-since');
    expect(await beat(now - 2_000)).toMatchObject({ lapsed: ['died-since'] });
    expect(await redis.zscore(key('workers'), 'quiet-in-the-outage')).not.toBeNull();
    // Its owner renews it in time: it is never taken out.
    await redis.zadd(key('workers'), now + 60_000, 'quiet-in-the-outage');
    expect(await beat(now - 61_000)).toMatchObject({ lapsed: [] });
    // Not renewed a whole lease after the caller started watching: taken out.
    await redis.zadd(key('workers'), now - 5_000, 'quiet-in-the-outage');
    expect(await beat(now - 61_000)).toMatchObject({ lapsed: ['quiet-in-the-outage'] });
  });

  test("workerLeaseTakeOver takes out the leases of the caller's identity only, and takes the caller's", async () => {
    const leases = { leases: key('workers') };
    const [seconds] = await redis.time();
    const later = Number(seconds) * 1000 + 60_000;
    await redis.zadd(key('workers'), later, 'data-dir:a#old-1', later, 'data-dir:a#old-2', later, 'data-dir:ab#other', later, 'host:12#x');
    const taken = await scripts.workerLeaseTakeOver(leases, { identity: 'data-dir:a#', name: 'data-dir:a#new', leaseMs: 30_000 });
    expect(taken.sort()).toEqual(['data-dir:a#old-1', 'data-dir:a#old-2']);
    expect((await redis.zrange(key('workers'), '0', '-1')).sort()).toEqual(['data-dir:a#new', 'data-dir:ab#other', 'host:12#x']);
    expect(Number(await redis.zscore(key('workers'), 'data-dir:a#new'))).toBeGreaterThanOrEqual(Number(seconds) * 1000 + 29_000);
    // Run again by the same incarnation: nothing else to take out.
    expect(await scripts.workerLeaseTakeOver(leases, { identity: 'data-dir:a#', name: 'data-dir:a#new', leaseMs: 30_000 })).toEqual([]);
  });

  test('queuePresenceBeat scores every member with the time of the beat and drops the members silent too long', async () => {
    const workers = { workers: key('queue-workers') };
    const [seconds, micros] = await redis.time();
    const before = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await redis.zadd(key('queue-workers'), before - 7_200_000, 'assistant|gone', before - 1_000, 'flows|quiet');
    const now = await scripts.queuePresenceBeat(workers, { members: ['generation|a', 'broadcast|a'], forgetMs: 3_600_000 });
    expect(now).toBeGreaterThanOrEqual(before);
    expect(await redis.zrange(key('queue-workers'), '0', '-1', 'WITHSCORES')).toEqual([
      'flows|quiet',
      String(before - 1_000),
      'broadcast|a',
      String(now),
      'generation|a',
      String(now),
    ]);
  });

  test('socketAcquire admits up to max members, renews one already in, and drops expired leases', async () => {
    const leases = { leases: key('sockets') };
    const now = Date.now();
    const lease = (member: string, nowMs = now) => ({ nowMs, untilMs: nowMs + 30_000, member, max: 2, keyTtlMs: 60_000 });
    expect(await scripts.socketAcquire(leases, lease('/canvas#1'))).toBe(true);
    expect(await scripts.socketAcquire(leases, lease('/device#2'))).toBe(true);
    expect(await scripts.socketAcquire(leases, lease('/canvas#3'))).toBe(false);
    // At the cap, a member already in is renewed, not refused.
    expect(await scripts.socketAcquire(leases, lease('/canvas#1'))).toBe(true);
    // Later than every lease's end: they all lapsed.
    expect(await scripts.socketAcquire(leases, lease('/canvas#3', now + 31_000))).toBe(true);
    expect(await redis.zrange(key('sockets'), '0', '-1')).toEqual(['/canvas#3']);
  });

  test('deviceSetIfSameSocket and deviceDeleteIfSameSocket touch an entry only while it names the same socket', async () => {
    const devices = { devices: key('devices') };
    const presence = (socketId: string, agentIds: string[] = []) => JSON.stringify({ deviceId: 'd1', socketId, agentIds });
    expect(await scripts.deviceSetIfSameSocket(devices, { deviceId: 'd1', socketId: 's1', json: presence('s1') })).toBe(false);
    await redis.hset(key('devices'), 'd1', presence('s2'));
    expect(await scripts.deviceSetIfSameSocket(devices, { deviceId: 'd1', socketId: 's1', json: presence('s1', ['x']) })).toBe(false);
    expect(await scripts.deviceSetIfSameSocket(devices, { deviceId: 'd1', socketId: 's2', json: presence('s2', ['x']) })).toBe(true);
    expect(await redis.hget(key('devices'), 'd1')).toBe(presence('s2', ['x']));
    expect(await scripts.deviceDeleteIfSameSocket(devices, { deviceId: 'd1', socketId: 's1' })).toBe(false);
    expect(await redis.hexists(key('devices'), 'd1')).toBe(1);
    expect(await scripts.deviceDeleteIfSameSocket(devices, { deviceId: 'd1', socketId: 's2' })).toBe(true);
    expect(await redis.hexists(key('devices'), 'd1')).toBe(0);
  });

  describe('canvas scripts', () => {
    const canvas = () => ({ seq: key('canvas:c1:seq'), log: key('canvas:c1:log'), gone: key('canvas:c1:gone') });
    const settings = (openPayloads: string[]) => ({ event: 'block', maxLen: 1_000, ttlMs: 60_000, openPayloads });
    /** Fields of a stream entry as an object. */
    const record = (fields: string[]) => Object.fromEntries(fields.flatMap((value, i) => (i % 2 ? [] : [[value, fields[i + 1]]])));

    test('canvasAppend gives consecutive seqs across calls, logs each event under <seq>-0 with its seq closed in, and sets the TTL', async () => {
      expect(await scripts.canvasAppend(canvas(), settings(['{"a":1,"seq":', '{"seq":']))).toEqual([1, 2]);
      expect(await scripts.canvasAppend(canvas(), settings(['{"b":"x","seq":']))).toEqual([3]);
      const entries = (await redis.xrange(key('canvas:c1:log'), '-', '+')) as Array<[string, string[]]>;
      expect(entries.map(([id, fields]) => [id, record(fields)])).toEqual([
        ['1-0', { e: 'block', p: '{"a":1,"seq":1}' }],
        ['2-0', { e: 'block', p: '{"seq":2}' }],
        ['3-0', { e: 'block', p: '{"b":"x","seq":3}' }],
      ]);
      expect(await redis.get(key('canvas:c1:seq'))).toBe('3');
      expect(await redis.pttl(key('canvas:c1:log'))).toBeGreaterThan(50_000);
      // The counter never expires: a seq is never reused.
      expect(await redis.pttl(key('canvas:c1:seq'))).toBe(-1);
    });

    test('canvasAppend with the adapter stream adds each event as a room event record (no uid), in seq order', async () => {
      const stream = key('socket.io');
      const seqs = await scripts.canvasAppend(
        { ...canvas(), adapterStream: stream },
        { ...settings(['{"n":1,"seq":', '{"n":2,"seq":']), broadcast: { maxLen: 100, nsp: '/canvas', room: 'canvas:c1' } },
      );
      expect(seqs).toEqual([1, 2]);
      const records = (await redis.xrange(stream, '-', '+')) as Array<[string, string[]]>;
      expect(records.map(([, fields]) => record(fields))).toEqual([
        { nsp: '/canvas', room: 'canvas:c1', event: 'block', payload: '{"n":1,"seq":1}' },
        { nsp: '/canvas', room: 'canvas:c1', event: 'block', payload: '{"n":2,"seq":2}' },
      ]);
      expect(await redis.xlen(key('canvas:c1:log'))).toBe(2);
    });

    test('canvasAppend on a deleted canvas logs and sends nothing and answers an empty list', async () => {
      await redis.set(key('canvas:c1:gone'), '1');
      const stream = key('socket.io');
      const seqs = await scripts.canvasAppend(
        { ...canvas(), adapterStream: stream },
        { ...settings(['{"seq":']), broadcast: { maxLen: 100, nsp: '/canvas', room: 'canvas:c1' } },
      );
      expect(seqs).toEqual([]);
      expect(await redis.exists(key('canvas:c1:seq'), key('canvas:c1:log'), stream)).toBe(0);
    });

    test('canvasAppend refuses an adapter stream without its record settings, before calling Redis', async () => {
      await expect(scripts.canvasAppend({ ...canvas(), adapterStream: key('socket.io') }, settings(['{"seq":']))).rejects.toThrow(
        /given together/,
      );
      expect(await redis.exists(key('canvas:c1:seq'))).toBe(0);
    });

    test('canvasAppend with several events and the adapter stream is one EVALSHA, nothing else', async () => {
      const keys = { ...canvas(), adapterStream: key('socket.io') };
      const args = { ...settings(['{"seq":', '{"seq":', '{"seq":']), broadcast: { maxLen: 100, nsp: '/canvas', room: 'r' } };
      await scripts.canvasAppend(keys, args);
      const sent: string[] = [];
      let markerSeen: () => void = () => undefined;
      const marker = new Promise<void>((resolve) => (markerSeen = resolve));
      const watcher = await monitorEverywhere(redis, ({ args: monitored, source }) => {
        if (source === 'lua') return;
        if (monitored.includes(key('marker'))) markerSeen();
        else if (monitored.includes(key('canvas:c1:seq'))) sent.push(monitored[0].toLowerCase());
      });
      try {
        expect(await scripts.canvasAppend(keys, args)).toEqual([4, 5, 6]);
        await redis.exists(key('marker'));
        await waitFor(marker, 10_000);
      } finally {
        watcher.stop();
      }
      expect(sent).toEqual(['evalsha']);
    });

    test('canvasSince answers the last seq, the first seq kept, and at most cap + 1 entries after the given seq', async () => {
      expect(await scripts.canvasSince(canvas(), { afterSeq: 0, cap: 10 })).toEqual({ lastSeq: 0, firstSeq: 0, entries: [] });
      await scripts.canvasAppend(canvas(), settings(['{"seq":', '{"seq":', '{"seq":', '{"seq":', '{"seq":']));
      await redis.xdel(key('canvas:c1:log'), '1-0');
      const since = await scripts.canvasSince(canvas(), { afterSeq: 2, cap: 1 });
      expect(since.lastSeq).toBe(5);
      expect(since.firstSeq).toBe(2);
      expect(since.entries).toEqual([
        ['3-0', ['e', 'block', 'p', '{"seq":3}']],
        ['4-0', ['e', 'block', 'p', '{"seq":4}']],
      ]);
      expect((await scripts.canvasSince(canvas(), { afterSeq: 5, cap: 10 })).entries).toEqual([]);
    });
  });
});
