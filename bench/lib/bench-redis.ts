import { createRedis, type RedisClient, type RedisTarget } from '../../src/lib/redis';
import { RedisKeys } from '../../src/lib/redis-keys';
import { cpuMsOfCommand } from './harness';

/** Where the benchmarked Switchboards keep their Redis data: one redis-server, or a Redis Cluster. */
export type RedisTopology = 'single' | 'cluster';

/** The Redis every benchmarked Switchboard (in-process or spawned) and the bench's own readers use. */
export interface BenchRedis {
  topology: RedisTopology;
  /** What a Switchboard is started with: `REDIS_URL`, or `REDIS_CLUSTER_NODES` on a cluster. */
  env: Record<string, string>;
  /** For {@link createRedis}: the server's URL, or the cluster's seed nodes. */
  target: RedisTarget;
  /** Ports of the redis-servers behind it (one, or every master), to count their CPU and connections. */
  ports: number[];
}

/** One redis-server at `url`. */
export function singleBenchRedis(url: string): BenchRedis {
  return { topology: 'single', env: { REDIS_URL: url }, target: url, ports: [Number(new URL(url).port || 6379)] };
}

/** A Redis Cluster whose masters listen on `ports` of 127.0.0.1. */
export function clusterBenchRedis(ports: number[]): BenchRedis {
  const seeds = ports.map((port) => ({ host: '127.0.0.1', port }));
  return {
    topology: 'cluster',
    env: { REDIS_CLUSTER_NODES: seeds.map(({ host, port }) => `${host}:${port}`).join(',') },
    target: seeds,
    ports,
  };
}

/**
 * A connection of the bench's own (queue handles, event-stream readers) to the benchmarked Redis:
 * `blocking` never gives up retrying and may block (XREAD BLOCK), as BullMQ needs.
 */
export function benchRedisClient(redis: BenchRedis, role: 'command' | 'blocking' = 'blocking'): RedisClient {
  return createRedis(redis.target, role);
}

/** CPU milliseconds every redis-server behind `redis` has used so far. */
export function redisServerCpuMs(redis: BenchRedis): number {
  return redis.ports.reduce((sum, port) => sum + cpuMsOfCommand('redis-server', String(port)), 0);
}

/** Key of a generation's event stream under `keyPrefix`, as Switchboard names it on either topology. */
export function generationEventsKey(keyPrefix: string, generationId: string): string {
  return new RedisKeys(keyPrefix).generationEvents(generationId);
}

/**
 * For a job the benchmark waits on with `waitUntilFinished`: kept a minute once it ends. A job
 * removed at once can vanish before `waitUntilFinished` looks at it ("Missing key for job …").
 */
export const KEPT_FOR_WAITERS = { removeOnComplete: { age: 60 }, removeOnFail: { age: 60 } } as const;
