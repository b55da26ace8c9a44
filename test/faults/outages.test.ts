import { Queue } from 'bullmq';
import { Client } from 'pg';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisUrl, type TestDatabase } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

/** Polls an async check until it holds (readiness flips within a reconnect or two; generous for a loaded machine). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const countGenerations = async (url: string) => {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query('select count(*)::int as n from generations')).rows[0].n);
  } finally {
    await client.end();
  }
};

/**
 * Redis and PostgreSQL reached through TCP proxies that the tests cut and restore: the servers
 * "go away" for this app only, exactly as a network partition or a restart looks to a client.
 */
describe('outages of Redis and PostgreSQL', () => {
  let database: TestDatabase;
  let redisProxy: TcpProxy;
  let pgProxy: TcpProxy;
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let release: () => void = () => undefined;
  let held = false;

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    // The outage is a proxy between the app and one redis-server that the test cuts: the app runs on
    // the run's single server through it, on every Redis topology of the run (a cluster's nodes
    // would each need a proxy, and cutting one of them is another fault).
    const redis = new URL(testRedisUrl());
    redisProxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port) });
    const pg = new URL(database.url);
    pgProxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
    pg.port = String(pgProxy.port);
    t = await startTestApp({
      redis: { REDIS_URL: `redis://127.0.0.1:${redisProxy.port}` },
      env: {
        DATABASE_URL: pg.toString(),
        TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 50 } }),
      },
      responder: async (req) => {
        if (req.messages.some((m) => m.role === 'tool')) return { text: 'done' };
        // The first turn of the first "hold" request waits until the test releases it (retries pass).
        if (!held && JSON.stringify(req.messages).includes('hold')) {
          held = true;
          await new Promise<void>((resolve) => (release = resolve));
        }
        return { toolCalls: [{ name: 'create_text', args: { text: 'survived' } }] };
      },
    });
    user = await registerUser(t.api, 'Outage');
    canvasId = await createCanvas(t.api, user);
  });

  afterAll(async () => {
    release();
    await t.stop();
    await redisProxy.close();
    await pgProxy.close();
    await database.drop();
  });

  const generate = (prompt: string) =>
    readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt },
      timeoutMs: 30_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
  const readiness = () => request('GET', `${t.url}/readyz`);

  test('with Redis gone: readiness 503, requests fail fast with 503, nothing half-written; after it returns, generations work again', async () => {
    const before = await countGenerations(database.url);
    await redisProxy.cut();

    await eventually(async () => (await readiness()).status === 503);
    expect((await readiness()).body.checks).toEqual({ redis: 'unavailable', database: 'ok' });
    const refused = await request('POST', `${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      token: user.accessToken,
      body: { prompt: 'during the outage' },
    });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('service_unavailable');
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(await countGenerations(database.url)).toBe(before);
    // Reads that need only the database keep working.
    expect((await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken })).status).toBe(200);
    // An autoscaler reading the queues' depths is told to retry, not handed an internal error.
    const depths = await request('GET', `${t.url}/metrics/queues`);
    expect({ status: depths.status, code: depths.body.error?.code }).toEqual({ status: 503, code: 'service_unavailable' });

    await redisProxy.restore();
    await eventually(async () => (await readiness()).status === 200);
    const after = await generate('after redis returned');
    expect(after.messages.at(-1)!.event).toBe('complete');
    expect(after.messages.at(-1)!.data.blocks).toHaveLength(1);
  }, 120_000);

  test('with PostgreSQL gone mid-generation: the attempt fails with a clear reason, readiness is 503, and the retry persists exactly one set of blocks', async () => {
    const queue = new Queue('generation', { connection: { url: testRedisUrl() }, prefix: bullPrefix(t.keyPrefix) });
    try {
      let generationId = '';
      const streaming = readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'hold the model while the database goes away' },
        timeoutMs: 45_000,
        until: (m) => m.event === 'complete' || m.event === 'error',
        onMessage: (m) => void (generationId = m.data.generationId),
      });
      // The model call is parked on the gate: the worker is mid-generation.
      await eventually(async () => t.llm.chatRequests().some((r) => JSON.stringify(r.messages).includes('hold the model')));

      await pgProxy.cut();
      release();
      await eventually(async () => ((await queue.getJob(generationId))?.attemptsMade ?? 0) >= 1);
      const failedAttempt = await queue.getJob(generationId);
      expect((failedAttempt!.stacktrace ?? []).join('\n') + (failedAttempt!.failedReason ?? '')).toMatch(
        /ECONNREFUSED|terminat|connect|Connection/i,
      );
      expect((await readiness()).body.checks.database).toBe('unavailable');
      await pgProxy.restore();

      const sse = await streaming;
      const last = sse.messages.at(-1)!;
      expect(last.event).toBe('complete');
      expect(last.data.blocks.map((b: { content: { text: string } }) => b.content.text)).toEqual(['survived']);
      const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
      expect(blocks.body.blocks.filter((b: { generationSessionId: string }) => b.generationSessionId === generationId)).toHaveLength(1);
      expect((await readiness()).status).toBe(200);
    } finally {
      await queue.close();
    }
  }, 120_000);
});
