import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Client } from 'pg';
import { runSwitchboardCli } from '../support/cli';
import { createTestDatabase, serverPostgresUrl, testRedisUrl, type TestDatabase } from '../support/database';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';

/**
 * The settings a real deployment must not get wrong silently, on real processes: production with
 * no model refuses to start unless LLM_DEMO=1 says the demo model is meant; a process running only
 * some roles refuses to start without DATABASE_URL; both before anything starts (no migration
 * applied). A worker consuming only `broadcast` starts no demo model server.
 */
describe('start refusals', () => {
  let database: TestDatabase;
  const processes: SwitchboardProcess[] = [];
  const production = () => ({
    NODE_ENV: 'production',
    JWT_SECRET: `refusals-${randomUUID()}-${randomUUID()}`,
    OAUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    DATABASE_URL: database.url,
    REDIS_URL: testRedisUrl(),
    REDIS_KEY_PREFIX: `refusals-${randomUUID().slice(0, 8)}`,
    PORT: '0',
  });

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await database?.drop();
  });

  /** The tables of the test database: none while no process got as far as migrating it. */
  async function tables(): Promise<number> {
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      return Number((await client.query("select count(*) from information_schema.tables where table_schema = 'public'")).rows[0].count);
    } finally {
      await client.end();
    }
  }

  test.each([
    ['every role', {}],
    ['`switchboard api`', { SWITCHBOARD_ROLES: 'api' }],
    ['a worker of queues that call models', { SWITCHBOARD_ROLES: 'worker', WORKER_QUEUES: 'generation,assistant' }],
  ])('production with no model: %s exits 1 naming the settings, before migrating anything', async (_name, extra) => {
    const result = await runSwitchboardCli(['start'], { ...production(), ...extra });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('OPENAI_BASE_URL / OPENAI_API_KEY (or LLM_PROVIDERS): required when NODE_ENV=production');
    expect(result.stderr).toContain('set LLM_DEMO=1 to serve the demo model on purpose');
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(result.stdout).not.toContain('Migrating');
    expect(result.stdout).not.toContain('Switchboard is running');
    expect(await tables()).toBe(0);
  });

  test('production with LLM_DEMO=1 starts, and its banner says the model is the demo', async () => {
    const node = await spawnSwitchboard({ ...production(), LLM_DEMO: '1' });
    processes.push(node);

    expect(node.output()).toMatch(/llm\s+DEMO model at http:\/\/127\.0\.0\.1:\d+/);
    expect(await node.stop('SIGTERM')).toBe(0);
  });

  test.each([
    ['SWITCHBOARD_ROLES=api', ['start'], { SWITCHBOARD_ROLES: 'api' }],
    ['`switchboard worker`', ['worker'], {}],
    ['`switchboard scheduler`', ['scheduler'], {}],
  ])('without DATABASE_URL, %s exits 1 naming it instead of opening a database of its own', async (_name, args, extra) => {
    const { DATABASE_URL: _unused, ...env } = production();
    const result = await runSwitchboardCli(args, { ...env, NODE_ENV: 'test', DATA_DIR: `/tmp/sb-refusals-${randomUUID()}`, ...extra });

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/DATABASE_URL: required when SWITCHBOARD_ROLES=\w+ runs only some roles here/);
    expect(result.stderr).toContain('Set DATABASE_URL=postgres://');
    expect(result.stdout).not.toContain('Migrating');
    expect(result.stdout).not.toContain('Switchboard is running');
  });

  test('a broadcast-only worker, even in production with no model, listens on no port; a generation worker starts the demo model', async () => {
    const fanout = await spawnSwitchboard({ ...production(), SWITCHBOARD_ROLES: 'worker', WORKER_QUEUES: 'broadcast' });
    processes.push(fanout);
    const generation = await spawnSwitchboard({
      ...production(),
      NODE_ENV: 'test',
      SWITCHBOARD_ROLES: 'worker',
      WORKER_QUEUES: 'generation',
    });
    processes.push(generation);

    expect(fanout.output()).toMatch(/llm\s+none \(broadcast call no model\)/);
    expect(listeningPorts(fanout.child.pid!)).toEqual([]);
    expect(generation.output()).toMatch(/llm\s+DEMO model at http:\/\/127\.0\.0\.1:(\d+)/);
    const demoPort = Number(/DEMO model at http:\/\/127\.0\.0\.1:(\d+)/.exec(generation.output())![1]);
    expect(listeningPorts(generation.child.pid!)).toContain(demoPort);
  });
});

/** The TCP ports process `pid` listens on: its socket inodes matched against the kernel's tables. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match) inodes.add(match[1]);
    } catch {
      // closed while listed
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      // local_address is hex ip:port, st 0A = LISTEN, inode is the tenth field.
      if (fields[3] === '0A' && inodes.has(fields[9])) ports.push(parseInt(fields[1].split(':')[1], 16));
    }
  }
  return ports;
}
