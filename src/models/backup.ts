import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { claimDataDir } from './database';
import { migrate } from './migrate';
import { PGLITE_EXTENSIONS } from './pglite-extensions';
import * as schema from './schema';

/** Where the data lives: a PostgreSQL server (`postgres://…`) or embedded PGlite under `dataDir`. */
export interface BackupTarget {
  url?: string;
  dataDir: string;
}

/** `postgres`: a pg_dump archive (custom format). `pglite`: a gzipped tarball of the embedded data directory. */
export type BackupKind = 'postgres' | 'pglite';

/** How many backups of each period a directory keeps: the newest of each of the last N days, weeks (ISO) and months. */
export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { daily: 7, weekly: 4, monthly: 12 };

/** A backup's file name: the kind in the extension, the time (UTC) in the name, so names sort by time. */
const BACKUP_FILE = /^switchboard-(\d{4})-(\d{2})-(\d{2})T(\d{6})Z\.(pgdump|tar\.gz)$/;

/** A command's refusal whose message is the whole story (printed without a stack). */
export class BackupError extends Error {
  override name = 'BackupError';
}

export function backupKind(target: BackupTarget): BackupKind {
  if (target.url === 'memory://') throw new BackupError('DATABASE_URL=memory:// holds nothing to back up or restore into.');
  return target.url?.startsWith('postgres') ? 'postgres' : 'pglite';
}

/** `switchboard-2026-11-26T195900Z.pgdump` (or `.tar.gz` for PGlite). */
export function backupFileName(kind: BackupKind, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const [date, time] = [stamp.slice(0, 8), stamp.slice(9)];
  return `switchboard-${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6)}T${time}.${kind === 'postgres' ? 'pgdump' : 'tar.gz'}`;
}

/**
 * Writes a backup of the database to `file` (written beside it, then renamed: a backup cut short
 * never looks like a whole one). PostgreSQL: `pg_dump --format=custom` (the `pg_dump` on PATH, of
 * the server's major version or newer). PGlite: its data directory as a gzipped tarball, taken while
 * no server holds it (PGlite has one writer: stop the server first).
 */
