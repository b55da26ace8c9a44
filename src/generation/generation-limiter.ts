import type { RedisClient } from '../lib/redis';
import type { TierLimits } from '../../config';
import { AppError } from '../lib/errors';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';

/** A generation holds its concurrency slot at most this long, even if its worker died. */
const SLOT_TTL_MS = 15 * 60_000;

/**
 * Per-user generation limits in Redis, checked and counted in one Lua call so concurrent requests
 * cannot both slip under a limit: fixed one-minute and one-hour windows, plus a set of the user's
 * in-flight generations (each entry expires on its own, so a crashed worker cannot leak a slot).
 */
export class GenerationLimiter {
  private readonly scripts: RedisScripts;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    this.scripts = redisScripts(redis);
  }

  /** Takes a slot for `generationId` or throws 429 with Retry-After. */
  async take(userId: string, generationId: string, limits: TierLimits): Promise<void> {
    const now = Date.now();
    const minuteWindow = Math.floor(now / 60_000);
    const hourWindow = Math.floor(now / 3_600_000);
    const keys = redisKeys(this.keyPrefix);
    const slot = await this.scripts.takeGenerationSlot(
      {
        minute: keys.generationMinuteWindow(userId, minuteWindow),
        hour: keys.generationHourWindow(userId, hourWindow),
        inFlight: this.activeKey(userId),
      },
      {
        perMinute: limits.generationsPerMinute,
        perHour: limits.generationsPerHour,
        concurrent: limits.concurrentGenerations,
        nowMs: now,
        generationId,
        slotMs: SLOT_TTL_MS,
        minuteMs: 60_000,
        hourMs: 3_600_000,
      },
    );
    if (slot.taken) return;
    const { reason, retryMs } = slot;
    const retryAfter = Math.max(1, Math.ceil(Math.max(retryMs, 0) / 1000));
    throw new AppError(
      429,
      'rate_limited',
      `Generation limit reached (${reason}); retry in ${retryAfter} s`,
      { limit: reason },
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
    return redisKeys(this.keyPrefix).generationSlots(userId);
  }
}
