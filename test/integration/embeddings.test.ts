import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { embedText } from '../../src/demo-model/embeddings';
import type { EmbeddingsRequest } from '../../src/demo-model/openai-compatible-server';
import { AppError } from '../../src/lib/errors';
import { createRedis, redisReady } from '../../src/lib/redis';
import { requestEmbedding } from '../../src/producers/requests';
import { bullPrefix, QueueRegistry } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { testBullConnection } from '../support/redis';
import { eventually } from '../support/wait';

describe('POST /storage/vectors/embed through the embeddings queue', () => {
  let t: TestApp;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp();
    user = await registerUser(t.api, 'Embedder');
  });

  afterAll(async () => {
    await t.stop();
  });

  const embed = (body: unknown, as: { token?: string } = { token: user.accessToken }) =>
    request('POST', `${t.api}/storage/vectors/embed`, { token: as.token, body });

  /** The embeddings calls the model server received since `from` (an index into its request log). */
  const embeddingCalls = (from = 0): EmbeddingsRequest[] =>
    t.llm.requests.slice(from).flatMap((r) => (r.kind === 'embeddings' ? [r.body] : []));
  const inputsOf = (call: EmbeddingsRequest) => (Array.isArray(call.input) ? call.input : [call.input]);

  /** Distinct texts for concurrent callers; `expected` is what the demo model gives for each. */
  const texts = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => `${tag} note ${i}: reset the password for account ${i * 7}`);

  test('given a text, it answers the demo model vector with its model and size, the same vector every time', async () => {
    const text = 'How do I reset my password?';

    const first = await embed({ text });
    const second = await embed({ text });

    expect(first.status).toBe(200);
    expect(first.body).toEqual({ vector: expect.any(Array), model: 'demo', dimensions: first.body.vector.length });
    expect(first.body.dimensions).toBe(256);
    expect(second.body).toEqual(first.body);
    // The client transfers float32 (base64), so compare with the model's float64 vector to 6 places.
    embedText(text).forEach((value, i) => expect(first.body.vector[i]).toBeCloseTo(value, 6));
    expect(embeddingCalls().at(-1)).toMatchObject({ model: 'demo' });
  });

  test('given 20 concurrent requests, they share a few model calls and each caller gets its own vector', async () => {
    // Open the client's keep-alive connections first: connecting 20 sockets spreads a cold burst out.
    await Promise.all(texts(20, 'warm-up').map((text) => embed({ text })));
    const from = t.llm.requests.length;
    const batch = texts(20, 'concurrent');

    const responses = await Promise.all(batch.map((text) => embed({ text })));

    responses.forEach((response, i) => {
      expect(response.status).toBe(200);
      embedText(batch[i]).forEach((value, j) => expect(response.body.vector[j]).toBeCloseTo(value, 6));
    });
    const calls = embeddingCalls(from);
    expect(calls.flatMap(inputsOf).sort()).toEqual([...batch].sort());
    expect(calls.length).toBeLessThanOrEqual(5);
    // The burst's first job is picked up alone by the idle worker (see decision 0020); the rest ride together.
    expect(Math.max(...calls.map((call) => inputsOf(call).length))).toBeGreaterThanOrEqual(10);
  });

  test('given 100 concurrent requests, no model call carries more than 64 texts and most carry many', async () => {
    const from = t.llm.requests.length;
    const batch = texts(100, 'burst');
    // The 100 jobs gather in the paused queue, then the worker takes them all at once. Arriving
    // as they come instead, on a busy machine they trickle in over many of the batcher's windows.
    const connection = testBullConnection();
    const queue = new Queue('embeddings', { connection, prefix: bullPrefix(t.keyPrefix) });
    await queue.pause();

    const answered = Promise.all(batch.map((text) => embed({ text })));
    try {
      await eventually(
        () => queue.getWaitingCount(),
        (waiting) => waiting === 100,
      );
    } finally {
      await queue.resume();
      await queue.close();
      connection.disconnect();
    }
    const responses = await answered;

    expect(responses.map((r) => r.status)).toEqual(batch.map(() => 200));
    const sizes = embeddingCalls(from).map((call) => inputsOf(call).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(64);
    expect(sizes.length).toBeLessThanOrEqual(6);
  });

  test('empty, oversized, missing or non-string text is a 400 and never reaches the model', async () => {
    const from = t.llm.requests.length;
    for (const body of [{ text: '' }, { text: 'x'.repeat(8_001) }, {}, { text: 42 }, { text: 'ok', extra: true }]) {
      const res = await embed(body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await embed({ text: 'x'.repeat(8_000) })).status).toBe(200);
    expect(embeddingCalls(from)).toHaveLength(1);
  });

  test('without a valid access token it is a 401', async () => {
    expect((await embed({ text: 'hello' }, {})).status).toBe(401);
    expect((await embed({ text: 'hello' }, { token: 'not-a-token' })).status).toBe(401);
  });

  test('token usage is recorded per request under the embedding model, for the caller only', async () => {
    const fresh = await registerUser(t.api, 'Usage');
    const texts = ['quarterly revenue report', 'team offsite agenda'];
    await Promise.all(texts.map((text) => embed({ text }, { token: fresh.accessToken })));

    const summary = await request('GET', `${t.api}/metrics/summary`, { token: fresh.accessToken });

    expect(summary.status).toBe(200);
    expect(summary.body.usage.byModel).toEqual([
      expect.objectContaining({ provider: 'scripted', model: 'demo', calls: 2, outputTokens: 0, costUsd: 0 }),
    ]);
    expect(summary.body.usage.byModel[0].inputTokens).toBeGreaterThan(0);
  });
});

describe('waiting for an embedding', () => {
  test('given no worker on the queue, the caller gets 504 embedding_timeout and the job stays queued', async () => {
    const command = createRedis(testRedisTarget('queues'), 'command');
    const blocking = createRedis(testRedisTarget('queues'), 'blocking');
    const queues = new QueueRegistry(command, `t-${randomUUID().slice(0, 8)}`, blocking);
    try {
      await redisReady(command);
      const error = await requestEmbedding(queues, { text: 'nobody will embed this', userId: randomUUID(), tier: 'free' }, 300).catch(
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ status: 504, code: 'embedding_timeout' });
      expect(await queues.get('embeddings').getJobCounts('waiting')).toEqual({ waiting: 1 });
    } finally {
      await queues.get('embeddings').obliterate({ force: true });
      await queues.close();
      await Promise.allSettled([command.quit(), blocking.quit()]);
    }
  });
});