export async function backupDatabase(target: BackupTarget, file: string): Promise<{ kind: BackupKind; file: string; bytes: number }> {
  const kind = backupKind(target);
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  try {
    if (kind === 'postgres') {
      await run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--file=${partial}`], target.url!);
    } else {
      const dir = pgliteDir(target);
      if (!existsSync(path.join(dir, 'PG_VERSION'))) throw new BackupError(`No embedded database in ${dir}: nothing to back up.`);
      const release = claimDataDir(dir);
      try {
        const client = new PGlite(dir, { extensions: PGLITE_EXTENSIONS });
        try {
          // Asked before it is ready, PGlite never answers the dump.
          await client.waitReady;
          const dump = await client.dumpDataDir('gzip');
          writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
        } finally {
          await client.close();
        }
      } finally {
        release();
      }
    }
    renameSync(partial, file);
  } finally {
    rmSync(partial, { force: true });
  }
  return { kind, file, bytes: statSync(file).size };
}

/**
 * What a backup file holds, read from its first bytes (its name may be anything `--file` gave): a
 * gzip stream is a PGlite data directory, `PGDMP` opens a pg_dump archive; null for anything else.
 */
export function backupKindOfFile(file: string): BackupKind | null {
  const head = Buffer.alloc(5);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return 'pglite';
  if (head.toString('latin1') === 'PGDMP') return 'postgres';
  return null;
}

/**
 * Replaces the database's contents with a backup's, then applies the migrations the backup
 * predates. PostgreSQL: `pg_restore --clean --if-exists --single-transaction` (all or nothing).
 * PGlite: the tarball is unpacked into a new directory, migrated, and swapped in; the previous
 * directory is kept beside it as `pglite.before-restore-<time>` (returned), never deleted.
 */
export async function restoreDatabase(target: BackupTarget, file: string): Promise<{ kind: BackupKind; keptAside?: string }> {
  const kind = backupKind(target);
  if (!existsSync(file)) throw new BackupError(`No backup at ${file}.`);
  const fileKind = backupKindOfFile(file);
  if (!fileKind) throw new BackupError(`${file} is not a backup: neither an embedded (PGlite) backup nor a pg_dump archive.`);
  if (fileKind !== kind)
    throw new BackupError(
      kind === 'postgres'
        ? `${file} is an embedded (PGlite) backup; DATABASE_URL names a PostgreSQL server, which restores pg_dump archives (.pgdump).`
        : `${file} is a pg_dump archive, not an embedded (PGlite) backup; set DATABASE_URL to restore it into PostgreSQL.`,
    );
  if (kind === 'postgres') {
    await run(
      'pg_restore',
      ['--clean', '--if-exists', '--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', file],
      target.url!,
    );
    return { kind };
  }
  const dir = pgliteDir(target);
  mkdirSync(dir, { recursive: true });
  const release = claimDataDir(dir);
  const staging = `${dir}.restore-${process.pid}`;
  try {
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const client = new PGlite(staging, { loadDataDir: new Blob([readFileSync(file)]), extensions: PGLITE_EXTENSIONS });
    try {
      await migrate(drizzle(client, { schema }));
    } finally {
      await client.close();
    }
    // The backup's own owner file names a process of its time, not this one.
    rmSync(path.join(staging, 'owner.pid'), { force: true });
    const keptAside = existsSync(path.join(dir, 'PG_VERSION')) ? `${dir}.before-restore-${Date.now()}` : undefined;
    if (keptAside) renameSync(dir, keptAside);
    else rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    return { kind, keptAside };
  } finally {
    release();
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The backups of `names` a directory keeps under `policy`: the newest backup of each of the last
 * `daily` days, of each of the last `weekly` ISO weeks and of each of the last `monthly` months that
 * have one (UTC, read from the names). Names that are not backups are neither kept nor counted.
 */
export function retainedBackups(names: readonly string[], policy: RetentionPolicy = DEFAULT_RETENTION): Set<string> {
  const backups = names
    .map((name) => ({ name, match: BACKUP_FILE.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  const kept = new Set<string>();
  const keep = (period: (m: RegExpExecArray) => string, count: number) => {
    const seen = new Set<string>();
    for (const { name, match } of backups) {
      const key = period(match);
      if (seen.has(key)) continue;
      if (seen.size >= count) break;
      seen.add(key);
      kept.add(name);
    }
  };
  keep((m) => `${m[1]}-${m[2]}-${m[3]}`, policy.daily);
  keep((m) => isoWeek(Number(m[1]), Number(m[2]), Number(m[3])), policy.weekly);
  keep((m) => `${m[1]}-${m[2]}`, policy.monthly);
  return kept;
}

/** Deletes the backups in `dir` that {@link retainedBackups} does not keep; returns their names. */
export function pruneBackups(dir: string, policy: RetentionPolicy = DEFAULT_RETENTION): string[] {
  const names = readdirSync(dir);
  const kept = retainedBackups(names, policy);
  const removed = names.filter((name) => BACKUP_FILE.test(name) && !kept.has(name));
  for (const name of removed) rmSync(path.join(dir, name), { force: true });
  return removed;
}

/** `2026-W48`: the ISO week (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const firstDay = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - firstDay) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

function pgliteDir(target: BackupTarget): string {
  return path.resolve(target.dataDir, 'pglite');
}

/**
 * Runs a PostgreSQL client program on the database `url` to its end. The password goes in the
 * child's environment (PGPASSWORD), not its command line, which any local user can read; its stderr
 * (which never holds the password) is the error.
 */
function run(program: string, args: string[], url: string): Promise<void> {
  const where = new URL(url);
  const password = decodeURIComponent(where.password);
  where.password = '';
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args, `--dbname=${where.toString()}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) },
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new BackupError(`${program} was not found on PATH: install the PostgreSQL client of your server's major version (or newer).`)
          : error,
      ),
    );
    child.once('close', (code) =>
      code === 0
        ? resolve()
        : reject(new BackupError(`${program} failed (exit ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`)),
    );
  });
}
