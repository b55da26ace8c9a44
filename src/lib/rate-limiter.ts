import type { Redis } from 'ioredis';
import { AppError } from './errors';

/** Counts one hit in the current window; answers the window's remaining ms when over the limit. */
const SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then return redis.call('PTTL', KEYS[1]) end
return 0
`;

/**
 * Per-user windowed limits for cheap endpoints (one Lua call, so concurrent requests cannot
 * both slip under the limit). Generations keep their own limiter: they also hold concurrency slots.
 */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {
    redis.defineCommand('sbFixedWindowHit', { numberOfKeys: 1, lua: SCRIPT });
  }

  /** Counts a hit on `action` for `userId`, or throws 429 `rate_limited` with Retry-After. */
  async take(action: string, userId: string, limit: number, windowMs = 60_000): Promise<void> {
    // The window opens at the user's first hit (not on clock boundaries), so a burst cannot
    // straddle two windows and get twice the limit.
    const key = `${this.keyPrefix}:rl:${action}:${userId}`;
    const hit = (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<number>>).sbFixedWindowHit;
    const retryMs = Number(await hit.call(this.redis, key, limit, windowMs));
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
