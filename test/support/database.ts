import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { migrationsHash } from '../../src/models/migrate';
import type { RedisConcernName, RedisTarget } from '../../src/lib/redis';

/** A database of the test's own: a fresh database on the server when DATABASE_URL is set, else in-memory PGlite. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** The machine's PostgreSQL server, where a developer usually has one. */
export const LOCAL_POSTGRES = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The PostgreSQL server for tests that need one database shared by several processes (PGlite is
 * one process's): DATABASE_URL, else the server the test run's global setup found or started
 * (TEST_POSTGRES_URL: the machine's on 5432, or a private one). When it found neither a server
 * nor the binaries to start one, this throws its message: what to install, or what to set.
 * Outside a jest run (the benchmark tools) it is the machine's server.
 */
export function serverPostgresUrl(): string {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  if (process.env.TEST_POSTGRES_URL) return process.env.TEST_POSTGRES_URL;
  if (process.env.TEST_POSTGRES_MISSING) throw new Error(process.env.TEST_POSTGRES_MISSING);
  return LOCAL_POSTGRES;
}

/**
 * A database of the test's own. On a server it is empty unless `migrated`: then it is a copy of a
 * template database that already holds every migration, which the app's start finds applied
 * (copying is cheaper than running the migrations again for each test's app).
 */
export async function createTestDatabase(options: { server?: string; migrated?: boolean } = {}): Promise<TestDatabase> {
  const server = options.server ?? process.env.DATABASE_URL;
  if (!server) return { url: 'memory://', drop: async () => undefined };
  const name = `sb_test_${randomUUID().replace(/-/g, '')}`;
  const template = options.migrated ? await migratedTemplate(server) : undefined;
  await withAdmin(server, (client) => client.query(`create database ${name}${template ? ` template ${template}` : ''}`));
  return {
    url: databaseUrl(server, name),
    drop: () => withAdmin(server, (client) => client.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

const databaseUrl = (server: string, name: string) => {
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
};

const templates = new Map<string, Promise<string>>();

/**
 * The server's template of the migrated schema, built once per set of migrations: named by a hash of
 * their files, so a changed migration gets a template of its own and a stale one is never copied.
 * It is migrated under a name of its own and renamed into place when complete; a test process that
 * loses the race to rename drops its copy and uses the winner's. Nothing connects to a template
 * once it is in place (PostgreSQL copies a database only while no session is on it).
 */
function migratedTemplate(server: string): Promise<string> {
  let template = templates.get(server);
  if (!template) {
    template = buildTemplate(server);
    templates.set(server, template);
    template.catch(() => templates.delete(server));
  }
  return template;
}

async function buildTemplate(server: string): Promise<string> {
  const name = `sb_template_${migrationsHash()}`;
  const exists = async () =>
    (await withAdmin(server, (client) => client.query('select 1 from pg_database where datname = $1', [name]))).rowCount === 1;
  if (await exists()) return name;
  const building = `sb_template_build_${randomUUID().replace(/-/g, '')}`;
  await withAdmin(server, (client) => client.query(`create database ${building}`));
  try {
    // Loaded here: most files that import these helpers never build a template.
    const { openDatabase } = await import('../../src/models/database');
    const database = await openDatabase({ url: databaseUrl(server, building), dataDir: '', poolSize: 1 });
    await database.close();
    await withAdmin(server, (client) => client.query(`alter database ${building} rename to ${name}`));
  } catch (error) {
    await withAdmin(server, (client) => client.query(`drop database if exists ${building} with (force)`));
    // Another test process renamed its template into place first: that one is as good.
    if ((error as { code?: string }).code === '42P04' && (await exists())) return name;
    throw error;
  }
  return name;
}

/**
 * Runs `work` on the server's maintenance database (`postgres`), not on the database the server
 * URL names (`test` on a shared machine): creating and dropping a test's own database never
 * depends on a database other runs share, and may drop or hold. Servers without a `postgres`
 * database are asked on the URL's own.
 */
async function withAdmin<T>(server: string, work: (client: Client) => Promise<T>): Promise<T> {
  const maintenance = new URL(server);
  maintenance.pathname = '/postgres';
  let client = new Client({ connectionString: maintenance.toString() });
  try {
    await client.connect();
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error;
    client = new Client({ connectionString: server });
    await client.connect();
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export const testRedisUrl = () => process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const SPLIT_ENV = { queues: 'TEST_REDIS_URL_QUEUES', realtime: 'TEST_REDIS_URL_REALTIME', cache: 'TEST_REDIS_URL_CACHE' } as const;

/**
 * The run's three servers under TEST_REDIS_SPLIT=1 (queues, realtime and cache each on its own,
 * global setup starts them and names them), else undefined.
 */
export function testRedisSplit(): Record<RedisConcernName, string> | undefined {
  const queues = process.env[SPLIT_ENV.queues];
  const realtime = process.env[SPLIT_ENV.realtime];
  const cache = process.env[SPLIT_ENV.cache];
  return queues && realtime && cache ? { queues, realtime, cache } : undefined;
}

/**
 * Where a test's own Redis connection goes (`createRedis(testRedisTarget(concern), …)`): the run's
 * Redis, the seeds of the run's Redis Cluster under TEST_REDIS_CLUSTER=1, or the server of
 * `concern` under TEST_REDIS_SPLIT=1, so what a test reads or writes directly is where its
 * Switchboard keeps it. `concern` is the one the product keeps the test's keys under: queues
 * (BullMQ, fair-share sets), realtime (the socket adapter, canvas and event logs, devices, cancel
 * signals, stream and socket leases) or cache (limits, budgets, throttles, idempotency, journeys,
 * OAuth states, locks).
 */
export const testRedisTarget = (concern: RedisConcernName): RedisTarget => {
  if (process.env.TEST_REDIS_CLUSTER_NODES)
    return process.env.TEST_REDIS_CLUSTER_NODES.split(',').map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) }));
  return testRedisSplit()?.[concern] ?? testRedisUrl();
};

/**
 * The Redis settings of a test's Switchboard: the run's Redis, the run's Redis Cluster when the
 * run was started with TEST_REDIS_CLUSTER=1, or each concern's own server under
 * TEST_REDIS_SPLIT=1 (no REDIS_URL then: whatever the product reads must come from a concern).
 */
export const testRedisEnv = (): Record<string, string> => {
  if (process.env.TEST_REDIS_CLUSTER_NODES) return { REDIS_CLUSTER_NODES: process.env.TEST_REDIS_CLUSTER_NODES };
  const split = testRedisSplit();
  if (split) return { REDIS_URL_QUEUES: split.queues, REDIS_URL_REALTIME: split.realtime, REDIS_URL_CACHE: split.cache };
  return { REDIS_URL: testRedisUrl() };
};
