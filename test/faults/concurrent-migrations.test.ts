import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { AI_AGENT_USER_ID } from '../../config';
import { createTestDatabase, serverPostgresUrl, testRedisEnv, type TestDatabase } from '../support/database';
import { registerUser, request } from '../support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';

const MIGRATIONS = readdirSync(path.resolve(__dirname, '../../src/models/migrations'))
  .filter((file) => file.endsWith('.sql'))
  .sort();

/**
 * Several API processes started at the same moment against one EMPTY database: each migrates at
 * start, under a PostgreSQL advisory lock, so exactly one of them applies every migration, the
 * others wait and then find it applied, and all of them serve the same data.
 */
describe('API processes starting together on a fresh database', () => {
  const databases: TestDatabase[] = [];
  const processes: SwitchboardProcess[] = [];

  afterAll(async () => {
    // Anything a failed test left running dies here; the tests themselves stop theirs with SIGTERM.
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await Promise.all(databases.map((database) => database.drop()));
  });

  test.each([2, 3])(
    'given %i api processes started at once, each migration is applied once and every node serves the same users',
    async (count) => {
      // Given: an empty database on the PostgreSQL server, and one Redis key prefix for the whole cluster
      const database = await createTestDatabase({ server: serverPostgresUrl() });
      databases.push(database);
      const env = {
        SWITCHBOARD_ROLES: 'api',
        PORT: '0',
        DATABASE_URL: database.url,
        ...testRedisEnv(),
        REDIS_KEY_PREFIX: `mig-${randomUUID().slice(0, 8)}`,
        JWT_SECRET: 'concurrent-migrations-secret-concurrent-migrations',
      };

      // When: every process is spawned in the same tick
      const nodes = await spawnAll(Array.from({ length: count }, () => env));

      // Then: each printed its banner and is ready
      for (const node of nodes) {
        expect(node.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect(node.output()).toMatch(/roles\s+api/);
        expect(node.output()).toMatch(/database\s+postgres/);
        const ready = await request('GET', `${node.url}/readyz`);
        expect(ready.status).toBe(200);
        // Queues are reported too (an api node alone: no worker yet, within its first window).
        expect(ready.body).toEqual({ status: 'ready', checks: { redis: 'ok', database: 'ok' }, providers: {}, queues: expect.any(Object) });
      }

      // and the database lists each migration exactly once, with the seeded AI user once
      const rows = await query<{ name: string; copies: number }>(
        database.url,
        'select name, count(*)::int as copies from schema_migrations group by name order by name',
      );
      expect(rows).toEqual(MIGRATIONS.map((name) => ({ name, copies: 1 })));
      const aiUsers = await query<{ n: number }>(database.url, 'select count(*)::int as n from users where id = $1', [AI_AGENT_USER_ID]);
      expect(aiUsers).toEqual([{ n: 1 }]);

      // and a user registered on the first node signs in on every other node
      const user = await registerUser(`${nodes[0].url}/api/v1`, 'Migrator');
      for (const node of nodes.slice(1)) {
        const login = await request('POST', `${node.url}/api/v1/auth/login`, {
          body: { email: user.email, password: 'correct horse battery' },
        });
        expect(login.status).toBe(200);
        expect(login.body.user.id).toBe(user.id);
        const me = await request('GET', `${node.url}/api/v1/me`, { token: login.body.accessToken });
        expect(me.status).toBe(200);
      }

      // Finally: SIGTERM drains every node and each exits 0
      const codes = await Promise.all(nodes.map((node) => node.stop('SIGTERM')));
      expect(codes).toEqual(nodes.map(() => 0));
    },
    60_000,
  );

  /** Spawns all at once; whatever started is recorded for afterAll even when another one fails. */
  async function spawnAll(envs: Array<Record<string, string>>): Promise<SwitchboardProcess[]> {
    const results = await Promise.allSettled(envs.map((env) => spawnSwitchboard(env)));
    for (const result of results) if (result.status === 'fulfilled') processes.push(result.value);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    return results.map((result) => (result as PromiseFulfilledResult<SwitchboardProcess>).value);
  }
});

async function query<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}
