import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { QUEUE_NAMES } from '../../config';
import { openDatabase } from '../../src/models/database';
import { rowsOf } from '../../src/models/migrate';
import { OPERATOR_ACTOR_ID } from '../../src/models/admins-repository';
import { UsersRepository } from '../../src/models/users-repository';
import { bullPrefix } from '../../src/producers/registry';
import { runSwitchboardCli, startCommand } from '../support/cli';
import { createTestDatabase, serverPostgresUrl, testRedisEnv } from '../support/database';
import { request } from '../support/http';
import { spawnSwitchboard } from '../support/processes';
import { testBullConnection } from '../support/redis';
import { eventually } from '../support/wait';
import { sql } from 'drizzle-orm';

/** The `switchboard` command (package.json `bin`), each subcommand run as a real process. */
describe('the switchboard command', () => {
  test('--help prints every command and exits 0', async () => {
    const result = await runSwitchboardCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of [
      'start',
      'api',
      'worker [--queues=a,b]',
      'scheduler',
      'migrate',
      'admin grant <email|id>',
      'admin revoke <email|id>',
      'users set-tier <id> <tier>',
      'users set-limits <id> <json|null>',
      'backup [--dir=DIR | --file=PATH]',
      'restore <file> --yes',
    ]) {
      expect(result.stdout).toContain(command);
    }
  });

  test.each([
    ['an unknown flag', ['worker', '--bogus'], "Unknown option '--bogus'"],
    ['a flag the command does not take', ['scheduler', '--queues=generation'], "'scheduler' takes no --queues"],
    ['an unknown command', ['deploy'], "unknown command 'deploy'"],
    ['no command', [], 'a command is required'],
    ['admin without its action', ['admin'], "'admin' needs 'grant' or 'revoke'"],
    ['admin grant without a user', ['admin', 'grant'], 'needs exactly one email or user id'],
    ['a stray argument', ['migrate', 'now'], "'migrate' takes no arguments"],
    ['users without its action', ['users'], "'users' needs 'set-tier' or 'set-limits'"],
    ['users set-tier without a tier', ['users', 'set-tier', randomUUID()], "'users set-tier' needs a user id and a tier"],
    ['users set-tier with an unknown tier', ['users', 'set-tier', randomUUID(), 'gold'], "unknown tier 'gold'"],
    ['an empty --queues', ['worker', '--queues='], '--queues needs a value'],
    ['backup with both --dir and --file', ['backup', '--dir=/tmp/a', '--file=/tmp/b.pgdump'], "'backup' takes --dir or --file, not both"],
    ['restore without a file', ['restore', '--yes'], "'restore' needs exactly one backup file"],
    ['a flag restore does not take', ['restore', '/tmp/none.pgdump', '--yes', '--dir=/tmp'], "'restore' takes no --dir"],
  ])('%s is a usage error: exit 2 with the usage, nothing started', async (_name, args, message) => {
    const result = await runSwitchboardCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Usage: switchboard <command>');
    expect(result.stdout).not.toContain('Switchboard is running');
  });

  test('restore without --yes prints its one reason, not the usage: exit 2, nothing touched', async () => {
    const result = await runSwitchboardCli(['restore', '/tmp/none.pgdump']);

    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual(["switchboard: 'restore' replaces every row of the database: add --yes to go ahead"]);
  });

  test.each([
    ['a process with only some roles', { SWITCHBOARD_ROLES: 'worker' }, 'SWITCHBOARD_ROLES=worker runs only some roles here'],
    ['`switchboard api`', { ARGS: 'api' }, 'SWITCHBOARD_ROLES=api runs only some roles here'],
    [
      'production',
      { NODE_ENV: 'production', JWT_SECRET: 'cli-test-secret-cli-test-secret-0123456789', OAUTH_ENCRYPTION_KEY: 'a'.repeat(43) + '=' },
      'NODE_ENV=production',
    ],
  ])('without REDIS_URL, %s refuses to start its own redis-server: exit 1 naming what to set', async (_name, settings, why) => {
    const { ARGS, ...env } = settings as Record<string, string>;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-shared-redis-'));
    try {
      const result = await runSwitchboardCli(ARGS ? [ARGS] : ['start'], { DATA_DIR: dataDir, PORT: '0', ...env });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`REDIS_URL: required when ${why}`);
      expect(result.stdout).not.toContain('Starting Redis');
      expect(result.stdout).not.toContain('Switchboard is running');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('npm start refuses unknown flags too (it runs `switchboard start`)', async () => {
    const run = await runSwitchboardCli(['--rolez=api'], {}, 60_000, 'src/main.ts');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("Unknown option '--rolez'");
  });

  test('npm start says what it is doing before its banner: a fresh DATA_DIR gets its database created, Redis started, migrations run', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-progress-'));
    const server = await spawnSwitchboard({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent' }, 90_000);
    try {
      const lines = server.output().split('\n');
      const at = (start: string) => lines.findIndex((line) => line.startsWith(start));
      const steps = [
        `Starting Redis (redis-server under ${dataDir})`,
        `Creating the embedded database in ${path.join(dataDir, 'pglite')}`,
        'Migrating the database: pglite',
        'Switchboard is running at http://',
      ].map(at);
      expect(steps.every((index) => index >= 0)).toBe(true);
      // Redis and the database start together; migrating comes after the database exists, the banner last.
      expect(steps[2]).toBeGreaterThan(steps[1]);
      expect(steps[3]).toBeGreaterThan(Math.max(...steps.slice(0, 3)));
      expect(await request('GET', `${server.url}/readyz`)).toMatchObject({ status: 200 });
    } finally {
      expect(await server.stop()).toBe(0);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  test('migrate on a fresh DATA_DIR creates the embedded database with every migration, and again is a no-op', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-migrate-'));
    try {
      const first = await runSwitchboardCli(['migrate'], { DATA_DIR: dataDir });
      expect(first).toMatchObject({ code: 0 });
      expect(first.stdout).toContain(`Migrations applied: pglite (${path.join(dataDir, 'pglite')})`);
      const second = await runSwitchboardCli(['migrate'], { DATA_DIR: dataDir });
      expect(second.code).toBe(0);
      // Read back after the CLI exited (PGlite has one writer at a time).
      const database = await openDatabase({ dataDir });
      try {
        const applied = rowsOf<{ name: string }>(await database.db.execute(sql`select name from schema_migrations order by name`)).map(
          (row) => row.name,
        );
        const files = readdirSync(path.resolve(__dirname, '../../src/models/migrations'))
          .filter((file) => file.endsWith('.sql'))
          .sort();
        expect(applied).toEqual(files);
      } finally {
        await database.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  test('restore refuses a backup of the other kind, a missing file and an in-memory database: exit 1 saying why, nothing changed', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-restore-refused-'));
    try {
      const missing = await runSwitchboardCli(['restore', path.join(dataDir, 'switchboard-2026-01-01T000000Z.tar.gz'), '--yes'], {
        DATA_DIR: dataDir,
      });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('No backup at');
      const otherKind = await runSwitchboardCli(['restore', path.join(__dirname, 'cli.test.ts'), '--yes'], { DATA_DIR: dataDir });
      expect(otherKind.code).toBe(1);
      expect(otherKind.stderr).toContain('is not a backup: neither an embedded (PGlite) backup nor a pg_dump archive');
      const pgDump = path.join(dataDir, 'nightly');
      writeFileSync(pgDump, 'PGDMP\u0001\u000e\u0000');
      const dumpIntoPglite = await runSwitchboardCli(['restore', pgDump, '--yes'], { DATA_DIR: dataDir });
      expect(dumpIntoPglite.code).toBe(1);
      expect(dumpIntoPglite.stderr).toContain('is a pg_dump archive, not an embedded (PGlite) backup');
      rmSync(pgDump);
      const memory = await runSwitchboardCli(['backup', `--dir=${dataDir}`], { DATABASE_URL: 'memory://' });
      expect(memory.code).toBe(1);
      expect(memory.stderr).toContain('memory:// holds nothing to back up');
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a backup written with --file and any name (no .tar.gz) restores: the kind is read from the bytes', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-restore-named-'));
    try {
      expect(await runSwitchboardCli(['migrate'], { DATA_DIR: dataDir })).toMatchObject({ code: 0 });
      const file = path.join(dataDir, 'before-upgrade');
      const backup = await runSwitchboardCli(['backup', `--file=${file}`], { DATA_DIR: dataDir });
      expect(backup.code).toBe(0);

      const restore = await runSwitchboardCli(['restore', file, '--yes'], { DATA_DIR: dataDir });

      expect(restore).toMatchObject({ code: 0, stderr: '' });
      expect(restore.stdout).toContain('Restored');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  test('admin grant refuses an embedded database a running server holds (PGlite has one writer), and works once it stopped', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sb-owner-'));
    const env = {
      DATA_DIR: dataDir,
      ...testRedisEnv(),
      REDIS_KEY_PREFIX: `own-${randomUUID().slice(0, 8)}`,
      JWT_SECRET: 'owner-test-secret-owner-test-secret-0123',
    };
    // A fresh PGlite (initdb and every migration) takes a while on a loaded machine. Every role: a
    // process running only some needs a DATABASE_URL, not a PGlite of its own.
    const server = await spawnSwitchboard({ ...env, PORT: '0' }, 90_000);
    try {
      const email = `owner-${randomUUID().slice(0, 8)}@example.test`;
      expect(
        (await request('POST', `${server.url}/api/v1/auth/register`, { body: { email, password: 'correct horse battery', name: 'Owner' } }))
          .status,
      ).toBe(201);
      const refused = await runSwitchboardCli(['admin', 'grant', email], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`is in use by process ${server.child.pid}`);
      // The server was not disturbed.
      expect((await request('GET', `${server.url}/readyz`)).status).toBe(200);
      expect(await server.stop()).toBe(0);
      const granted = await runSwitchboardCli(['admin', 'grant', email], env);
      expect(granted.code).toBe(0);
      expect(granted.stdout).toContain(`Granted admin rights to ${email}`);
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 240_000);

  test("users set-tier and set-limits change a user's plan in the database, audited; bad limits exit 2 and an unknown user 1", async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const env = { DATABASE_URL: database.url, JWT_SECRET: 'cli-test-secret-cli-test-secret-0123456789' };
    const opened = await openDatabase({ url: database.url, dataDir: tmpdir(), poolSize: 1 });
    try {
      const users = new UsersRepository(opened.db);
      const user = (await users.create({ email: `plan-${randomUUID().slice(0, 8)}@example.test`, name: 'Plan', passwordHash: 'x' }))!;

      const tier = await runSwitchboardCli(['users', 'set-tier', user.id, 'pro'], env);
      expect(tier.code).toBe(0);
      expect(tier.stdout).toContain(`${user.email} (id ${user.id}) is on tier pro`);
      const limits = await runSwitchboardCli(['users', 'set-limits', user.id, '{"requestsPerMonth":500,"features":{"flows":false}}'], env);
      expect(limits.code).toBe(0);
      expect(await users.findById(user.id)).toEqual(
        expect.objectContaining({ tier: 'pro', limitOverrides: { requestsPerMonth: 500, features: { flows: false } } }),
      );

      const bad = await runSwitchboardCli(['users', 'set-limits', user.id, '{"requestsPerMonth":-3}'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('bad limits: requestsPerMonth');
      const notJson = await runSwitchboardCli(['users', 'set-limits', user.id, '{nope'], env);
      expect(notJson.code).toBe(2);
      const missing = await runSwitchboardCli(['users', 'set-tier', randomUUID(), 'pro'], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('names no registered account');

      expect((await runSwitchboardCli(['users', 'set-limits', user.id, 'null'], env)).code).toBe(0);
      expect((await users.findById(user.id))?.limitOverrides).toBeNull();
      const audit = rowsOf<{ action: string; actor_id: string }>(
        await opened.db.execute(sql`select action, actor_id from system_audit where target_id = ${user.id} order by created_at`),
      );
      expect(audit.map((row) => row.action)).toEqual(['user.tier_changed', 'user.limits_changed', 'user.limits_changed']);
      expect(new Set(audit.map((row) => row.actor_id))).toEqual(new Set([OPERATOR_ACTOR_ID]));
    } finally {
      await opened.close();
      await database.drop();
    }
  }, 120_000);

  test('`npx switchboard worker --queues=generation` runs a worker for that queue only, and drains on SIGTERM', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const keyPrefix = `cli-${randomUUID().slice(0, 8)}`;
    const redis = testBullConnection();
    const queues = QUEUE_NAMES.map((name) => new Queue(name, { connection: redis, prefix: bullPrefix(keyPrefix) }));
    // The line of docs/operations.md, run as written (npx finds the project's own `bin`).
    const worker = await startCommand('npx', ['switchboard', 'worker', '--queues=generation'], {
      DATABASE_URL: database.url,
      ...testRedisEnv(),
      REDIS_KEY_PREFIX: keyPrefix,
      JWT_SECRET: 'cli-test-secret-cli-test-secret-0123456789',
    });
    const counts = async () =>
      Object.fromEntries(await Promise.all(queues.map(async (queue) => [queue.name, (await queue.getWorkers()).length] as const)));
    try {
      expect(worker.output()).toMatch(/roles {5}worker\n/);
      expect(worker.output()).toMatch(/workers {3}generation\n/);
      expect(worker.output()).not.toContain('running at http');
      const seen = await eventually(counts, (byQueue) => byQueue.generation > 0);
      expect(
        Object.entries(seen)
          .filter(([, count]) => count > 0)
          .map(([name]) => name),
      ).toEqual(['generation']);
      // SIGTERM (to npx, npm and Switchboard alike): the worker closes its queue connections and the process exits.
      await worker.stop();
      expect(await counts()).toEqual(Object.fromEntries(QUEUE_NAMES.map((name) => [name, 0])));
      expect(worker.output()).not.toMatch(/failed|Error/);
    } finally {
      await worker.stop();
      await Promise.all(queues.map((queue) => queue.close()));
      await redis.quit();
      await database.drop();
    }
  }, 120_000);
});
