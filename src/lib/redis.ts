import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection. `role` decides the failure behaviour:
 * - `command`: fail fast — commands issued while disconnected reject at once instead of queueing,
 *   so an HTTP request that needs Redis answers 503 quickly.
 * - `blocking`: for BullMQ workers and blocking reads (XREAD BLOCK); never gives up retrying.
 */
export function createRedis(url: string, role: 'command' | 'blocking', extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: false,
    maxRetriesPerRequest: role === 'blocking' ? null : 1,
    enableOfflineQueue: role === 'blocking',
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  });
}

/** Resolves once the connection is ready (needed before fail-fast connections accept commands). */
export function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
