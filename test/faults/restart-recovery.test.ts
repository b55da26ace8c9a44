import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCanvas, registerUser, request } from '../support/http';
import { loggedAt, spawnSwitchboard, untilPrinted, type SwitchboardProcess } from '../support/processes';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';
import { processAlive } from '../../src/lib/processes';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';
/** How soon after its restart a process has taken back what its killed predecessor was running. */
const RESTART_RECOVERY_MS = 15_000;

/**
 * `npm start` on its defaults (every role in one process, the embedded database and redis-server
 * under DATA_DIR), killed with -9 in the middle of a generation and started again on the same
 * DATA_DIR: the data directory is the process's identity, so the restart knows its predecessor is
 * dead and resumes the generation at once, instead of waiting for the dead process's worker lease
 * (and its job lock) to lapse the way a process that never knew it would.
 */
describe('a one-process deployment restarted after kill -9', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-restart-'));
  // A job lock of a minute and a worker lease of 30 s: a job back within RESTART_RECOVERY_MS of the
  // restart was taken back by the restart as its own, not found lapsed (by BullMQ's stall check or
  // the leases' sweep) the way a stranger's is.
  const env = {
    DATA_DIR: dataDir,
    PORT: '0',
    WORKER_LOCK_MS: '60000',
    WORKER_LEASE_MS: '30000',
    DEMO_LLM_DELAY_MS: '150',
    LOG_LEVEL: 'info',
  };
  const started: SwitchboardProcess[] = [];

  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    let redisPid = 0;
    try {
      redisPid = Number.parseInt(readFileSync(path.join(dataDir, 'redis', 'redis-server.pid'), 'utf8'), 10);
    } catch {
      // no redis-server left
    }
    if (redisPid && processAlive(redisPid)) process.kill(redisPid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the restart resumes the generation its predecessor was running within 15 s of coming up', async () => {
    const first = await spawnSwitchboard(env);
    started.push(first);
    const api = `${first.url}/api/v1`;
    const user = await registerUser(api, 'Restart');
    const canvasId = await createCanvas(api, user);

    let generationId = '';
    await readSse(`${api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      timeoutMs: 30_000,
      until: (m) => m.event === 'tool_output',
      onMessage: (m) => (generationId ||= m.data.generationId),
    });
    await first.stop('SIGKILL');

    const restarted = await spawnSwitchboard(env);
    started.push(restarted);
    const upAt = Date.now();
    await untilPrinted(restarted, `"generationId":"${generationId}"`, 30_000);
    await untilPrinted(restarted, 'generation started', 30_000);
    const resumedAt = loggedAt(restarted, ['generation started', generationId]);
    expect(resumedAt).toBeDefined();
    expect(resumedAt! - upAt).toBeLessThan(RESTART_RECOVERY_MS);

    const api2 = `${restarted.url}/api/v1`;
    const generation = await eventually(
      async () => (await request('GET', `${api2}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken })).body,
      (body) => body.generation?.status === 'completed',
      30_000,
    );
    expect(generation.generation).toMatchObject({ status: 'completed', blockCount: 5 });
    const blocks = await request('GET', `${api2}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(blocks.body.blocks).toHaveLength(5);
  }, 150_000);

  test('a second process on the same DATA_DIR is refused before it takes anything, and the running one keeps its work', async () => {
    const running = started.at(-1)!;
    const api = `${running.url}/api/v1`;
    const user = await registerUser(api, 'Twin');
    const canvasId = await createCanvas(api, user);
    let generationId = '';
    const stream = readSse(`${api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      timeoutMs: 60_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
      onMessage: (m) => (generationId ||= m.data.generationId),
    });
    await untilPrinted(running, 'generation started', 30_000);

    const printedBefore = running.output().length;
    // The same identity, while its holder lives: the twin exits naming the holder.
    await expect(spawnSwitchboard(env)).rejects.toThrow(/exited with 1 before starting[\s\S]*is in use by process/);

    const sse = await stream;
    expect(sse.messages.at(-1)!.event).toBe('complete');
    const generation = await request('GET', `${api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken });
    // Run once, by the process that held it: nobody put it back.
    expect(generation.body.generation).toMatchObject({ status: 'completed', attempts: 1, blockCount: 5 });
    expect(running.output().slice(printedBefore)).not.toMatch(/go back to waiting|put back to waiting|redis-server died/);
  }, 120_000);
});
