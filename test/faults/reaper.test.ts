import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisTarget, type TestDatabase } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { TestQueue } from '../support/redis';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * Work whose job is gone — what kill -9 leaves when Redis lost its data, or when a job failed past
 * the stall limit without its processor's bookkeeping — is reaped by the next worker process that
 * starts (nothing stays `running`/`pending` forever). An API-only node takes the requests;
 * the job is then removed from Redis as a crash would lose it; a worker node starts and reaps.
 */
describe('the reaper ends work a dead process left open', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let api: RunningSwitchboard;
  const workers: RunningSwitchboard[] = [];
  const keyPrefix = `reaper-${randomUUID().slice(0, 8)}`;
  let base: string;
  let user: TestUser;
  const queue = (name: string) => new TestQueue(name, bullPrefix(keyPrefix));

  const start = (env: Record<string, string>) =>
    startSwitchboard(
      testConfig({
        keyPrefix,
        databaseUrl: database.url,
        env: {
          TIER_LIMITS: JSON.stringify({ free: { concurrentGenerations: 1 } }),
          REAPER_GRACE_MS: '500',
          REAPER_INTERVAL_MS: '300',
          ...env,
        },
      }),
      {
        logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      },
    );

  beforeAll(async () => {
    // A PostgreSQL server: the API and worker nodes must share the database (PGlite lives in one process).
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(async () => ({ toolCalls: [{ name: 'create_text', args: { text: 'after the crash' } }] }));
    api = await start({ SWITCHBOARD_ROLES: 'api' });
    base = `${api.url}/api/v1`;
    user = await registerUser(base, 'Reaped');
  });

  afterAll(async () => {
    for (const running of [...workers, api]) await running.stop();
    await llm.close();
    await database.drop();
  });

  test('a generation whose job is lost ends with an `error` event, `failed` status and its slot released', async () => {
    const canvasId = await createCanvas(base, user);
    const generations = queue('generation');
    let generationId = '';
    const stream = readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'a paragraph about crashes' },
      timeoutMs: 30_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
      onMessage: (m) => void (generationId ||= m.data.generationId),
    });
    try {
      await eventually(
        async () => generationId && (await generations.getJobState(generationId)),
        (state) => state === 'waiting',
      );
      await generations.remove(generationId);
      // While it is "running", the user's one slot is taken.
      expect(
        (await request('POST', `${base}/canvases/${canvasId}/ai/generate-stream`, { token: user.accessToken, body: { prompt: 'another' } }))
          .status,
      ).toBe(429);

      workers.push(await start({ SWITCHBOARD_ROLES: 'worker' }));

      const sse = await stream;
      expect(sse.messages.at(-1)).toMatchObject({ event: 'error', data: { code: 'interrupted' } });
      const row = await request('GET', `${base}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken });
      expect(row.body.generation).toMatchObject({ status: 'failed', error: { code: 'interrupted' } });
      expect(
        (await request('POST', `${base}/canvases/${canvasId}/ai/generations/${generationId}/undo`, { token: user.accessToken })).body.error
          .code,
      ).toBe('generation_not_completed');
      // A stream opened later replays to the same end instead of hanging.
      const later = await readSse(`${base}/canvases/${canvasId}/ai/generations/${generationId}/events`, {
        token: user.accessToken,
        timeoutMs: 10_000,
      });
      expect(later.messages.at(-1)!.event).toBe('error');
      const next = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'the next one' },
        timeoutMs: 30_000,
        until: (m) => m.event === 'complete' || m.event === 'error',
      });
      expect(next.status).toBe(200);
      expect(next.messages.at(-1)!.event).toBe('complete');
    } finally {
      await generations.close();
    }
  }, 60_000);

  test('a chat turn whose job is lost answers `interrupted` instead of waiting forever', async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    const assistant = queue('assistant');
    try {
      const before = new Set((await assistant.getJobs(['waiting', 'prioritized'])).map((job) => job.id));
      const answer = request('POST', `${base}/chat`, { token: user.accessToken, body: { message: 'Are you there?', tools: 'none' } });
      const job = await eventually(
        async () => (await assistant.getJobs(['waiting', 'prioritized'])).find((j) => !before.has(j.id)),
        Boolean,
      );
      await job!.remove();

      workers.push(await start({ SWITCHBOARD_ROLES: 'worker' }));

      const res = await answer;
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe('interrupted');
    } finally {
      await assistant.close();
    }
  }, 60_000);

  test('a chat turn asked to stop whose worker then died ends `cancelled`, not `interrupted`', async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    const assistant = queue('assistant');
    const db = new Client({ connectionString: database.url });
    await db.connect();
    try {
      const before = new Set((await assistant.getJobs(['waiting', 'prioritized'])).map((job) => job.id));
      const answer = request('POST', `${base}/chat`, { token: user.accessToken, body: { message: 'Stop me', tools: 'none' } });
      const job = await eventually(
        async () => (await assistant.getJobs(['waiting', 'prioritized'])).find((j) => !before.has(j.id)),
        Boolean,
      );
      // The cancel reached the turn's run while a worker ran the turn; then that worker died and its job was lost.
      const marked = await db.query("update runs set status = 'running', cancel_requested_at = now() where kind = 'chat' and id = $1", [
        job!.id,
      ]);
      expect(marked.rowCount).toBe(1);
      await job!.remove();
      // What the dead worker had streamed before it died.
      const redis = createRedis(testRedisTarget('realtime'), 'command');
      await redisReady(redis);
      const sessionId = (job!.data as { sessionId: string }).sessionId;
      for (const text of ['Half ', 'an answer'])
        await redis.xadd(`${keyPrefix}:chat:{${job!.id}}:events`, '*', 'e', JSON.stringify({ type: 'text_chunk', sessionId, text }));
      redis.disconnect();

      workers.push(await start({ SWITCHBOARD_ROLES: 'worker' }));

      const res = await answer;
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ cancelled: true, response: 'Half an answer' });
      const history = await request('GET', `${base}/chat/sessions/${res.body.sessionId}/history`, { token: user.accessToken });
      expect(history.body.messages.at(-1)).toMatchObject({ role: 'assistant', status: 'cancelled', content: 'Half an answer' });
    } finally {
      await db.end();
      await assistant.close();
    }
  }, 60_000);
});
