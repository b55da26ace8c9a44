import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';
import { processAlive } from '../../src/lib/processes';
import { createRedis, redisReady } from '../../src/lib/redis';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

/** The pid redis-server wrote under DATA_DIR. */
const redisPid = (dataDir: string) => Number.parseInt(readFileSync(path.join(dataDir, 'redis', 'redis-server.pid'), 'utf8'), 10);
const parentOf = (pid: number) =>
  Number.parseInt(
    spawnSync('ps', ['-p', String(pid), '-o', 'ppid='])
      .stdout.toString()
      .trim(),
    10,
  );
const childrenOf = (pid: number) =>
  spawnSync('ps', ['--ppid', String(pid), '-o', 'pid='])
    .stdout.toString()
    .split('\n')
    .map((line) => Number.parseInt(line.trim(), 10))
    .filter(Number.isInteger);

/** The address of every client of the redis-server listening on `socket` (CLIENT LIST's `addr`). */
async function clientAddresses(socket: string): Promise<string[]> {
  const client = createRedis(socket, 'command');
  try {
    await redisReady(client);
    const list = (await client.call('CLIENT', 'LIST')) as string;
    return list
      .split('\n')
      .filter(Boolean)
      .map((line) => /(?:^| )addr=(\S+)/.exec(line)![1]);
  } finally {
    client.disconnect();
  }
}

/**
 * `npm start` in embedded mode (no REDIS_URL, no DATABASE_URL): the redis-server child keeps its
 * data under DATA_DIR (AOF), is restarted when it dies, never outlives a killed app, and a
 * restart on the same DATA_DIR picks up queued work and event logs (crash safety).
 */
describe('the embedded redis-server under crashes', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-embedded-'));
  const env = { DATA_DIR: dataDir, PORT: '0', WORKER_LOCK_MS: '1000', DEMO_LLM_DELAY_MS: '150' };
  const started: SwitchboardProcess[] = [];
  const start = async () => {
    const app = await spawnSwitchboard(env, 60_000);
    started.push(app);
    return app;
  };
  let user: TestUser;
  let canvasId: string;

  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    const pid = (() => {
      try {
        return redisPid(dataDir);
      } catch {
        return 0;
      }
    })();
    // The server may exit between the check and the kill: a process already gone is what we want.
    if (pid && processAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('redis-server killed under the running app comes back on its own: readiness recovers and generations work', async () => {
    const app = await start();
    const api = `${app.url}/api/v1`;
    // The app talks to its redis-server through a Unix socket only its user may open, not loopback TCP.
    const socket = path.join(dataDir, 'redis', 'redis.sock');
    expect(statSync(socket).mode & 0o777).toBe(0o700);
    const addresses = await clientAddresses(socket);
    expect(addresses.length).toBeGreaterThan(2);
    expect(addresses.filter((address) => !address.startsWith(`${socket}:`))).toEqual([]);
    user = await registerUser(api, 'Embedded');
    canvasId = await createCanvas(api, user);
    const before = redisPid(dataDir);

    process.kill(before, 'SIGKILL');
    await eventually(
      async () => redisPid(dataDir),
      (pid) => pid !== before && processAlive(pid),
      20_000,
    );
    await eventually(
      async () => (await request('GET', `${app.url}/readyz`)).status,
      (status) => status === 200,
      20_000,
    );

    const sse = await readSse(`${api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      timeoutMs: 30_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    expect(sse.messages.at(-1)!.event).toBe('complete');
    expect(app.child.exitCode).toBeNull();
    // Back on the socket the new redis-server made in place of the old one's.
    expect((await clientAddresses(socket)).filter((address) => !address.startsWith(`${socket}:`))).toEqual([]);
  }, 90_000);

  test('kill -9 of the app mid-generation: its redis-server goes away, the restart resumes the queued job and replays the event log', async () => {
    const app = started.at(-1)!;
    const api = `${app.url}/api/v1`;
    const oldRedis = redisPid(dataDir);
    let generationId = '';
    let lastId = '0';
    await readSse(`${api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      timeoutMs: 30_000,
      until: (m) => m.event === 'tool_output',
      onMessage: (m) => {
        generationId = m.data.generationId;
        lastId = m.id ?? lastId;
      },
    });
    await app.stop('SIGKILL');
    // No orphan keeps listening once its app is gone.
    await eventually(
      async () => processAlive(oldRedis),
      (up) => !up,
      15_000,
    );

    const restarted = await start();
    const api2 = `${restarted.url}/api/v1`;
    const resumed = await readSse(`${api2}/canvases/${canvasId}/ai/generations/${generationId}/events`, {
      token: user.accessToken,
      headers: { 'Last-Event-ID': lastId },
      timeoutMs: 45_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    expect(resumed.messages.at(-1)!.event).toBe('complete');
    expect(resumed.messages.at(-1)!.data.blocks).toHaveLength(5);
    // The log from before the crash is still there: a replay from the start begins at seq 1.
    const replay = await readSse(`${api2}/canvases/${canvasId}/ai/generations/${generationId}/events`, {
      token: user.accessToken,
      timeoutMs: 15_000,
    });
    expect(replay.messages[0]).toMatchObject({ id: '1', event: 'status', data: { stage: 'queued' } });
    expect(replay.messages.at(-1)!.event).toBe('complete');
    const generation = await request('GET', `${api2}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken });
    expect(generation.body.generation.status).toBe('completed');
    expect(
      (await request('POST', `${api2}/canvases/${canvasId}/ai/generations/${generationId}/undo`, { token: user.accessToken })).status,
    ).toBe(200);
  }, 120_000);

  test('a redis-server orphaned with its watchdog (kill -9 of both) is stopped by the next start, which reuses its data', async () => {
    const app = started.at(-1)!;
    const orphan = redisPid(dataDir);
    // The watchdog is the shell and its pipe reader (a subshell of its own): both go, or the reader
    // would see the app's pipe close below and stop redis-server itself, leaving no orphan.
    const watchdog = parentOf(orphan);
    for (const pid of childrenOf(watchdog)) if (pid !== orphan) process.kill(pid, 'SIGKILL');
    process.kill(watchdog, 'SIGKILL');
    await app.stop('SIGKILL');
    expect(processAlive(orphan)).toBe(true);

    const restarted = await start();
    expect(processAlive(orphan)).toBe(false);
    expect(redisPid(dataDir)).not.toBe(orphan);
    const blocks = await request('GET', `${restarted.url}/api/v1/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(blocks.status).toBe(200);
    expect((await request('GET', `${restarted.url}/readyz`)).status).toBe(200);
  }, 90_000);
});
