import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [relative(SRC, full)] : [];
  });
}

/**
 * Redis is a schema: key names are built in `lib/redis-keys.ts`, Lua scripts live in
 * `lib/redis-scripts.ts`. A key built from the prefix elsewhere, or a script sent elsewhere,
 * escapes the one place a rename or a Cluster hash tag is made.
 */
describe('Redis schema files', () => {
  const files = sourceFiles(SRC).filter((file) => file !== 'lib/redis-keys.ts' && file !== 'lib/redis-scripts.ts');

  test('there are source files to check', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  test('no other file builds a key from the key prefix or runs Lua', () => {
    const offending = files.flatMap((file) => {
      const source = readFileSync(join(SRC, file), 'utf8');
      const found: string[] = [];
      // A name built from any prefix (`${keyPrefix}:…`, `${channelPrefix}#…`) or by appending an id to one.
      if (/\$\{[\w.]*[pP]refix\}[:#]/.test(source) || /[kK]eyPrefix \+/.test(source)) found.push('key built from the prefix');
      if (/redis\.call\(|\.eval(sha)?\(|defineCommand\(/.test(source)) found.push('Lua script');
      return found.map((what) => `${file}: ${what}`);
    });
    expect(offending).toEqual([]);
  });
});
