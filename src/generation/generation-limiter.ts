import type { Redis } from 'ioredis';
import type { TierLimits } from '../../config';
import { AppError } from '../lib/errors';

/**
 * Per-user generation limits in Redis, checked and counted in one Lua call so concurrent requests
 * cannot both slip under a limit: fixed one-minute and one-hour windows, plus a set of the user's
 * in-flight generations (each entry expires on its own, so a crashed worker cannot leak a slot).
 */
const SCRIPT = `
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local minute = tonumber(redis.call('GET', KEYS[1]) or '0')
if minute >= tonumber(ARGV[1]) then return {1, redis.call('PTTL', KEYS[1])} end
local hour = tonumber(redis.call('GET', KEYS[2]) or '0')
if hour >= tonumber(ARGV[2]) then return {2, redis.call('PTTL', KEYS[2])} end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return {3, 2000} end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[8]) end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return {0, 0}
`;

const REASONS = ['', 'per-minute', 'per-hour', 'concurrent'] as const;
/** A generation holds its concurrency slot at most this long, even if its worker died. */
const SLOT_TTL_MS = 15 * 60_000;

export class GenerationLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {
    redis.defineCommand('sbTakeGenerationSlot', { numberOfKeys: 3, lua: SCRIPT });
  }

  /** Takes a slot for `generationId` or throws 429 with Retry-After. */
  async take(userId: string, generationId: string, limits: TierLimits): Promise<void> {
    const now = Date.now();
    const minuteWindow = Math.floor(now / 60_000);
    const hourWindow = Math.floor(now / 3_600_000);
    const base = `${this.keyPrefix}:rl:gen:${userId}`;
    const [reason, retryMs] = await (
      this.redis as unknown as Record<string, (...args: unknown[]) => Promise<[number, number]>>
    ).sbTakeGenerationSlot(
      `${base}:m:${minuteWindow}`,
      `${base}:h:${hourWindow}`,
      this.activeKey(userId),
      limits.generationsPerMinute,
      limits.generationsPerHour,
      limits.concurrentGenerations,
      now,
      generationId,
      SLOT_TTL_MS,
      60_000,
      3_600_000,
    );
    if (reason === 0) return;
    const retryAfter = Math.max(1, Math.ceil(Math.max(retryMs, 0) / 1000));
    throw new AppError(
      429,
      'rate_limited',
      `Generation limit reached (${REASONS[reason]}); retry in ${retryAfter} s`,
      { limit: REASONS[reason] },
      {
        'Retry-After': String(retryAfter),
      },
    );
  }

  /** Frees the concurrency slot of a finished generation. */
  async release(userId: string, generationId: string): Promise<void> {
    await this.redis.zrem(this.activeKey(userId), generationId);
  }

  private activeKey(userId: string) {
    return `${this.keyPrefix}:gen:active:${userId}`;
  }
}
