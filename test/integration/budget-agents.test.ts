import { DeviceSimulator } from '@switchboard/client/testing';
import { eq, sql } from 'drizzle-orm';
import { demoResponder } from '../../src/demo-model/responder';
import { AgentScheduler } from '../../src/agents/scheduler';
import { AdminDirectory } from '../../src/auth/admins';
import { LimitsResolver } from '../../src/auth/limits';
import { createLogger } from '../../src/lib/logger';
import { QueueRegistry } from '../../src/producers/registry';
import { BudgetDoor } from '../../src/budget/budget-door';
import type { AgentFile } from '../../src/schemas/device-protocol';
import { llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisConnections } from '../support/redis';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The budget door at the edge of agent runs, agentflow executions and embeddings: a request within
 * the user's budget runs end to end and shows in `GET /usage/budget`; once the budget is spent the
 * request is 429 `budget_exceeded` with the numbers and records and queues nothing; a model call a
 * worker is refused ends its run `budget_exceeded` instead of retrying.
 */
describe('budget door: agent runs, flow executions, embeddings', () => {
  let t: TestApp;
  let admin: TestUser;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { SWITCHBOARD_ROLES: 'api,worker' } });
    admin = await registerUser(t.api, 'Operator');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
  }, 60_000);
  afterEach(() => {
    for (const device of devices.splice(0)) device.close();
  });
  afterAll(() => t?.stop(), 30_000);

  const limited = async (name: string, limits: Record<string, unknown>) => {
    const user = await registerUser(t.api, name);
    const res = await request('PUT', `${t.api}/admin/users/${user.id}/limits`, { token: admin.accessToken, body: { limits } });
    expect(res.status).toBe(200);
    return user;
  };
  const month = async (user: TestUser, window = 'month') => {
    const res = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
    expect(res.status).toBe(200);
    return (res.body.windows as Array<Record<string, any>>).find((w) => w.window === window)!;
  };
  const usageRows = async (userId: string) =>
    (
      await t.app.repos.db
        .select({ n: sql<number>`count(*)::int` })
        .from(llmUsage)
        .where(eq(llmUsage.userId, userId))
    )[0].n;
  const expectRefused = (res: { status: number; body: any }, details: Record<string, unknown>) => {
    expect(res.status).toBe(429);
    expect(res.body.error).toEqual(
      expect.objectContaining({
        code: 'budget_exceeded',
        details: { reserved: expect.any(Number), resetsAt: expect.any(String), ...details },
      }),
    );
  };

  test('agent runs: a run within budget delivers; a worker-side refusal fails the run; a spent budget is 429 with no run', async () => {
    const user = await limited('AgentBudget', { requestsPerMonth: 2 });
    const file = (name: string, line: string): AgentFile => ({ path: `/notes/${name}`, name, content: `TODO: ${line}\n` });
    let files = [file('a.txt', 'Send the quote')];
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: 'laptop-budget',
      reconnection: false,
      readAgentFiles: async () => ({ files }),
    });
    devices.push(device);
    const created = await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Notes',
        deviceId: 'laptop-budget',
        directoryPaths: ['/notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
        fileExtensions: ['.txt'],
      },
    });
    expect(created.status).toBe(201);
    const agentId = created.body.id as string;
    const runs = async () =>
      (await request('GET', `${t.api}/agents/runs?agentId=${agentId}`, { token: user.accessToken })).body.runs as Array<
        Record<string, any>
      >;
    const runNow = () => request('POST', `${t.api}/agents/${agentId}/run`, { token: user.accessToken });
    const ended = (id: string) => eventually(runs, (list) => list.some((run) => run.id === id && run.completedAt !== null));

    expect(await month(user)).toMatchObject({ usedRequests: 0, usedTokens: 0 });
    const first = await runNow();
    expect(first.status).toBe(202);
    expect((await ended(first.body.runId)).find((run) => run.id === first.body.runId)).toMatchObject({
      status: 'success',
      itemsCreated: 1,
    });
    expect(device.store.rows('tasks').map((task) => task.title)).toEqual(['Send the quote']);
    const after = await month(user);
    expect(after.usedRequests).toBe(1);
    expect(after.usedTokens).toBeGreaterThan(0);

    // Admitted (1 used + 1 reserved = 2), but the second document's call would be a third request.
    files = [file('b.txt', 'Book the room'), file('c.txt', 'Ask Bob')];
    const second = await runNow();
    expect(second.status).toBe(202);
    const run = (await ended(second.body.runId)).find((r) => r.id === second.body.runId)!;
    expect(run).toMatchObject({ status: 'error', itemsProcessed: 1, itemsCreated: 1 });
    expect(run.errors.at(-1)).toMatch(/^budget_exceeded: The monthly requests budget is spent/);
    expect(await month(user)).toMatchObject({ usedRequests: 2, reservedTokens: 0 });

    const before = (await runs()).length;
    const agentRunsSeen = device.agentRuns.length;
    expectRefused(await runNow(), { window: 'month', dimension: 'requests', limit: 2, used: 2 });
    expect((await runs()).length).toBe(before);
    expect(device.agentRuns.length).toBe(agentRunsSeen);
  }, 30_000);

  test('scheduled runs reserve before queueing: a slot over the budget is skipped and moves on, one within it runs and gives back what no call took', async () => {
    const { repos, config } = t.app;
    // The budget on the cache's Redis, where the app's is; the schedulers' queue on the queues'.
    const redis = testRedisConnections();
    await redis.ready();
    const logger = createLogger({ level: 'silent' });
    const budget = new BudgetDoor({
      redis: redis.cache.command,
      keyPrefix: t.keyPrefix,
      limits: new LimitsResolver({ users: repos.users, tiers: config.tiers }),
      usage: repos.usage,
      logger,
      calls: { maxTokens: config.llm.maxTokens, pricing: config.llm.pricing, defaultModel: config.llm.model },
    });
    const queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
    const scheduler = new AgentScheduler({
      repos,
      enqueue: queues.enqueue,
      logger,
      tick: '* * * * *',
      budget,
    });
    const scheduled = async (user: TestUser, deviceId: string) => {
      const res = await request('POST', `${t.api}/agents/local`, {
        token: user.accessToken,
        body: {
          name: 'Nightly',
          deviceId,
          directoryPaths: ['/n'],
          dataTypes: ['tasks'],
          promptTemplate: 'Extract tasks.',
          scheduleCron: '0 */6 * * *',
        },
      });
      expect(res.status).toBe(201);
      await repos.db.execute(sql`update local_agents set next_run_at = now() - interval '1 day' where id = ${res.body.id}`);
      return res.body.id as string;
    };
    const runsOf = async (user: TestUser, agentId: string) =>
      (await request('GET', `${t.api}/agents/runs?agentId=${agentId}`, { token: user.accessToken })).body.runs as Array<
        Record<string, any>
      >;
    try {
      const [spent, fine] = [await limited('SchedSpent', { requestsPerMonth: 0 }), await limited('SchedFine', { requestsPerMonth: 5 })];
      const [skipped, due] = [await scheduled(spent, 'offline-a'), await scheduled(fine, 'offline-b')];
      expect(await scheduler.tick()).toBe(1);
      expect(await runsOf(spent, skipped)).toEqual([]);
      const agent = (await request('GET', `${t.api}/agents/local/${skipped}`, { token: spent.accessToken })).body;
      expect(Date.parse(agent.nextRunAt)).toBeGreaterThan(Date.now());
      // No device online: the run waits, and the reservation its slot took is given back.
      await eventually(
        () => runsOf(fine, due),
        (list) => list.length === 1 && list[0].status === 'waiting_device',
      );
      await eventually(
        () => month(fine),
        (w) => w.reservedTokens === 0,
      );
    } finally {
      await scheduler.stop();
      await queues.close();
      await redis.quit();
    }
  }, 30_000);

  test('flow executions: within budget it completes; a node refused by the budget fails the execution; a spent budget is 429 with no execution', async () => {
    const user = await limited('FlowBudget', { requestsPerMonth: 2 });
    const createFlow = async (definition: unknown) => {
      const res = await request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name: 'F', definition } });
      expect(res.status).toBe(201);
      return res.body.flow.id as string;
    };
    const execute = (flowId: string) =>
      request('POST', `${t.api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
    const finished = (flowId: string, executionId: string) =>
      eventually(
        () => request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken }),
        (res) => res.body.execution?.status === 'completed' || res.body.execution?.status === 'failed',
      ).then((res) => res.body.execution as Record<string, any>);

    const single = await createFlow({ nodes: [{ id: 'a', prompt: 'Say hello' }], output: 'a' });
    const ok = await execute(single);
    expect(ok.status).toBe(202);
    expect(await finished(single, ok.body.executionId)).toMatchObject({ status: 'completed' });
    const after = await month(user);
    expect(after.usedRequests).toBe(1);
    expect(after.usedTokens).toBeGreaterThan(0);

    // Admitted for node a; node b would be a third request: it fails for good, and the execution with it.
    const chain = await createFlow({
      nodes: [
        { id: 'a', prompt: 'Say hello' },
        { id: 'b', prompt: 'Repeat {{nodes.a.output}}', dependsOn: ['a'] },
      ],
      output: 'b',
    });
    const refusedLater = await execute(chain);
    expect(refusedLater.status).toBe(202);
    const failed = await finished(chain, refusedLater.body.executionId);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'budget_exceeded' } });
    expect(failed.nodes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'a', status: 'completed' }),
        expect.objectContaining({ id: 'b', status: 'failed', attempts: 1, error: expect.objectContaining({ code: 'budget_exceeded' }) }),
      ]),
    );

    const count = async () =>
      (await request('GET', `${t.api}/flows/${single}/executions?limit=50`, { token: user.accessToken })).body.executions.length;
    const before = await count();
    expectRefused(await execute(single), { window: 'month', dimension: 'requests', limit: 2, used: 2 });
    expect(await count()).toBe(before);
  }, 30_000);

  test('embeddings: tokens are reserved and settled with what the model counted; past the hourly tokens a text is 429 and not embedded', async () => {
    const user = await limited('EmbedBudget', { tokensPerHour: 60 });
    const embed = (text: string) => request('POST', `${t.api}/storage/vectors/embed`, { token: user.accessToken, body: { text } });

    const ok = await embed('Quarterly report for ACME');
    expect(ok.status).toBe(200);
    expect(ok.body.vector.length).toBeGreaterThan(0);
    const hour = await eventually(
      () => month(user, 'hour'),
      (w) => w.usedTokens > 0,
    );
    // Settled with the counted tokens (not the reserved bound), and embeddings are no requests.
    expect(hour).toMatchObject({ reservedTokens: 0, usedRequests: 0 });
    expect(hour.usedTokens).toBeLessThan(20);

    const rows = await usageRows(user.id);
    expectRefused(await embed('x'.repeat(300)), { window: 'hour', dimension: 'tokens', limit: 60, used: hour.usedTokens });
    expect(await usageRows(user.id)).toBe(rows);
    expect((await month(user, 'hour')).usedTokens).toBe(hour.usedTokens);
  }, 30_000);
});
