import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '../..');

/** Every .ts/.tsx/.js/.mjs file under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return /\.(ts|tsx|js|mjs|cjs)$/.test(entry.name) ? [full] : [];
  });
}

/** Module specifiers of `file`: import/export ... from, import(), require(), type-only ones included. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)].map((match) => match[1]);
}

/** A specifier that reaches the test doubles: the package's testing entry or the files themselves. */
const TEST_DOUBLE =
  /(^@switchboard\/client\/testing(\/|$))|(\/testing(\/index)?(\.[cm]?[jt]s)?$)|(device-simulator|memory-store)(\.[cm]?[jt]s)?$/;

/**
 * The test doubles (DeviceSimulator, MemoryStore) live with the SDK's device
 * helper as `@switchboard/client/testing`; production code never loads them.
 */
describe('test doubles stay out of production code', () => {
  test('the pattern catches every way of reaching them (and nothing else)', () => {
    for (const spec of [
      '@switchboard/client/testing',
      '../../packages/client/src/testing',
      '../../packages/client/src/testing/index',
      './testing/device-simulator',
      '../devices/memory-store.ts',
      './memory-store',
    ]) {
      expect({ spec, caught: TEST_DOUBLE.test(spec) }).toEqual({ spec, caught: true });
    }
    for (const spec of ['@switchboard/client', '../../packages/client/src/device', './protocol', '../lib/testing-helpers']) {
      expect({ spec, caught: TEST_DOUBLE.test(spec) }).toEqual({ spec, caught: false });
    }
  });

  test('nothing under src/ imports them, and they are no longer under src/', () => {
    const files = sources(join(ROOT, 'src'));
    expect(files.length).toBeGreaterThan(50);
    const offending = files.flatMap((file) =>
      specifiers(file)
        .filter((spec) => TEST_DOUBLE.test(spec))
        .map((spec) => `${relative(ROOT, file)}: ${spec}`),
    );
    expect(offending).toEqual([]);
    expect(existsSync(join(ROOT, 'src/devices/device-simulator.ts'))).toBe(false);
    expect(existsSync(join(ROOT, 'src/devices/memory-store.ts'))).toBe(false);
  });

  test("the SDK's main and node entries do not pull them in either", () => {
    const files = sources(join(ROOT, 'packages/client/src')).filter((file) => !file.includes(`${join('src', 'testing')}`));
    expect(files.length).toBeGreaterThan(5);
    const offending = files.flatMap((file) =>
      specifiers(file)
        .filter((spec) => TEST_DOUBLE.test(spec))
        .map((spec) => `${relative(ROOT, file)}: ${spec}`),
    );
    expect(offending).toEqual([]);
  });
});
