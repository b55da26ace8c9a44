import { randomUUID } from 'node:crypto';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { StreamFollower, type StreamEntry } from '../../src/lib/stream-follower';
import { testRedisTarget } from '../support/database';
import { waitUntil } from '../support/wait';

/** The per-process reader behind every SSE stream (decision 0070), against the run's real Redis. */
describe('StreamFollower', () => {
  let redis: RedisClient;
  let follower: StreamFollower;
  const key = () => `follower-test:${randomUUID()}`;

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    follower = new StreamFollower(redis);
  });

  afterEach(async () => {
    await follower.close();
    redis.disconnect();
  });

  const collect = (target: string, afterId: string) => {
    const seen: StreamEntry[] = [];
    const stop = follower.subscribe(target, afterId, (entries) => seen.push(...entries));
    return { seen, stop };
  };

  test('given a read blocked on one key, a subscription to another key gets its entries (the read is re-issued)', async () => {
    const [a, b] = [key(), key()];
    const first = collect(a, '0');
    await redis.xadd(a, '*', 'e', 'a1');
    await waitUntil(() => first.seen.length === 1);

    const second = collect(b, '0');
    await redis.xadd(b, '*', 'e', 'b1');

    await waitUntil(() => second.seen.length === 1, 3_000);
    expect(second.seen.map(([, value]) => value)).toEqual(['b1']);
  });

  test('a subscriber joining later with an earlier cursor gets every entry after its cursor, in order, once', async () => {
    const target = key();
    const ids: string[] = [];
    for (const value of ['1', '2', '3']) ids.push((await redis.xadd(target, '*', 'e', value)) as string);
    const late = collect(target, ids[2]);
    await redis.xadd(target, '*', 'e', '4');
    await waitUntil(() => late.seen.length === 1);

    const early = collect(target, ids[0]);
    await redis.xadd(target, '*', 'e', '5');

    await waitUntil(() => early.seen.length === 4 && late.seen.length === 2, 3_000);
    expect(early.seen.map(([, value]) => value)).toEqual(['2', '3', '4', '5']);
    expect(late.seen.map(([, value]) => value)).toEqual(['4', '5']);
  });

  test('after unsubscribing, nothing more is delivered, and 1,000 subscribers of one key each get each entry once', async () => {
    const target = key();
    const gone = collect(target, '0');
    const many = Array.from({ length: 1_000 }, () => collect(target, '0'));
    gone.stop();

    await redis.xadd(target, '*', 'e', 'x');
    await redis.xadd(target, '*', 'e', 'y');

    await waitUntil(() => many.every((s) => s.seen.length === 2), 5_000);
    expect(gone.seen).toEqual([]);
    expect(many.every((s) => s.seen.map(([, v]) => v).join() === 'x,y')).toBe(true);
    expect(follower.size).toBe(1_000);
  });
});
