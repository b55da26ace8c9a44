import { readdirSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/models/database';
import { rowsOf } from '../../src/models/migrate';

/**
 * Decision 0219: an in-memory embedded database (`memory://`) starts from a dump of the prepared
 * database (initdb and every migration done) instead of running initdb. Each one is its own
 * database: a table created in one is not in the next, and nothing it writes reaches the dump.
 */
describe('in-memory embedded databases from the prepared dump', () => {
  const migrations = readdirSync(path.resolve(__dirname, '../../src/models/migrations'))
    .filter((file) => file.endsWith('.sql'))
    .sort();
  const applied = async (db: Awaited<ReturnType<typeof openDatabase>>['db']) =>
    rowsOf<{ name: string }>(await db.execute(sql`select name from schema_migrations order by name`)).map((row) => row.name);
  const dataDir = path.resolve(__dirname, '../../.data/test');

  test('two in-memory databases each have every migration, and a table created in the first is not in the second', async () => {
    const a = await openDatabase({ url: 'memory://', dataDir });
    try {
      expect(await applied(a.db)).toEqual(migrations);
      await a.db.execute(sql`create table memory_template_probe (n int)`);
      await a.db.execute(sql`insert into memory_template_probe values (1)`);
      expect(rowsOf<{ n: number }>(await a.db.execute(sql`select n from memory_template_probe`))).toEqual([{ n: 1 }]);
    } finally {
      await a.close();
    }
    const templates = path.resolve(__dirname, '../../.build/pglite');
    expect(readdirSync(templates).some((name) => name.endsWith('.tar'))).toBe(true);

    const b = await openDatabase({ url: 'memory://', dataDir });
    try {
      expect(await applied(b.db)).toEqual(migrations);
      const probe = rowsOf<{ name: string | null }>(await b.db.execute(sql`select to_regclass('memory_template_probe')::text as name`));
      expect(probe[0].name).toBeNull();
    } finally {
      await b.close();
    }
  }, 180_000);
});
