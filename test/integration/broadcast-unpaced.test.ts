import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { GenerationEventLog } from '../../src/generation/event-log';
import { createRedis, redisReady } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { testRedisConnections } from '../support/redis';
import { createCanvas, registerUser, type TestUser } from '../support/http';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

/**
 * An unpaced broadcast (BROADCAST_CHUNK_DELAY_MS=0) asks for every chunk's seq at once (0095):
 * the chunks must still leave in chunk order, each with a larger seq than the one before.
 */
describe('unpaced broadcast', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let socket: CanvasClient;

  beforeAll(async () => {
    t = await startTestApp({ env: { BROADCAST_CHUNK_DELAY_MS: '0', BROADCAST_CHUNK_SIZE: '2' } });
    user = await registerUser(t.api, 'Unpaced');
    canvasId = await createCanvas(t.api, user);
    socket = await connectCanvas(t.url, user.accessToken);
    await join(socket, canvasId);
  });

  afterAll(async () => {
    socket.close();
    await t.stop();
  });

  test('chunks arrive in chunk order with strictly increasing seq and carry every block once, in rank order', async () => {
    const texts = Array.from({ length: 9 }, (_, i) => `paragraph ${i}`);
    t.llm.push({ toolCalls: texts.map((text) => ({ name: 'create_text', args: { text } })) });
    const chunks = record(socket, 'blocks_bulk_added_chunk');
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'nine' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    const complete = sse.messages.at(-1)!;
    expect(complete.event).toBe('complete');

    await waitUntil(() => chunks.length === 5);
    expect(chunks.map((c) => c.chunkIndex)).toEqual([0, 1, 2, 3, 4]);
    expect(chunks.every((c) => c.chunkCount === 5)).toBe(true);
    const seqs = chunks.map((c) => c.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(5);
    expect(chunks.flatMap((c) => c.blocks)).toEqual(complete.data.blocks);
    expect(chunks.flatMap((c) => c.blocks.map((b) => (b.content as { text: string }).text))).toEqual(texts);
    // The chunks' blocks are cut from the kept copy's JSON texts: byte for byte the stored blocks.
    const stored = await t.app.repos.blocks.listByGeneration(complete.data.generationId);
    expect(chunks.flatMap((c) => c.blocks)).toEqual(JSON.parse(JSON.stringify(stored)));
  });

  test("a kept copy gives back each block's JSON text, and is no JSON a worker of the version before could misread", async () => {
    const redis = createRedis(testRedisTarget('realtime'), 'command');
    try {
      await redisReady(redis);
      const events = new GenerationEventLog(redis, t.keyPrefix, 60);
      const stored = await t.app.repos.blocks.list(canvasId);
      expect(stored.length).toBeGreaterThanOrEqual(3);
      for (const blocks of [[], stored.slice(0, 1), stored.slice(0, 3)]) {
        const generationId = randomUUID();
        await events.keepBlocks(generationId, blocks);
        // The version before took the copy with JSON.parse: it must fail (and read the database), not send a wrong broadcast.
        const kept = await redis.get(`${t.keyPrefix}:gen:{${generationId}}:blocks`);
        expect(() => JSON.parse(kept!)).toThrow(SyntaxError);
        expect(await events.takeKeptBlocks(generationId)).toEqual(blocks.map((block) => JSON.stringify(block)));
        expect(await events.takeKeptBlocks(generationId)).toBeNull();
      }
    } finally {
      redis.disconnect();
    }
  });

  test('a copy kept by the version before (one JSON array) is broadcast the same', async () => {
    const texts = ['old one', 'old two', 'old three'];
    t.llm.push({ toolCalls: texts.map((text) => ({ name: 'create_text', args: { text } })) });
    const first = record(socket, 'blocks_bulk_added_chunk');
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'three' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    const { generationId, blocks } = sse.messages.at(-1)!.data as { generationId: string; blocks: unknown[] };
    await waitUntil(() => first.filter((c) => c.generationId === generationId).length === 2);

    // The kept copy sits with the generation's events (realtime), the job on the queues' Redis.
    const connections = testRedisConnections();
    const redis = connections.realtime.command;
    const queue = new Queue('broadcast', { connection: connections.queues.command, prefix: bullPrefix(t.keyPrefix) });
    try {
      await connections.ready();
      // The old format, and a job id of its own (the first broadcast's job is done).
      await redis.set(`${t.keyPrefix}:gen:{${generationId}}:blocks`, JSON.stringify(blocks), 'EX', 60);
      const again = record(socket, 'blocks_bulk_added_chunk');
      await queue.add('broadcast-blocks', { generationId, canvasId }, { jobId: `again-${randomUUID()}` });
      await waitUntil(() => again.filter((c) => c.generationId === generationId).length === 2);

      expect(again.map((c) => c.chunkIndex)).toEqual([0, 1]);
      expect(again.flatMap((c) => c.blocks)).toEqual(blocks);
      expect(await redis.exists(`${t.keyPrefix}:gen:{${generationId}}:blocks`)).toBe(0);
    } finally {
      await queue.close();
      await connections.quit();
    }
  });
});
