import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { Pool } from 'pg';
import * as schema from './schema';
import { migrate } from './migrate';
import { PGLITE_EXTENSIONS } from './pglite-extensions';
import { preparePglite } from './pglite-statements';
import { PgliteThread } from './pglite-thread';
import { memoryTemplate, seedFromTemplate } from './pglite-template';
import { processAlive } from '../lib/processes';
import { serverClientClass, type QueryTiming } from './server-client';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A transaction handle; repositories accept either a Db or a Tx. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

/** The database plus how to check and close it. */
export interface Database {
  db: Db;
  /** `pglite (path)`, `pglite (memory)` or `postgres (host/db)` — for the start banner. */
  description: string;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** A PostgreSQL server's pool: its connections now (in use = total − idle) and its size; absent for embedded PGlite (one connection). */
  pool?: () => { total: number; idle: number; waiting: number; max: number };
  /** Where the pool's clients report each statement's time (PostgreSQL server only). */
  timing?: QueryTiming;
}

/**
 * Opens PostgreSQL: a server when `url` is a postgres:// URL, else embedded PGlite (files under
 * `dataDir`, or in memory for `memory://`). Applies migrations before returning.
 */
export async function openDatabase(options: {
  url?: string;
  dataDir: string;
  poolSize?: number;
  progress?: (step: string) => void;
  /**
   * Embedded PGlite on files runs on a thread of its own (pglite-thread.ts), so its statements leave
   * the main thread to the HTTP API and the workers: what a server does. One-shot commands open it
   * on the calling thread. In memory it always runs on the calling thread.
   */
  thread?: { onLost(error: Error): void };
}): Promise<Database> {
  const database = options.url?.startsWith('postgres') ? openServer(options.url, options.poolSize ?? 10) : await openEmbedded(options);
  options.progress?.(`Migrating the database: ${database.description}`);
  await migrate(database.db);
  return database;
}

function openServer(url: string, poolSize: number): Database {
  const timing: QueryTiming = {};
  const pool = new Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5_000, Client: serverClientClass(timing) });
  // An idle client that loses its server emits 'error' on the pool; without a listener it would crash the process.
  pool.on('error', () => undefined);
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  const where = new URL(url);
  return {
    db,
    description: `postgres (${where.hostname}:${where.port || 5432}${where.pathname})`,
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => pool.end(),
    pool: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }),
    timing,
  };
}

async function openEmbedded(options: {
  url?: string;
  dataDir: string;
  progress?: (step: string) => void;
  thread?: { onLost(error: Error): void };
}): Promise<Database> {
  const inMemory = options.url === 'memory://';
  const dir = embeddedDatabaseDir(options.dataDir);
  const release = inMemory ? () => undefined : claimEmbeddedDatabase(options.dataDir);
  // A fresh directory starts from a prepared copy instead of running initdb.
  if (!inMemory && !existsSync(path.join(dir, 'PG_VERSION'))) {
    options.progress?.(`Creating the embedded database in ${dir}`);
    await seedFromTemplate(dir);
  }
  const onThread = !inMemory && options.thread;
  // On files for a server, on a thread of its own; in memory from a dump of the same prepared
  // database when there is one.
  const client: Pick<PGlite, 'query' | 'close'> = onThread
    ? await PgliteThread.open(dir, (error) => options.thread?.onLost(error))
    : await openOnThisThread(inMemory ? undefined : dir);
  const db = drizzlePglite(client as PGlite, { schema }) as unknown as Db;
  return {
    db,
    description: inMemory ? 'pglite (in memory)' : `pglite (${dir})`,
    ping: async () => void (await client.query('select 1')),
    close: async () => {
      await client.close();
      release();
    },
  };
}

/** PGlite on the calling thread: on the files in `dir`, or in memory from the prepared dump. */
async function openOnThisThread(dir: string | undefined): Promise<PGlite> {
  const client = dir
    ? new PGlite(dir, { extensions: PGLITE_EXTENSIONS })
    : new PGlite({ loadDataDir: await memoryTemplate(), extensions: PGLITE_EXTENSIONS });
  await preparePglite(client);
  return client;
}

/** Thrown when another live process holds the embedded database directory. */
export class DatabaseInUseError extends Error {
  override name = 'DatabaseInUseError';
}

/** Where the embedded database keeps its files under DATA_DIR. */
const embeddedDatabaseDir = (dataDir: string) => path.resolve(dataDir, 'pglite');

/**
 * Claims the embedded database under `dataDir` for this process (see {@link claimDataDir}),
 * creating its directory; the release gives it back. Claimed again by the same process, it passes.
 */
export function claimEmbeddedDatabase(dataDir: string): () => void {
  const dir = embeddedDatabaseDir(dataDir);
  mkdirSync(dir, { recursive: true });
  return claimDataDir(dir);
}

/**
 * PGlite has one writer: a second process on the same files (a second `npm start`, or
 * `switchboard admin grant` while the server runs) would corrupt them. The owner's pid is kept in
 * `owner.pid`; a file left by a dead process (kill -9) is taken over.
 */
export function claimDataDir(dir: string): () => void {
  const file = path.join(dir, 'owner.pid');
  let owner = Number.NaN;
  try {
    owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
  } catch {
    // no owner yet
  }
  if (Number.isInteger(owner) && owner !== process.pid && processAlive(owner)) {
    throw new DatabaseInUseError(
      `The embedded database in ${dir} is in use by process ${owner} (PGlite allows one process). Stop it first, or point every process at a PostgreSQL server with DATABASE_URL.`,
    );
  }
  writeFileSync(file, String(process.pid));
  return () => {
    try {
      if (Number.parseInt(readFileSync(file, 'utf8'), 10) === process.pid) rmSync(file);
    } catch {
      // already gone
    }
  };
}
