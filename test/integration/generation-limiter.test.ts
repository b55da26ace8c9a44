import { randomUUID } from 'node:crypto';
import { DEFAULT_TIER_LIMITS } from '../../config/tiers';
import { GenerationLimiter } from '../../src/generation/generation-limiter';
import type { AppError } from '../../src/lib/errors';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { testRedisTarget } from '../support/database';
import { deleteKeysEverywhere } from '../support/redis';

/**
 * The generation limiter's windows against a real Redis: a window opens at the user's first
 * generation, not on the clock's minute, so a burst that straddles a minute boundary still gets
 * the per-minute limit once, not twice.
 */
describe('GenerationLimiter windows', () => {
  let redis: RedisClient;
  let prefix: string;
  const limits = { ...DEFAULT_TIER_LIMITS.free, generationsPerMinute: 2, generationsPerHour: 100, concurrentGenerations: 10 };

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('cache'), 'command');
    await redisReady(redis);
    prefix = `genlimit-test-${randomUUID().slice(0, 8)}`;
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await deleteKeysEverywhere(redis, `${prefix}:*`);
    redis.disconnect();
  });

  test('a burst across a clock minute gets the per-minute limit once, and the refusal says when to retry', async () => {
    const limiter = new GenerationLimiter(redis, prefix);
    const userId = randomUUID();
    // Only the limiter's clock is moved: Redis, its sockets and their timers run as they do.
    const clock = jest.spyOn(Date, 'now');

    // Given: two generations in the last tenth of a second of a minute
    clock.mockReturnValue(Date.parse('2026-11-28T01:00:59.900Z'));
    await limiter.take(userId, randomUUID(), limits);
    await limiter.take(userId, randomUUID(), limits);

    // When: a third comes a fifth of a second later, in the next clock minute
    clock.mockReturnValue(Date.parse('2026-11-28T01:01:00.100Z'));
    const refused = limiter.take(userId, randomUUID(), limits);

    // Then: it is refused with the per-minute limit, to retry once the window opened by the first ends
    await expect(refused).rejects.toMatchObject({ status: 429, code: 'rate_limited', details: { limit: 'per-minute' } });
    const error = (await refused.catch((reason: unknown) => reason)) as AppError;
    const retryAfter = Number(error.headers?.['Retry-After']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  test('a generation given back does not count against the window', async () => {
    const limiter = new GenerationLimiter(redis, prefix);
    const userId = randomUUID();
    const first = await limiter.take(userId, randomUUID(), limits);
    await limiter.untake(first);
    await limiter.take(userId, randomUUID(), limits);
    await limiter.take(userId, randomUUID(), limits);
    await expect(limiter.take(userId, randomUUID(), limits)).rejects.toMatchObject({ status: 429, details: { limit: 'per-minute' } });
  });
});
