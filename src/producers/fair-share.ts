import type { RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts } from '../lib/redis-scripts';

/** BullMQ's largest priority (2^21). */
export const MAX_PRIORITY = 2_097_152;
/**
 * A user's set expires this long after their last enqueue: a job lost without being finished (a
 * crashed worker past its retries) only lowers that user's priority until then.
 */
export const FAIR_SHARE_TTL_SECONDS = 3_600;

/**
 * Fair ordering of a shared queue per owner. Each owner has the set of their jobs
 * queued and not finished; a new job's BullMQ priority is that set's size once it is in (1 for
 * the first, 2 for the second, …), so a user with one job waiting goes ahead of another user's
 * hundredth. Priority only orders: nobody's job is held back while the queue has nothing else to
 * run, and nothing polls.
 */
export class FairShare {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  private key(queue: string, owner: string): string {
    return redisKeys(this.keyPrefix).fairShare(queue, owner);
  }

  /** Counts the jobs `jobIds` of `owner` on `queue` and returns their priorities, in order. */
  async take(queue: string, owner: string, jobIds: readonly string[]): Promise<number[]> {
    if (!jobIds.length) return [];
    // An id already in the set (the same job dispatched twice, queued once by BullMQ) counts once.
    const sizes = await redisScripts(this.redis).fairShareTake(
      { owned: this.key(queue, owner) },
      { ttlSeconds: FAIR_SHARE_TTL_SECONDS, jobIds },
    );
    return sizes.map((size) => Math.min(MAX_PRIORITY, Math.max(1, size)));
  }

  /** The jobs `jobIds` of `owner` left `queue` (finished for good, or removed). */
  async release(queue: string, owner: string, jobIds: readonly string[]): Promise<void> {
    if (!jobIds.length) return;
    await this.redis.srem(this.key(queue, owner), ...jobIds);
  }
}
