import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(__dirname, '../../src');
const OWNER = 'models/runs-repository.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** A write to the `runs` table: raw SQL, or drizzle's builders on the `runs` table object. */
const RUN_WRITE = /\b(insert\s+into|update|delete\s+from)\s+runs\b|\.(insert|update|delete)\(\s*runs\s*\)/i;

/**
 * The `runs` table has one writer: the runs repository. Other repositories build statements that
 * move a run beside their own row from the fragments it exports; nothing else writes it.
 */
describe('the runs table', () => {
  const files = sourceFiles(SRC);

  test('there are sources to check, and the owner itself writes runs', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(RUN_WRITE.test(readFileSync(join(SRC, OWNER), 'utf8'))).toBe(true);
  });

  test('is written only by the runs repository', () => {
    const writers = files
      .filter((path) => relative(SRC, path) !== OWNER)
      .filter((path) => RUN_WRITE.test(readFileSync(path, 'utf8')))
      .map((path) => relative(SRC, path));
    expect(writers).toEqual([]);
  });
});
