import type { RedisClient } from '../lib/redis';
import type { TierLimits } from '../../config';
import { AppError } from '../lib/errors';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';

/** A generation holds its concurrency slot at most this long, even if its worker died. */
const SLOT_TTL_MS = 15 * 60_000;

/** What one `take` counted: its windows' keys and the generation holding the slot. */
export interface TakenGenerationSlot {
  keys: { minute: string; hour: string; inFlight: string };
  generationId: string;
}

/**
 * Per-user generation limits in Redis, checked and counted in one Lua call so concurrent requests
 * cannot both slip under a limit: a one-minute and a one-hour window, each opened by the user's
 * first generation in it (not on clock boundaries, so a burst cannot straddle two windows and get
 * twice the limit), plus a set of the user's in-flight generations (each entry expires on its own,
 * so a crashed worker cannot leak a slot).
 */
export class GenerationLimiter {
  private readonly scripts: RedisScripts;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    this.scripts = redisScripts(redis);
  }

  /** Takes a slot for `generationId` or throws 429 with Retry-After; returns what it counted, for `untake`. */
  async take(userId: string, generationId: string, limits: TierLimits): Promise<TakenGenerationSlot> {
    const now = Date.now();
    const keys = redisKeys(this.keyPrefix);
    const taken: TakenGenerationSlot = {
      keys: {
        minute: keys.generationMinuteWindow(userId),
        hour: keys.generationHourWindow(userId),
        inFlight: this.activeKey(userId),
      },
      generationId,
    };
    const slot = await this.scripts.takeGenerationSlot(taken.keys, {
      perMinute: limits.generationsPerMinute,
      perHour: limits.generationsPerHour,
      concurrent: limits.concurrentGenerations,
      nowMs: now,
      generationId,
      slotMs: SLOT_TTL_MS,
      minuteMs: 60_000,
      hourMs: 3_600_000,
    });
    if (slot.taken) return taken;
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

  /**
   * Undoes a `take` whose request was refused for another reason in the same moment (its stream
   * slot, its budget): the concurrency slot is freed and the minute and hour windows count it no
   * more, as if it had never been taken. Once only: a second call, or one after `release`, changes
   * nothing.
   */
  async untake(taken: TakenGenerationSlot): Promise<void> {
    await this.scripts.untakeGenerationSlot(taken.keys, { generationId: taken.generationId });
  }

  /** Frees the concurrency slot of a finished generation. */
  async release(userId: string, generationId: string): Promise<void> {
    await this.redis.zrem(this.activeKey(userId), generationId);
  }

  private activeKey(userId: string) {
    return redisKeys(this.keyPrefix).generationSlots(userId);
  }
}
