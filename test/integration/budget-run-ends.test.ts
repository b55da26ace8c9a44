import { Queue } from 'bullmq';
import type { RedisClient } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { testBullConnection } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * A generation whose worker never ran gives its budget reservation back the moment the run ends,
 * whoever ends it: the user's cancel of a queued generation, the reaper after its job was lost.
 * Before the run kernel owned the release, only the worker gave it back, so these waited for the
 * reservation's deadline. The whole app, with its `generation` queue paused (BullMQ's own pause):
 * the jobs stay waiting and no worker takes them.
 */
describe('a budgeted run that ends before its worker ran', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let connection: RedisClient;
  let queue: Queue;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        TIER_LIMITS: JSON.stringify({ free: { tokensPerHour: 1_000_000 } }),
        // The reaper sweeps often and ends an open run whose job is gone at once.
        REAPER_INTERVAL_MS: '200',
        REAPER_GRACE_MS: '0',
      },
    });
    user = await registerUser(t.api, 'HeldBudget');
    canvasId = await createCanvas(t.api, user);
    connection = testBullConnection();
    queue = new Queue('generation', { connection, prefix: bullPrefix(t.keyPrefix) });
    await queue.pause();
  }, 120_000);

  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
    await t.stop();
  });

  const hour = async () =>
    (await request('GET', `${t.api}/usage/budget`, { token: user.accessToken })).body.windows.find(
      (window: { window: string }) => window.window === 'hour',
    );

  /** Starts a generation and returns its id once it is queued (its first call reserved). */
  async function queued(): Promise<string> {
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'A short note about the launch' },
      until: (message) => message.event === 'status',
      timeoutMs: 15_000,
    });
    expect(sse.status).toBe(200);
    const generationId = sse.headers.get('x-generation-id')!;
    expect(await queue.getJobState(generationId)).toBe('waiting');
    return generationId;
  }

  const generation = async (generationId: string) =>
    (await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken })).body.generation;

  test("the user's cancel of a queued generation gives its reservation back at once", async () => {
    const generationId = await queued();
    expect((await hour()).reservedTokens).toBeGreaterThan(0);

    const cancelled = await request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/cancel`, {
      token: user.accessToken,
    });
    expect(cancelled.status).toBe(202);
    expect(await generation(generationId)).toEqual(expect.objectContaining({ status: 'cancelled' }));
    const window = await eventually(hour, (value) => value.reservedTokens === 0, 5_000);
    // Released whole: no call ran, nothing is counted as used.
    expect(window.usedTokens).toBe(0);
  }, 30_000);

  test('the reaper ending a queued generation whose job was lost gives its reservation back at once', async () => {
    const generationId = await queued();
    expect((await hour()).reservedTokens).toBeGreaterThan(0);

    // Redis lost the job (or it was removed by hand): the run is open with no job to carry it.
    await queue.remove(generationId);
    await eventually(
      () => generation(generationId),
      (row) => row.status === 'failed',
      10_000,
    );
    const window = await eventually(hour, (value) => value.reservedTokens === 0, 5_000);
    expect(window.usedTokens).toBe(0);
  }, 30_000);
});
