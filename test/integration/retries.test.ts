import type { Queue, QueueEvents } from 'bullmq';
import { createRedis, redisReady } from '../../src/lib/redis';
import { broadcastJobId } from '../../src/producers/broadcast';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { TestQueue, TestQueueEvents } from '../support/redis';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

const fiveTexts = { toolCalls: ['a', 'b', 'c', 'd', 'e'].map((text) => ({ name: 'create_text', args: { text } })) };

/**
 * Retries must never duplicate work: the generation id keys the write, and a broadcast is derived
 * from the stored blocks. "Retry" here means running the same payload again through the real queue.
 */
describe('retries and model failures', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let socket: CanvasClient;
  const queues: Array<Queue | QueueEvents> = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: { BROADCAST_CHUNK_SIZE: '2', LLM_FALLBACK_MODELS: 'backup-model', OPENAI_API_KEY: 'test', LLM_MODEL: 'primary-model' },
      responder: (req) =>
        req.model === 'primary-model' && JSON.stringify(req.messages).includes('primary is down')
          ? { error: { status: 503, message: 'primary unavailable' } }
          : { text: 'done' },
    });
    user = await registerUser(t.api, 'Retry');
    canvasId = await createCanvas(t.api, user);
    socket = await connectCanvas(t.url, user.accessToken);
    await join(socket, canvasId);
  });

  afterAll(async () => {
    socket.close();
    await Promise.all(queues.map((q) => q.close()));
    await t.stop();
  });

  const generate = (prompt: string) =>
    readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });

  /** Adds a job to one of the app's queues and waits until it has finished. */
  async function runJob(queueName: string, data: Record<string, unknown>) {
    const prefix = bullPrefix(t.keyPrefix);
    const queue = new TestQueue(queueName, prefix);
    const events = await TestQueueEvents.open(queueName, prefix);
    queues.push(queue, events);
    await events.waitUntilReady();
    const job = await queue.add('retry', data, { jobId: `retry-${Math.random().toString(36).slice(2)}` });
    return job.waitUntilFinished(events, 15_000);
  }

  /** Waits for the generation's own `broadcast` job to finish (jobs are kept a day after completing). */
  async function broadcastFinished(generationId: string) {
    const prefix = bullPrefix(t.keyPrefix);
    const queue = new TestQueue('broadcast', prefix);
    const events = await TestQueueEvents.open('broadcast', prefix);
    queues.push(queue, events);
    await events.waitUntilReady();
    const job = await eventually(
      () => queue.getJob(broadcastJobId(generationId)),
      (found) => found !== undefined,
    );
    await job!.waitUntilFinished(events, 15_000);
  }

  test('a generation job run again after its commit inserts nothing and re-announces the same blocks', async () => {
    t.llm.push(fiveTexts);
    const first = await generate('five paragraphs');
    const complete = first.messages.at(-1)!.data;
    expect(complete.blocks).toHaveLength(5);
    const requestsBefore = t.llm.chatRequests().length;

    const result = await runJob('generation', { generationId: complete.generationId, canvasId, userId: user.id, tier: 'free' });

    expect(result).toEqual({ blockCount: 5, truncated: false });
    expect(t.llm.chatRequests()).toHaveLength(requestsBefore);
    const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(blocks.body.blocks.filter((b: { generationSessionId: string }) => b.generationSessionId === complete.generationId)).toHaveLength(
      5,
    );
    const replay = await readSse(`${t.api}/canvases/${canvasId}/ai/generations/${complete.generationId}/events`, {
      token: user.accessToken,
      headers: { 'Last-Event-ID': first.messages.at(-1)!.id! },
    });
    expect(replay.messages.at(-1)!.data.blocks).toEqual(complete.blocks);
  });

  test('a broadcast run again resends the same blocks with the same chunk indexes', async () => {
    t.llm.push(fiveTexts);
    const chunks = record(socket, 'blocks_bulk_added_chunk');
    const { generationId } = (await generate('five more')).messages.at(-1)!.data;
    await waitUntil(() => chunks.filter((c) => c.generationId === generationId).length === 3);

    await runJob('broadcast', { generationId, canvasId });

    await waitUntil(() => chunks.filter((c) => c.generationId === generationId).length === 6);
    const mine = chunks.filter((c) => c.generationId === generationId);
    const shape = (list: typeof mine) => list.map((c) => ({ index: c.chunkIndex, count: c.chunkCount, ids: c.blocks.map((b) => b.id) }));
    expect(shape(mine.slice(0, 3))).toEqual(shape(mine.slice(3)));
    expect(mine.slice(0, 3).map((c) => c.chunkIndex)).toEqual([0, 1, 2]);
  });

  test('a payload that does not parse fails at once without retries', async () => {
    await expect(runJob('generation', { generationId: 'nope' })).rejects.toThrow(/Invalid generation payload/);
  });

  test('when the primary model keeps failing, the fallback model completes the generation', async () => {
    t.llm.push(
      { error: { status: 503, message: 'down' } },
      { error: { status: 503, message: 'down' } },
      { error: { status: 503, message: 'down' } },
    );
    t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'from the backup' } }] });
    const sse = await generate('primary is down, write one paragraph');
    const complete = sse.messages.at(-1)!;

    expect(complete.event).toBe('complete');
    expect(complete.data.blocks.map((b: { content: { text: string } }) => b.content.text)).toEqual(['from the backup']);
    const models = t.llm
      .chatRequests()
      .slice(-5)
      .map((r) => r.model);
    expect(models.slice(0, 3)).toEqual(['primary-model', 'primary-model', 'primary-model']);
    expect(models[3]).toBe('backup-model');
    const status = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${complete.data.generationId}`, {
      token: user.accessToken,
    });
    expect(status.body.generation.usage.model).toBe('backup-model');
  }, 20_000);

  test('when every model fails the stream ends with an error event and the generation is failed', async () => {
    const failing = { error: { status: 503, message: 'down' } };
    t.llm.push(...Array.from({ length: 6 }, () => failing));
    const sse = await generate('nothing works');
    const last = sse.messages.at(-1)!;

    expect(last.event).toBe('error');
    expect(last.data).toMatchObject({ type: 'error', code: 'llm_unavailable' });
    const status = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${last.data.generationId}`, {
      token: user.accessToken,
    });
    expect(status.body.generation).toMatchObject({ status: 'failed', error: { code: 'llm_unavailable' } });
    // The user's concurrency slot was given back: the next generation is accepted.
    t.llm.push({ toolCalls: [{ name: 'create_divider', args: {} }] });
    expect((await generate('after the failure')).messages.at(-1)!.event).toBe('complete');
  }, 30_000);

  test('the broadcast sends the copy of the blocks the runner kept, then drops it; undo drops a copy still waiting, so a late broadcast sends nothing', async () => {
    // A user of its own: generations are rate limited per user and minute.
    const owner = await registerUser(t.api, 'Kept');
    const ownCanvas = await createCanvas(t.api, owner);
    const ownSocket = await connectCanvas(t.url, owner.accessToken);
    const redis = createRedis(testRedisTarget('realtime'), 'command');
    try {
      await redisReady(redis);
      await join(ownSocket, ownCanvas);
      const chunks = record(ownSocket, 'blocks_bulk_added_chunk');
      t.llm.push(fiveTexts);
      const sse = await readSse(`${t.api}/canvases/${ownCanvas}/ai/generate-stream`, {
        method: 'POST',
        token: owner.accessToken,
        body: { prompt: 'five kept' },
        until: (m) => m.event === 'complete' || m.event === 'error',
      });
      const complete = sse.messages.at(-1)!.data;
      const kept = `${t.keyPrefix}:gen:{${complete.generationId}}:blocks`;
      await waitUntil(() => chunks.length === 3);
      expect(chunks.flatMap((c) => c.blocks)).toEqual(complete.blocks);
      await eventually(
        () => redis.exists(kept),
        (count) => count === 0,
      );

      // As if the broadcast had not run yet: the copy is there when the undo commits.
      await redis.set(kept, JSON.stringify(complete.blocks), 'EX', 60);
      const undo = await request('POST', `${t.api}/canvases/${ownCanvas}/ai/generations/${complete.generationId}/undo`, {
        token: owner.accessToken,
      });
      expect(undo.status).toBe(200);
      expect(await redis.exists(kept)).toBe(0);
      expect(await runJob('broadcast', { generationId: complete.generationId, canvasId: ownCanvas })).toEqual({ chunks: 0 });
      expect(chunks).toHaveLength(3);
    } finally {
      ownSocket.close();
      redis.disconnect();
    }
  });

  test('deleting a canvas drops the copies its completed generations still wait to send: a late broadcast sends nothing', async () => {
    const owner = await registerUser(t.api, 'Deleter');
    const ownCanvas = await createCanvas(t.api, owner);
    const redis = createRedis(testRedisTarget('realtime'), 'command');
    try {
      await redisReady(redis);
      t.llm.push(fiveTexts);
      const sse = await readSse(`${t.api}/canvases/${ownCanvas}/ai/generate-stream`, {
        method: 'POST',
        token: owner.accessToken,
        body: { prompt: 'five to delete' },
        until: (m) => m.event === 'complete' || m.event === 'error',
      });
      const complete = sse.messages.at(-1)!.data;
      const kept = `${t.keyPrefix}:gen:{${complete.generationId}}:blocks`;
      // The generation's own broadcast is over (it takes the copy first, then sends).
      await broadcastFinished(complete.generationId);
      expect(await redis.exists(kept)).toBe(0);
      // As if the broadcast had not run yet when the canvas goes.
      await redis.set(kept, JSON.stringify(complete.blocks), 'EX', 60);
      const deleted = await request('DELETE', `${t.api}/canvases/${ownCanvas}`, { token: owner.accessToken });
      expect(deleted.status).toBe(204);
      expect(await redis.exists(kept)).toBe(0);
      expect(await runJob('broadcast', { generationId: complete.generationId, canvasId: ownCanvas })).toEqual({ chunks: 0 });
      // Nothing was appended to the deleted canvas's room log either.
      expect(await redis.exists(`${t.keyPrefix}:canvas:{${ownCanvas}}:log`)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});
