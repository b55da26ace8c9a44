import { randomUUID } from 'node:crypto';
import { GenerationEventLog } from '../../src/generation/event-log';
import type { GenerationEvent } from '../../src/generation/events';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { EVENT_WRITE_GAP_MS } from '../../src/lib/sequenced-event-log';
import { testRedisTarget } from '../support/database';
import { monitorEverywhere } from '../support/redis';
import { eventually } from '../support/wait';

/** The generation runner's writer: events emitted in one tick go to Redis as one batch (one command). */
describe('EventWriter', () => {
  let redis: RedisClient;
  let log: GenerationEventLog;

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    log = new GenerationEventLog(redis, `writer-test:${randomUUID()}`, 600);
  });

  afterEach(() => redis.disconnect());

  const output = (generationId: string, index: number): GenerationEvent =>
    ({
      type: 'tool_output',
      generationId,
      index,
      block: { type: 'text', content: `line ${index} "quoted" ☃` },
    }) as unknown as GenerationEvent;

  test('200 events emitted in one tick land in order at seq after the last stored one, with the TTL renewed, in one command', async () => {
    const id = randomUUID();
    await log.append(id, 1, { type: 'status', generationId: id, stage: 'queued' });
    const sent: string[] = [];
    // Commands the client sent that touch the log (not the ones a script ran inside Redis).
    const watcher = await monitorEverywhere(redis, ({ args, source }) => {
      if (source !== 'lua' && args.includes(log.key(id))) sent.push(args[0].toLowerCase());
    });
    // Emitted at once, before the writer has read the log's position: they still follow seq 1.
    const writer = log.writer(id);
    for (let index = 0; index < 200; index += 1) writer.emit(output(id, index));
    await writer.flush();

    const seqs = Array.from({ length: 200 }, (_, index) => index + 2);
    const stored = await log.readAfter(id, 1);
    expect(stored.map((entry) => entry.seq)).toEqual(seqs);
    expect(stored.map((entry) => (entry.event as { index: number }).index)).toEqual(Array.from({ length: 200 }, (_, index) => index));
    expect(stored[0].event).toEqual(output(id, 0));
    const ttl = await redis.ttl(log.key(id));
    expect(ttl).toBeGreaterThan(590);
    // One EVALSHA (or EVAL the first time) for the batch, not an XADD per event.
    await new Promise<void>((resolve) => setImmediate(resolve));
    watcher.stop();
    expect(sent.filter((command) => command === 'xadd')).toHaveLength(0);
    expect(sent.filter((command) => command === 'evalsha' || command === 'eval').length).toBe(1);
    // The position: one read, when the writer was made.
    expect(sent.filter((command) => command === 'xrevrange')).toHaveLength(1);
  });

  test('events emitted one by one as a stream pours in go out a few at a time, the last without a flush', async () => {
    const id = randomUUID();
    let writes = 0;
    const watcher = await monitorEverywhere(redis, ({ args, source }) => {
      if (source !== 'lua' && args.includes(log.key(id)) && /^evalsha$|^eval$/i.test(args[0])) writes += 1;
    });
    const writer = log.writer(id);
    const started = performance.now();
    // One event per millisecond or so: each would be a write of its own if every event went out as soon as the one before was answered.
    for (let index = 0; index < 40; index += 1) {
      writer.emit(output(id, index));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // Nobody flushes: the events emitted last still go out once the gap has passed.
    const stored = await eventually(
      () => log.readAfter(id, 0),
      (entries) => entries.length === 40,
      5_000,
    );
    const elapsed = performance.now() - started;
    watcher.stop();
    expect(stored.map((entry) => (entry.event as { index: number }).index)).toEqual(Array.from({ length: 40 }, (_, index) => index));
    // Two writes are at least the gap apart, however slowly the loop above ran on a busy machine.
    expect(writes).toBeGreaterThan(1);
    expect(writes).toBeLessThanOrEqual(Math.ceil(elapsed / EVENT_WRITE_GAP_MS) + 1);
  });

  test("a seq another writer already took fails the flush with Redis's error, and leaves the other writer's event in place", async () => {
    const id = randomUUID();
    const writer = log.writer(id);
    // Someone else appends seq 1 after the writer read the log's position.
    await log.append(id, 1, { type: 'status', generationId: id, stage: 'queued' });
    writer.emit(output(id, 0));
    await expect(writer.flush()).rejects.toThrow(/equal or smaller/);
    expect((await log.readAfter(id, 0)).map((entry) => [entry.seq, entry.event.type])).toEqual([[1, 'status']]);
  });

  test("a log whose position cannot be read fails the writer's flush, and the next one, with Redis's error", async () => {
    const id = randomUUID();
    // Not a stream: reading its last entry is refused.
    await redis.set(log.key(id), 'not a stream');
    const writer = log.writer(id);
    writer.emit(output(id, 0));
    await expect(writer.flush()).rejects.toThrow(/WRONGTYPE/);
    writer.emit(output(id, 1));
    await expect(writer.flush()).rejects.toThrow(/WRONGTYPE/);
    expect(await redis.get(log.key(id))).toBe('not a stream');
  });
});
