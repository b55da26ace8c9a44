import type { Config } from '../../config';
import type { Logger } from '../lib/logger';
import { RedisConnections, type RedisTarget } from '../lib/redis';
import { createRepositories, type Repositories } from '../models';
import { claimEmbeddedDatabase, openDatabase, type Database } from '../models/database';
import { startEmbeddedRedis } from './embedded-redis';
import type { Closers } from './shutdown';

/** What every role stands on: the database and its repositories, and Redis by concern. */
export interface Stores {
  database: Database;
  repos: Repositories;
  /** Queues, realtime and cache, each on its Redis (one server unless split, or one cluster). */
  connections: RedisConnections;
  /** The banner's Redis line. */
  redisDescription: string;
}

/**
 * Opens the database and Redis, starting the embedded redis-server when no Redis is configured.
 * The embedded server boots in its own process while the database opens here (PGlite's WASM start
 * and the migrations check): start-up waits for the slower of the two, not both. Each opened store
 * is added to `closers`, so a start that fails later still closes it.
 */
export async function openStores(config: Config, logger: Logger, progress: (step: string) => void, closers: Closers): Promise<Stores> {
  const ownRedis = config.redis.url === undefined && config.redis.cluster === undefined;
  // The embedded database's claim on DATA_DIR comes first: a second process on a directory in use
  // stops here, before its embedded redis-server start could stop the holder's as an orphan.
  if (ownRedis && config.database.url === undefined) claimEmbeddedDatabase(config.data.dir);
  if (ownRedis) progress(`Starting Redis (redis-server under ${config.data.dir})`);
  const [redisStart, databaseOpen] = await Promise.allSettled([
    !ownRedis
      ? Promise.resolve(undefined)
      : startEmbeddedRedis(config.data.dir, {
          onRestart: ({ code, attempt }) =>
            logger.error({ code, attempt }, 'embedded redis-server died; restarted it on the same port and data'),
          // Past repeated restarts: exit non-zero, so a supervisor restarts the whole process.
          onFatal: (error) => {
            logger.fatal({ err: error }, 'embedded redis-server cannot be kept running; exiting');
            process.exit(1);
          },
        }),
    openDatabase({
      url: config.database.url,
      dataDir: config.data.dir,
      poolSize: config.database.poolSize,
      progress,
      // Its thread gone, the process cannot serve: exit non-zero, so a supervisor restarts it.
      thread: {
        onLost: (error) => {
          logger.fatal({ err: error }, 'the embedded database thread ended; exiting');
          process.exit(1);
        },
      },
    }),
  ]);
  const embeddedRedis = redisStart.status === 'fulfilled' ? redisStart.value : undefined;
  if (embeddedRedis) closers.unshift(['embedded redis', () => embeddedRedis.stop()]);
  if (databaseOpen.status === 'fulfilled') closers.unshift(['database', () => databaseOpen.value.close()]);
  if (redisStart.status === 'rejected') throw redisStart.reason;
  if (databaseOpen.status === 'rejected') throw databaseOpen.reason;
  const database = databaseOpen.value;
  const connections = RedisConnections.open(redisTargets(config.redis, embeddedRedis?.socket ?? embeddedRedis?.url));
  closers.unshift(['redis', () => connections.quit()]);
  await connections.ready();
  return {
    database,
    repos: createRepositories(database.db),
    connections,
    redisDescription: embeddedRedis ? `embedded redis-server at ${embeddedRedis.url}` : describeRedis(config.redis),
  };
}

const redactUrl = (url: string) => url.replace(/\/\/[^@/]*@/, '//***@');

/** Each concern's Redis: the cluster's seeds, its own URL, or the embedded server's (its socket's path, else its URL). */
function redisTargets(redis: Config['redis'], embedded: string | undefined): Record<'queues' | 'realtime' | 'cache', RedisTarget> {
  if (redis.cluster) return { queues: redis.cluster, realtime: redis.cluster, cache: redis.cluster };
  const url = (own: string | undefined) => own ?? embedded!;
  return { queues: url(redis.urls.queues), realtime: url(redis.urls.realtime), cache: url(redis.urls.cache) };
}

/** The banner's Redis line: the cluster's seeds, one URL, or each concern's (passwords hidden). */
function describeRedis(redis: Config['redis']): string {
  if (redis.cluster) return `Redis Cluster (seeds ${redis.cluster.map((seed) => `${seed.host}:${seed.port}`).join(', ')})`;
  const { queues, realtime, cache } = redis.urls;
  if (queues === realtime && realtime === cache) return redactUrl(queues ?? '');
  return `queues ${redactUrl(queues ?? '')}, realtime ${redactUrl(realtime ?? '')}, cache ${redactUrl(cache ?? '')}`;
}
