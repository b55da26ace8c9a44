import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROUTES_DIR = join(__dirname, '../../src/http/routes');

/**
 * Every write flow goes through a service or repository. A route file parses, checks
 * access and calls a service; it never holds SQL, a transaction or a database driver.
 */
describe('route files', () => {
  const files = readdirSync(ROUTES_DIR).filter((name) => name.endsWith('.ts'));

  test('there are route files to check', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  test.each(files)('%s imports no database driver and runs no SQL or transaction', (name) => {
    const source = readFileSync(join(ROUTES_DIR, name), 'utf8');
    // Type-only imports (a row type) load nothing at run time: only value imports count.
    const valueSource = source.replace(/^import\s+type\s[^;]*;/gm, '');
    const imports = [...valueSource.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)].map((match) => match[1]);
    expect({
      name,
      drivers: imports.filter(
        (spec) => /^(drizzle-orm|pg|@electric-sql\/pglite|postgres)(\/|$)/.test(spec) || /\/models\/(schema|database)$/.test(spec),
      ),
    }).toEqual({ name, drivers: [] });
    expect({
      name,
      transaction: /\.transaction\s*\(/.test(source),
      sql: /\bsql\s*(<[^>]*>)?\s*`/.test(source),
      db: /\brepos\.db\b/.test(source),
    }).toEqual({ name, transaction: false, sql: false, db: false });
  });
});
