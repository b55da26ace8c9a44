import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const engines = (file: string) => (JSON.parse(read(file)) as { engines: { node: string } }).engines.node;
/** The lowest major a `>=X[.Y]` range admits. */
const lowestMajor = (range: string) => Number(/^>=(\d+)/.exec(range)?.[1]);

describe('the Node versions the packages declare agree with the docs', () => {
  test('the client package asks for the Node major its docs promise (22+), as the server does', () => {
    const client = engines('packages/client/package.json');
    expect(lowestMajor(client)).toBe(22);
    expect(lowestMajor(engines('package.json'))).toBe(22);
    expect(read('docs/sdks.md')).toContain('Node.js 22+');
    expect(read('packages/client/README.md')).toContain('Node ≥ 22');
  });

  test('the lockfile records the client workspace with the same engines', () => {
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: { node: string } }> };
    expect(lock.packages['packages/client'].engines?.node).toBe(engines('packages/client/package.json'));
  });
});
