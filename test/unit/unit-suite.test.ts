import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import config from '../../jest.config';

/** Module specifiers of `file`: import/export ... from, import(), require(), type-only ones included. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)].map((match) => match[1]);
}

/**
 * What a test needs a server, a database or the run's global setup for: the test app and process
 * helpers, the Redis and database fixtures, the fakes that listen, the clients of Redis, BullMQ,
 * PostgreSQL and PGlite. A test that imports one belongs in test/integration (or faults, security).
 */
const NEEDS_SERVERS =
  /^(ioredis|bullmq|pg|@electric-sql\/pglite|socket\.io-client)$|\/support\/(app|database|redis|redis-cluster|processes|private-postgres|sockets|cluster|cli|device-fixture|fake-google|fake-microsoft|scripted-llm|provider-replay|browser|pack-install)(\.ts)?$/;

/** `npm run test:unit` runs test/unit without the global setup: the folder holds pure units only. */
describe('the unit suite stays pure', () => {
  test('the pattern catches the fixtures that start servers, and not the pure helpers', () => {
    for (const spec of [
      '../support/app',
      '../support/database',
      '../support/redis.ts',
      'ioredis',
      'bullmq',
      'pg',
      '@electric-sql/pglite',
    ]) {
      expect({ spec, caught: NEEDS_SERVERS.test(spec) }).toEqual({ spec, caught: true });
    }
    for (const spec of ['../support/wait', 'pgx', 'express', '../../src/lib/redis-keys', '../../src/app/worker-role']) {
      expect({ spec, caught: NEEDS_SERVERS.test(spec) }).toEqual({ spec, caught: false });
    }
  });

  test('no file in test/unit imports a server fixture or a Redis, BullMQ or database client', () => {
    const found = readdirSync(__dirname)
      .filter((name) => name.endsWith('.ts'))
      .flatMap((name) =>
        specifiers(join(__dirname, name))
          .filter((spec) => NEEDS_SERVERS.test(spec))
          .map((spec) => `${name}: ${spec}`),
      );
    expect(found).toEqual([]);
  });
});

/** `npm test` runs the jest projects: a folder of tests that no project names would never run. */
describe('every test folder is a jest project', () => {
  test('each folder of test/ holding *.test.ts files is the root of a project in jest.config.ts', () => {
    const testRoot = join(__dirname, '..');
    const roots = (config.projects ?? []).flatMap((project) => (typeof project === 'string' ? [] : (project.roots ?? [])));
    const folders = readdirSync(testRoot, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .filter((name) => readdirSync(join(testRoot, name), { recursive: true }).some((file) => String(file).endsWith('.test.ts')));
    expect(folders.length).toBeGreaterThan(5);
    expect(folders.filter((name) => !roots.includes(`<rootDir>/test/${name}`))).toEqual([]);
  });
});
