import { createRedis, redisReady } from '../../src/lib/redis';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { createCanvas, registerUser, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

/**
 * A status event says what the generation is doing now. On embedded PGlite (DATABASE_URL
 * memory://) the persist's queries run on the worker's own thread; the `persisting` status must be
 * in the generation's event log (what SSE clients read) before the blocks are written, not after.
 */
describe('generation status timing on embedded PGlite', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  const redis = createRedis(testRedisTarget('realtime'), 'command');

  beforeAll(async () => {
    t = await startTestApp({ env: { DATABASE_URL: 'memory://' } });
    await redisReady(redis);
    user = await registerUser(t.api, 'Stages');
    canvasId = await createCanvas(t.api, user);
    // Embedded PGlite boots and migrates inside this process: minutes, not seconds, on a loaded machine.
  }, 120_000);

  afterAll(async () => {
    redis.disconnect();
    await t.stop();
  });

  test('the persisting status is in the event log when the blocks are inserted', async () => {
    const blocks = t.app.repos.blocks;
    const insertMany = blocks.insertMany.bind(blocks);
    const loggedAtInsert: string[][] = [];
    blocks.insertMany = async (tx, args) => {
      const entries = await redis.xrange(`${t.keyPrefix}:gen:{${args.generationSessionId}}:events`, '-', '+');
      loggedAtInsert.push(
        entries
          .map(([, fields]) => JSON.parse(fields[1]) as { type: string; stage?: string })
          .filter((e) => e.type === 'status')
          .map((e) => e.stage!),
      );
      return insertMany(tx, args);
    };
    try {
      t.llm.push(
        {
          toolCalls: [
            { name: 'create_text', args: { text: 'one' } },
            { name: 'create_text', args: { text: 'two' } },
          ],
        },
        { text: 'Done.' },
      );
      const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'two' },
        until: (m) => m.event === 'complete' || m.event === 'error',
      });

      expect(sse.messages.at(-1)?.event).toBe('complete');
      expect(loggedAtInsert).toEqual([['queued', 'thinking', 'tool', 'persisting']]);
    } finally {
      blocks.insertMany = insertMany;
    }
  });
});
