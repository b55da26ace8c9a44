/**
 * A query built once, on first use, and run many times: each call binds its values (drizzle's
 * prepared query, `sql.placeholder`) instead of building its SQL again. Building costs 0.05 – 0.15
 * ms of CPU per query on the PostgreSQL server and more with PGlite, on every authenticated request
 * and every generation's start.
 *
 * Unnamed on the server (`UNNAMED`): PostgreSQL still parses the statement on each run, as for any
 * other query, so nothing is left prepared on a connection that a transaction-mode pooler could
 * hand to another client, or that a migration run by another node could invalidate.
 */
export function preparedOnce<T>(build: (name: string) => T): () => T {
  let statement: T | undefined;
  return () => (statement ??= build(UNNAMED));
}

/** drizzle's `prepare(name)` types a name; without one the driver sends an unnamed statement. */
const UNNAMED = undefined as unknown as string;
