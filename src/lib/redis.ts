import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis';
import { keySlot } from './redis-keys';

/** A connection to one Redis server or to a Redis Cluster; every module takes either. */
export type RedisClient = Redis | Cluster;

/** One Redis Cluster seed node. */
export interface RedisClusterSeed {
  host: string;
  port: number;
}

/** Where a connection goes: a server's URL, or a Redis Cluster's seed nodes. */
export type RedisTarget = string | readonly RedisClusterSeed[];

/** Whether `client` is a Redis Cluster connection. */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * A Redis connection. `role` decides the failure behaviour:
 * - `command`: fail fast — commands issued while disconnected reject at once instead of queueing,
 *   so an HTTP request that needs Redis answers 503 quickly.
 * - `blocking`: for BullMQ workers and blocking reads (XREAD BLOCK); never gives up retrying.
 *
 * A list of seed nodes connects to a Redis Cluster: each node's connection gets the same
 * behaviour, and the cluster follows its slots as they move (MOVED/ASK redirections).
 */
export function createRedis(target: string, role: 'command' | 'blocking', extra?: RedisOptions): Redis;
export function createRedis(target: RedisTarget, role: 'command' | 'blocking', extra?: RedisOptions): RedisClient;
export function createRedis(target: RedisTarget, role: 'command' | 'blocking', extra: RedisOptions = {}): RedisClient {
  const retryStrategy = (times: number) => Math.min(times * 200, 2_000);
  if (typeof target === 'string') {
    return new Redis(target, {
      lazyConnect: false,
      maxRetriesPerRequest: role === 'blocking' ? null : 1,
      enableOfflineQueue: role === 'blocking',
      retryStrategy,
      ...extra,
    });
  }
  const { enableOfflineQueue, lazyConnect, ...nodeOptions } = extra;
  const options: ClusterOptions = {
    lazyConnect: lazyConnect ?? false,
    enableOfflineQueue: enableOfflineQueue ?? role === 'blocking',
    clusterRetryStrategy: retryStrategy,
    redisOptions: { maxRetriesPerRequest: role === 'blocking' ? null : 1, ...nodeOptions },
  };
  return new Cluster(
    target.map((seed) => ({ host: seed.host, port: seed.port })),
    options,
  );
}

/** Resolves once the connection is ready (needed before fail-fast connections accept commands). */
export function redisReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
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

/** The concerns a deployment may put on separate Redis servers. */
export type RedisConcernName = 'queues' | 'realtime' | 'cache';

/** The connections of one concern: a fail-fast one for commands and one that waits (blocking reads, BullMQ). */
export interface RedisConcern {
  command: RedisClient;
  blocking: RedisClient;
  /** Where it goes: the server's URL or the cluster's seed list (for new connections of the same concern). */
  target: RedisTarget;
}

/**
 * The process's Redis connections by concern. Realtime and cache on the same server share their
 * two connections; the queues always have a pair of their own, even on that server, because they
 * are BullMQ's: BullMQ defines its ~60 Lua scripts on the connection it is given, and ioredis
 * copies every script defined on a connection into each pipeline or transaction made from it, so
 * on a shared connection each of our MULTIs would cost more CPU.
 */
export class RedisConnections {
  private constructor(
    readonly queues: RedisConcern,
    readonly realtime: RedisConcern,
    readonly cache: RedisConcern,
  ) {}

  /** Connects each concern to its target: the queues' pair, and one pair per other distinct target. */
  static open(targets: Record<RedisConcernName, RedisTarget>): RedisConnections {
    const byTarget = new Map<string, RedisConcern>();
    const concern = (target: RedisTarget, own?: RedisConcernName): RedisConcern => {
      const where = typeof target === 'string' ? target : target.map((seed) => `${seed.host}:${seed.port}`).join(',');
      const id = own ? `${own} ${where}` : where;
      let pair = byTarget.get(id);
      if (!pair) {
        pair = { command: createRedis(target, 'command'), blocking: createRedis(target, 'blocking'), target };
        byTarget.set(id, pair);
      }
      return pair;
    };
    return new RedisConnections(concern(targets.queues, 'queues'), concern(targets.realtime), concern(targets.cache));
  }

  /** Whether the connections go to a Redis Cluster. */
  get cluster(): boolean {
    return isCluster(this.queues.command);
  }

  /** Every distinct connection (each once). */
  all(): RedisClient[] {
    return [...new Set([this.queues, this.realtime, this.cache].flatMap((pair) => [pair.command, pair.blocking]))];
  }

  /** Resolves once every fail-fast connection is ready. */
  async ready(timeoutMs?: number): Promise<void> {
    await Promise.all([...new Set([this.queues.command, this.realtime.command, this.cache.command])].map((r) => redisReady(r, timeoutMs)));
  }

  /** Answers when every distinct server answers PING (readiness). */
  async ping(): Promise<void> {
    await Promise.all([...new Set([this.queues.command, this.realtime.command, this.cache.command])].map((r) => r.ping()));
  }

  /** Closes every connection. */
  async quit(): Promise<void> {
    await Promise.allSettled(this.all().map((connection) => connection.quit()));
  }
}

/**
 * A new connection like `client` (same server or cluster, same options) with `override` on top:
 * for a subscriber or a blocking reader, which must not share the command connection.
 * `clusterOverride` applies to a cluster connection only (e.g. `shardedSubscribers`).
 */
export function duplicateRedis(client: Redis, override?: RedisOptions): Redis;
export function duplicateRedis(client: RedisClient, override?: RedisOptions, clusterOverride?: ClusterOptions): RedisClient;
export function duplicateRedis(client: RedisClient, override: RedisOptions = {}, clusterOverride: ClusterOptions = {}): RedisClient {
  if (!isCluster(client)) return client.duplicate(override);
  const { enableOfflineQueue, lazyConnect, ...nodeOptions } = override;
  return client.duplicate(undefined, {
    ...clusterOverride,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    redisOptions: { ...client.options.redisOptions, ...nodeOptions },
  });
}

/**
 * Runs commands of many keys as few round trips as the deployment allows: one pipeline on a
 * single Redis; on a cluster one pipeline per node (a pipeline cannot span nodes), all at once.
 * `add` queues an item's commands (each on the item's key). Returns each item's replies, in order.
 */
export async function pipelineByKey<T>(
  client: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipeline: ChainableCommander, item: T) => void,
): Promise<Array<Array<[Error | null, unknown]>>> {
  const groups = new Map<string, number[]>();
  items.forEach((item, index) => {
    const group = isCluster(client) ? (client.slots[keySlot(keyOf(item))]?.[0] ?? `slot:${keySlot(keyOf(item))}`) : '';
    const members = groups.get(group);
    if (members) members.push(index);
    else groups.set(group, [index]);
  });
  const replies: Array<Array<[Error | null, unknown]>> = items.map(() => []);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const pipeline = client.pipeline();
      const counts = indexes.map((index) => {
        const before = pipeline.length;
        add(pipeline, items[index]);
        return pipeline.length - before;
      });
      const results = (await pipeline.exec()) ?? [];
      let at = 0;
      indexes.forEach((index, i) => {
        replies[index] = results.slice(at, at + counts[i]);
        at += counts[i];
      });
    }),
  );
  return replies;
}
