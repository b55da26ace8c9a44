import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema';

export const MIGRATIONS_DIR = path.join(__dirname, 'migrations');
/** Arbitrary constant: every Switchboard process takes the same advisory lock to migrate. */
const MIGRATION_LOCK_KEY = 7_042_001;

/**
 * Applies pending migrations/*.sql in name order, in ONE transaction holding a transaction-level
 * advisory lock, so processes starting at the same moment migrate exactly once and the others
 * wait, then see the migrations applied.
 */
export async function migrate(db: PgDatabase<PgQueryResultHKT, typeof schema>): Promise<string[]> {
  const files = migrationFiles();
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(
      sql`create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())`,
    );
    const applied = await tx.execute<{ name: string }>(sql`select name from schema_migrations`);
    const done = new Set(rowsOf<{ name: string }>(applied).map((row) => row.name));
    const ran: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      const statements = readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8').split('--> statement-breakpoint');
      for (const statement of statements) {
        if (statement.trim()) await tx.execute(sql.raw(statement));
      }
      await tx.execute(sql`insert into schema_migrations (name) values (${file})`);
      ran.push(file);
    }
    return ran;
  });
}

/** The migration files' names, in the order they apply. */
function migrationFiles(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => file.endsWith('.sql'))
    .sort();
}

/** A hash of every migration's name and contents: a prepared schema built from other migrations has another. */
export function migrationsHash(): string {
  const hash = createHash('sha256');
  for (const file of migrationFiles()) hash.update(file).update(readFileSync(path.join(MIGRATIONS_DIR, file)));
  return hash.digest('hex').slice(0, 16);
}

/** node-postgres returns `{rows}`, PGlite returns `{rows}` too, but typed differently; normalise. */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows?: T[] }).rows ?? (result as T[]);
}
