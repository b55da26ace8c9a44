import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { createRedis, redisReady } from '../../src/lib/redis';
import { testRedisTarget } from '../support/database';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * One user's flows must not starve everyone's: the `flows` queue orders each user's jobs by how
 * many of theirs are already queued, so a user with one node waiting goes ahead of another's
 * backlog instead of behind it.
 */

const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';
const NODES = 40;
const EXECUTIONS = 5;

describe('flows queue fairness', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  /** The model requests in the order they arrived, by tag. */
  const arrivals: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      responder: async (req) => {
        const tag = tagOf(req);
        arrivals.push(tag);
        // A model takes a while: Ada's backlog is still queued when Bob starts.
        if (tag.startsWith('ada')) await new Promise((resolve) => setTimeout(resolve, 15));
        return { text: `out(${tag})` };
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  }, 60_000);
  afterAll(() => t.stop());

  const createFlow = async (user: TestUser, definition: unknown): Promise<string> => {
    const res = await request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name: 'Flow', definition } });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id;
  };
  const execute = async (user: TestUser, flowId: string): Promise<string> => {
    const res = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
    if (res.status !== 202) throw new Error(`execute: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.executionId;
  };
  const statusOf = async (user: TestUser, flowId: string, executionId: string) =>
    (await request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken })).body.execution
      .status as string;

  test("another user's one-node run completes before one user's backlog drains", async () => {
    const wide = await createFlow(ada, {
      nodes: Array.from({ length: NODES }, (_, i) => ({ id: `n${i}`, prompt: `[ada-${i}] work` })),
      output: 'n0',
    });
    const one = await createFlow(bob, { nodes: [{ id: 'only', prompt: '[bob] hello' }], output: 'only' });
    const adaRuns: string[] = [];
    for (let i = 0; i < EXECUTIONS; i += 1) adaRuns.push(await execute(ada, wide));
    const bobRun = await execute(bob, one);
    // Jobs waiting in priority order still count as waiting.
    const summary = await request('GET', `${t.api}/metrics/summary`, { token: ada.accessToken });
    expect(summary.body.queues.flows.waiting).toBeGreaterThan(0);

    await eventually(
      () => statusOf(bob, one, bobRun),
      (status) => status === 'completed',
      30_000,
    );
    const before = arrivals.indexOf('bob');
    expect(before).toBeGreaterThanOrEqual(0);
    // FIFO would put Bob's node behind all of Ada's queued nodes.
    expect(before).toBeLessThan((NODES * EXECUTIONS) / 4);
    for (const id of adaRuns)
      await eventually(
        () => statusOf(ada, wide, id),
        (status) => status === 'completed',
        60_000,
      );
    expect(arrivals.filter((tag) => tag.startsWith('ada'))).toHaveLength(NODES * EXECUTIONS);
    // Every finished job was released: nobody's count is left over to lower their next runs.
    const redis = createRedis(testRedisTarget('queues'), 'command');
    try {
      await redisReady(redis);
      // One EXISTS per key: each user's count sits in a slot of its own.
      const left = async () =>
        (await Promise.all([ada, bob].map((user) => redis.exists(`${t.keyPrefix}:fair:flows:{${user.id}}`)))).reduce((a, b) => a + b, 0);
      await eventually(left, (n) => n === 0, 10_000);
    } finally {
      redis.disconnect();
    }
  }, 90_000);
});
