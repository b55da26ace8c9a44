/**
 * A query built once, on first use, and run many times: each call binds its values (drizzle's
 * prepared query, `sql.placeholder`) instead of building its SQL again. Building costs 0.05 – 0.15
 * ms of CPU per query on the PostgreSQL server and more with PGlite, on every authenticated request
 * and every generation's start.
 *
 * Drizzle is given no name for it: each connection names the texts it runs again, whatever built
 * them (the server's pool client, server-client.ts; the embedded database, pglite-statements.ts), so
 * PostgreSQL also parses and plans it once per connection.
 */
export function preparedOnce<T>(build: (name: string) => T): () => T {
  let statement: T | undefined;
  return () => (statement ??= build(UNNAMED));
}

/** drizzle's `prepare(name)` types a name; without one the driver sends an unnamed statement. */
const UNNAMED = undefined as unknown as string;
