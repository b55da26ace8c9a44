import type { RedisClient } from './redis';
import { AppError } from './errors';
import { redisKeys } from './redis-keys';
import { redisScripts, type RedisScripts } from './redis-scripts';

/**
 * Per-user windowed limits for cheap endpoints (one Lua call, so concurrent requests cannot
 * both slip under the limit). Generations keep their own limiter: they also hold concurrency slots.
 */
export class RateLimiter {
  private readonly scripts: RedisScripts;

  constructor(
    redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    this.scripts = redisScripts(redis);
  }

  /** Counts a hit on `action` for `userId`, or throws 429 `rate_limited` with Retry-After. */
  async take(action: string, userId: string, limit: number, windowMs = 60_000): Promise<void> {
    // The window opens at the user's first hit (not on clock boundaries), so a burst cannot
    // straddle two windows and get twice the limit.
    const key = redisKeys(this.keyPrefix).rateWindow(action, userId);
    const retryMs = await this.scripts.fixedWindowHit({ window: key }, { limit, windowMs });
    if (retryMs === 0) return;
    const retryAfter = Math.max(1, Math.ceil(Math.max(retryMs, 0) / 1000));
    throw new AppError(
      429,
      'rate_limited',
      `Too many ${action} requests (limit ${limit} per ${Math.round(windowMs / 1000)} s); retry in ${retryAfter} s`,
      { limit },
      {
        'Retry-After': String(retryAfter),
      },
    );
  }
}
