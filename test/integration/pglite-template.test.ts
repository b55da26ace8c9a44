import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/models/database';
import { rowsOf } from '../../src/models/migrate';

/**
 * Decision 0140: a fresh embedded database starts from a copy of a prepared template (initdb and
 * every migration done). Each copy is a database of its own: what one process writes never shows
 * in the next fresh one, and the template itself is never opened.
 */
describe('fresh embedded databases from the prepared template', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sb-template-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const migrations = readdirSync(path.resolve(__dirname, '../../src/models/migrations'))
    .filter((file) => file.endsWith('.sql'))
    .sort();
  const applied = async (db: Awaited<ReturnType<typeof openDatabase>>['db']) =>
    rowsOf<{ name: string }>(await db.execute(sql`select name from schema_migrations order by name`)).map((row) => row.name);

  test('two fresh DATA_DIRs each get every migration, and a row written in the first is not in the second', async () => {
    const first = fresh();
    const a = await openDatabase({ dataDir: first });
    try {
      expect(await applied(a.db)).toEqual(migrations);
      await a.db.execute(sql`create table template_probe (n int)`);
      await a.db.execute(sql`insert into template_probe values (1)`);
    } finally {
      await a.close();
    }
    const templates = path.resolve(__dirname, '../../.build/pglite');
    expect(readdirSync(templates).some((name) => existsSync(path.join(templates, name, 'PG_VERSION')))).toBe(true);

    const second = fresh();
    const b = await openDatabase({ dataDir: second });
    try {
      expect(await applied(b.db)).toEqual(migrations);
      const probe = rowsOf<{ name: string | null }>(await b.db.execute(sql`select to_regclass('template_probe')::text as name`));
      expect(probe[0].name).toBeNull();
    } finally {
      await b.close();
    }
    // The first database kept its own data across a reopen (a real directory, not a shared one).
    const again = await openDatabase({ dataDir: first });
    try {
      expect(rowsOf<{ n: number }>(await again.db.execute(sql`select n from template_probe`))).toEqual([{ n: 1 }]);
    } finally {
      await again.close();
    }
  }, 180_000);
});
