import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { QUEUE_NAMES } from '../../config';
import { runSwitchboardCli } from '../support/cli';
import { testRedisEnv } from '../support/database';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';

const ROOT = path.resolve(__dirname, '../..');

/**
 * What a new user gets wrong at start, each answered by one line that names the setting and the
 * fix, before anything starts (no migration, no "Unhandled error event", no stack): Redis down, the
 * port taken, a queue name misspelt, a Node.js too old. And a model key the provider refuses is
 * said in the start banner.
 */
describe('start-up errors say what to do', () => {
  const servers: Array<net.Server | http.Server> = [];
  const processes: SwitchboardProcess[] = [];
  const env = () => ({
    ...testRedisEnv(),
    REDIS_KEY_PREFIX: `start-${randomUUID().slice(0, 8)}`,
    DATABASE_URL: 'memory://',
    DATA_DIR: path.join(ROOT, '.data/test'),
    JWT_SECRET: 'start-errors-secret-start-errors-secret-0123',
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    for (const server of servers) server.close();
  });

  /** A server of the test's own on a free port (nobody else can take it while the test runs). */
  async function listening<T extends net.Server | http.Server>(server: T): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  /** One line on stderr, naming the setting; nothing started. */
  function expectOneLine(result: { code: number | null; stdout: string; stderr: string }, line: RegExp) {
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(line);
    expect(result.stderr).not.toContain('Unhandled error event');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).not.toContain('Migrating');
    expect(result.stdout).not.toContain('Switchboard is running');
  }

  test('Redis down: one line naming REDIS_URL and where, no ioredis error spam', async () => {
    // A "Redis" that drops every connection: down, on a port nobody else holds.
    const port = await listening(net.createServer((socket) => socket.destroy()));

    const result = await runSwitchboardCli(['api'], { ...env(), REDIS_URL: `redis://127.0.0.1:${port}`, PORT: '0' });

    expectOneLine(
      result,
      new RegExp(`^\\s*REDIS_URL: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(\\w+\\); start Redis there`, 'm'),
    );
  });

  test('the port in use: one line naming PORT and the fix, before Redis or migrations', async () => {
    const port = await listening(net.createServer());

    const result = await runSwitchboardCli(['api'], { ...env(), PORT: String(port) });

    expectOneLine(
      result,
      new RegExp(`PORT: 127\\.0\\.0\\.1:${port} is already in use by another program; stop it, or set PORT to a free port`),
    );
  });

  test('an unknown queue: one line listing the valid names', async () => {
    const result = await runSwitchboardCli(['worker', '--queues=generaton'], env());

    expectOneLine(result, new RegExp(`WORKER_QUEUES: unknown queue\\(s\\) generaton; the queues are ${QUEUE_NAMES.join(', ')}`));
  });

  test.each([
    ['bin/switchboard.mjs', ['bin/switchboard.mjs', 'start']],
    ['npm start (scripts/start.cjs)', ['scripts/start.cjs']],
  ])('Node.js older than 22.12: %s says so in one line and exits 1', async (_name, args) => {
    // This Node, reporting itself as 20.11.1 from before any of Switchboard's code runs (a preload).
    const scratch = mkdtempSync(path.join(tmpdir(), 'sb-node20-'));
    const preload = path.join(scratch, 'pretend.cjs');
    writeFileSync(preload, "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.11.1' } });\n");
    const child = spawn(process.execPath, ['--require', preload, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env() },
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    rmSync(scratch, { recursive: true, force: true });

    expect({ code, stderr: stderr.trim(), stdout }).toEqual({
      code: 1,
      stderr:
        'switchboard: Node.js 22.12 or newer is required (this is 20.11.1); install Node 22 or 24 LTS (nvm install 24) and start again',
      stdout: '',
    });
  });

  test('a configured provider whose key is refused is named in the start banner; one that accepts it too', async () => {
    const refusing = await listening(http.createServer((_req, res) => void res.writeHead(401).end('{"error":{"message":"bad key"}}')));
    const accepting = await listening(http.createServer((_req, res) => void res.writeHead(200).end('{"data":[]}')));
    const providers = [
      { name: 'locked', baseUrl: `http://127.0.0.1:${refusing}/v1`, apiKeyEnv: 'LOCKED_KEY', models: ['m-1'] },
      { name: 'open', baseUrl: `http://127.0.0.1:${accepting}/v1`, apiKeyEnv: 'OPEN_KEY', models: ['m-2'] },
    ];

    const node = await spawnSwitchboard({
      ...env(),
      SWITCHBOARD_ROLES: 'api',
      PORT: '0',
      LLM_PROVIDERS: JSON.stringify(providers),
      LOCKED_KEY: 'sk-wrong',
      OPEN_KEY: 'sk-right',
    });
    processes.push(node);

    expect(node.output()).toMatch(
      /provider {2}locked: KEY REFUSED \(401\/403 from http:\/\/127\.0\.0\.1:\d+\/v1\): fix OPENAI_API_KEY \(or the variable LLM_PROVIDERS names for locked\)/,
    );
    expect(node.output()).toContain('provider  open: key accepted');
    expect(node.output()).not.toContain('sk-wrong');
    // Readiness says what the banner said: its probe is the one /readyz reports.
    const ready = await fetch(`${node.url}/readyz`).then((res) => res.json());
    expect(ready.providers).toEqual({ locked: 'unauthorized', open: 'reachable' });
  });
});
