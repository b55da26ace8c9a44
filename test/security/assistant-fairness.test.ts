import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { QueueRegistry } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The assistant queue runs every user's chat turns: one user's burst of chatflow turns must not
 * queue ahead of another user's single turn.
 */
const BURST = 25;
/** Turns the worker process runs at once on the assistant queue (ASSISTANT_CONCURRENCY), fewer than the burst. */
const CONCURRENCY = 10;
const lastUser = (req: ChatRequest) => messageText([...req.messages].reverse().find((m) => m.role === 'user') ?? { content: '' });

describe('assistant queue fairness', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let redis: RedisClient;
  let queues: QueueRegistry;
  const arrivals: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));

  beforeAll(async () => {
    t = await startTestApp({
      env: { ASSISTANT_CONCURRENCY: String(CONCURRENCY) },
      responder: async (req) => {
        arrivals.push(lastUser(req));
        // The model holds the first turns until everyone's turns are queued behind them.
        await gate;
        return { text: 'ok' };
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
    redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    queues = new QueueRegistry(redis, t.keyPrefix);
  }, 60_000);
  afterAll(async () => {
    open();
    await queues.close();
    redis.disconnect();
    await t.stop();
  });

  const chatflow = async (user: TestUser) =>
    (
      await request('POST', `${t.api}/flows`, {
        token: user.accessToken,
        body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'Help.' } },
      })
    ).body.flow.id as string;
  const queued = async () => {
    const counts = await queues.get('assistant').getJobCounts('waiting', 'prioritized');
    return counts.waiting + counts.prioritized;
  };

  test("another user's turn is answered before one user's burst drains", async () => {
    const [adaFlow, bobFlow] = await Promise.all([chatflow(ada), chatflow(bob)]);
    const burst = Array.from({ length: BURST }, (_, i) =>
      request('POST', `${t.api}/flows/${adaFlow}/chat`, { token: ada.accessToken, body: { message: `ada ${i}` } }),
    );
    await eventually(queued, (n) => n === BURST - CONCURRENCY);
    const bobTurn = request('POST', `${t.api}/flows/${bobFlow}/chat`, { token: bob.accessToken, body: { message: 'bob asks' } });
    await eventually(queued, (n) => n === BURST - CONCURRENCY + 1);
    open();

    expect((await bobTurn).status).toBe(200);
    expect((await Promise.all(burst)).map((res) => res.status)).toEqual(Array(BURST).fill(200));
    // First in, first out would answer Bob after all of Ada's turns (index BURST). Fair: his turn is
    // among the next ones taken once the running ones end; those start together, so their model
    // requests may arrive in any order among themselves.
    expect(arrivals.indexOf('bob asks')).toBeGreaterThanOrEqual(CONCURRENCY);
    expect(arrivals.indexOf('bob asks')).toBeLessThan(2 * CONCURRENCY);
  }, 60_000);
});
