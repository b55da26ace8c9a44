import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { prepareTemplates } from '../../src/models/pglite-template';
import { LOCAL_POSTGRES } from './database';
import { startRedisCluster } from './redis-cluster';
import { findPostgresBinaries, POSTGRES_MISSING, postgresAnswers, startPrivatePostgres } from './private-postgres';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS script, loaded as one
const { ensureBundle } = require('../../scripts/bundle.cjs') as { ensureBundle(options: { quiet: boolean }): Promise<string> };

type Stoppable = { stop(): Promise<void> };

/**
 * One private redis-server for the whole run (unless TEST_REDIS_URL points at one), so tests never
 * touch a developer's data on 6379. Each test still isolates itself with its own key prefix.
 * Likewise a PostgreSQL server for the multi-process tests: DATABASE_URL or TEST_POSTGRES_URL when
 * set, else the machine's on 127.0.0.1:5432 when it accepts us, else a private one started from
 * the installed binaries (see serverPostgresUrl in ./database).
 */
export default async function globalSetup(): Promise<void> {
  // Built here, each only when a source is newer: the packages' dist/ (the console serves the
  // client's browser bundle; the example app and the pack test use the builds), the bundle of src/
  // that every Switchboard process a test starts runs (what `npm start` runs), and the embedded
  // database's prepared templates, before two workers' first tests would each build them at once.
  await Promise.all([ensureBundle({ quiet: true }), prepareTemplates()]);
  await setUpPostgres();
  // TEST_REDIS_CLUSTER=1: every test's Switchboard runs on a local three-master Redis Cluster.
  if (process.env.TEST_REDIS_CLUSTER === '1' && !process.env.TEST_REDIS_CLUSTER_NODES) {
    const cluster = await startRedisCluster(3);
    process.env.TEST_REDIS_CLUSTER_NODES = cluster.nodes;
    (globalThis as { __sbRedisCluster?: Stoppable }).__sbRedisCluster = cluster;
  }
  // TEST_REDIS_SPLIT=1: every test's Switchboard keeps queues, realtime and cache on three
  // private redis-servers, one each, on data dirs of their own.
  if (process.env.TEST_REDIS_SPLIT === '1' && !process.env.TEST_REDIS_URL_QUEUES) {
    const servers = await Promise.all(
      ['queues', 'realtime', 'cache'].map((concern) => startEmbeddedRedis(`${process.cwd()}/.data/test-split/${concern}`)),
    );
    const [queues, realtime, cache] = servers;
    process.env.TEST_REDIS_URL_QUEUES = queues.url;
    process.env.TEST_REDIS_URL_REALTIME = realtime.url;
    process.env.TEST_REDIS_URL_CACHE = cache.url;
    (globalThis as { __sbRedisSplit?: Stoppable[] }).__sbRedisSplit = servers;
  }
  if (process.env.TEST_REDIS_URL) return;
  // TEST_DATA_DIR: where this run's redis-server keeps its files. Two runs at once on one checkout
  // (CI runs the idle browser suite beside the others) each need their own: a start stops the
  // server it finds recorded there as an orphan.
  const redis = await startEmbeddedRedis(process.env.TEST_DATA_DIR ?? `${process.cwd()}/.data/test`);
  process.env.TEST_REDIS_URL = redis.url;
  (globalThis as { __sbRedis?: Stoppable }).__sbRedis = redis;
}

async function setUpPostgres(): Promise<void> {
  if (process.env.DATABASE_URL || process.env.TEST_POSTGRES_URL) return;
  if (await postgresAnswers(LOCAL_POSTGRES)) {
    process.env.TEST_POSTGRES_URL = LOCAL_POSTGRES;
    return;
  }
  const binDir = findPostgresBinaries();
  // Not thrown: only the tests that need a server fail (with this message); the rest run on PGlite.
  if (!binDir) {
    process.env.TEST_POSTGRES_MISSING = POSTGRES_MISSING;
    return;
  }
  const started = Date.now();
  try {
    const postgres = await startPrivatePostgres(binDir);
    process.env.TEST_POSTGRES_URL = postgres.url;
    (globalThis as { __sbPostgres?: Stoppable }).__sbPostgres = postgres;
    process.stderr.write(`\nNo PostgreSQL on 127.0.0.1:5432: started a private one from ${binDir} in ${Date.now() - started} ms\n`);
  } catch (error) {
    process.env.TEST_POSTGRES_MISSING = `Could not start a private PostgreSQL from ${binDir} (set DATABASE_URL to use a server): ${(error as Error).message}`;
  }
}
