import { randomUUID } from 'node:crypto';
import { createSwitchboardClient, isApiError } from '@switchboard/client';
import { Queue } from 'bullmq';
import { and, eq, sql } from 'drizzle-orm';
import { AgentScheduler } from '../../src/agents/scheduler';
import { AdminDirectory } from '../../src/auth/admins';
import { budgetWindows, LimitsResolver } from '../../src/auth/limits';
import { createRedis, redisReady } from '../../src/lib/redis';
import { bullPrefix, QueueRegistry } from '../../src/producers/registry';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { llmUsage, systemAudit } from '../../src/models/schema';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisTarget, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

/**
 * Tiers and limits an operator changes at runtime: two API nodes on one database and one Redis.
 * The free plan here is seed 004's: 100 model requests a month, no local models; it also lacks
 * flows and cloud agents, and allows one manual agent run a minute, so each gate shows.
 */
const TIER_LIMITS = {
  free: { requestsPerMonth: 100, agentRunsPerMinute: 1, features: { localModels: false, flows: false, cloudAgents: false } },
  pro: { tokensPerHour: 50_000, tokensPerMonth: 1_000_000, costUsdPerMonth: 20 },
};

describe('tiers and limits set by an operator', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let nodeA: RunningSwitchboard;
  let nodeB: RunningSwitchboard;
  let apiA: string;
  let apiB: string;
  let admin: TestUser;
  let keyPrefix: string;

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(() => ({ text: 'Hello from the model.' }));
    keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const env = {
      TIER_LIMITS: JSON.stringify(TIER_LIMITS),
      LLM_PROVIDERS: JSON.stringify([
        { name: 'scripted', baseUrl: llm.baseURL, models: ['scripted-model'] },
        { name: 'lan', kind: 'ollama', baseUrl: llm.baseURL, models: ['scripted-model'] },
      ]),
    };
    const start = (roles: string) => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { ...env, SWITCHBOARD_ROLES: roles } });
      return startSwitchboard(config, { logger: createLogger({ level: config.log.level }) });
    };
    // Node A first: it migrates the shared database; node B serves HTTP only.
    nodeA = await start('api,worker,scheduler');
    nodeB = await start('api');
    apiA = `${nodeA.url}/api/v1`;
    apiB = `${nodeB.url}/api/v1`;
    admin = await registerUser(apiA, 'Operator');
    await new AdminDirectory(nodeA.repos.admins).grant(admin.email);
  }, 120_000);

  afterAll(async () => {
    await nodeB?.stop();
    await nodeA?.stop();
    await llm?.close();
    await database?.drop();
  }, 60_000);

  const setTier = (api: string, caller: TestUser, userId: string, body: unknown) =>
    request('PUT', `${api}/admin/users/${userId}/tier`, { token: caller.accessToken, body });
  const setLimits = (api: string, caller: TestUser, userId: string, body: unknown) =>
    request('PUT', `${api}/admin/users/${userId}/limits`, { token: caller.accessToken, body });
  const createFlow = (api: string, user: TestUser) =>
    request('POST', `${api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'Answer briefly.' } },
    });

  test('an admin moves a user to pro on node A; the same access token on node B gets pro at its next request', async () => {
    const user = await registerUser(apiA, 'Mover');
    // On free: flows are off, and the one manual run a minute is used up by the first attempt.
    expect((await createFlow(apiB, user)).body.error).toEqual(expect.objectContaining({ code: 'tier_forbidden' }));
    const run = () => request('POST', `${apiB}/agents/${randomUUID()}/run`, { token: user.accessToken });
    expect((await run()).status).toBe(404);
    expect((await run()).status).toBe(429);

    const changed = await setTier(apiA, admin, user.id, { tier: 'pro' });
    expect(changed.status).toBe(200);
    expect(changed.body.user).toEqual(
      expect.objectContaining({ id: user.id, tier: 'pro', limitOverrides: null, limits: expect.objectContaining(TIER_LIMITS.pro) }),
    );

    // No new token: node B reads the tier with the session, so pro's limits apply at once.
    const created = await createFlow(apiB, user);
    expect(created.status).toBe(201);
    expect((await run()).status).toBe(404);
    const me = await request('GET', `${apiB}/me`, { token: user.accessToken });
    expect(me.body.user).toEqual(expect.objectContaining({ tier: 'pro' }));
    const budget = await request('GET', `${apiB}/usage/budget`, { token: user.accessToken });
    expect(budget.body.tier).toBe('pro');
    // An admin reads the plan back on any node, as the change answered it.
    const plan = await request('GET', `${apiB}/admin/users/${user.id}/plan`, { token: admin.accessToken });
    expect(plan.status).toBe(200);
    expect(plan.body).toEqual(changed.body);

    // And back: the feature is gone again at the next request.
    expect((await setTier(apiA, admin, user.id, { tier: 'free' })).status).toBe(200);
    const refused = await request('POST', `${apiB}/flows/${created.body.flow.id}/chat`, {
      token: user.accessToken,
      body: { message: 'hi' },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'tier_forbidden', details: { feature: 'flows' } }));

    const audit = await nodeA.repos.db
      .select()
      .from(systemAudit)
      .where(and(eq(systemAudit.targetId, user.id), eq(systemAudit.action, 'user.tier_changed')));
    expect(audit.map((row) => ({ actor: row.actorId, details: row.details }))).toEqual(
      expect.arrayContaining([
        { actor: admin.id, details: { via: 'api', from: 'free', to: 'pro' } },
        { actor: admin.id, details: { via: 'api', from: 'pro', to: 'free' } },
      ]),
    );
  }, 60_000);

  test('only admins change plans: another user is 403 and nothing changes', async () => {
    const [user, stranger] = await Promise.all([registerUser(apiA, 'Target'), registerUser(apiA, 'Stranger')]);
    for (const res of [
      await setTier(apiB, stranger, user.id, { tier: 'enterprise' }),
      await setLimits(apiB, stranger, user.id, { limits: { requestsPerMonth: 1 } }),
      await setTier(apiB, user, user.id, { tier: 'enterprise' }),
      await request('GET', `${apiB}/admin/users/${user.id}/plan`, { token: stranger.accessToken }),
      // Rights are checked before the input: a body or query the schema rejects is still 403, not 400.
      await setLimits(apiB, stranger, user.id, { limits: { teleports: 3 } }),
      await setLimits(apiB, stranger, user.id, { limits: { requestsPerMonth: -1 } }),
      await setTier(apiB, stranger, user.id, { tier: 'gold' }),
      await request('GET', `${apiB}/admin/users?limit=0`, { token: stranger.accessToken }),
      await request('GET', `${apiB}/admin/audit?limit=0`, { token: stranger.accessToken }),
    ]) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    const row = await nodeA.repos.users.findById(user.id);
    expect({ tier: row?.tier, overrides: row?.limitOverrides }).toEqual({ tier: 'free', overrides: null });
  }, 30_000);

  test('bad input is a 400 and an unknown user a 404, never a change', async () => {
    const user = await registerUser(apiA, 'Input');
    const bad = [
      await setTier(apiA, admin, user.id, { tier: 'gold' }),
      await setTier(apiA, admin, user.id, {}),
      await setLimits(apiA, admin, user.id, { limits: { requestsPerMonth: -1 } }),
      await setLimits(apiA, admin, user.id, { limits: { tokensPerHour: 1.5 } }),
      await setLimits(apiA, admin, user.id, { limits: { teleports: 3 } }),
      await setLimits(apiA, admin, user.id, { limits: { features: { flows: 'yes' } } }),
      await setLimits(apiA, admin, user.id, {}),
    ];
    expect(bad.map((res) => [res.status, res.body.error.code])).toEqual(bad.map(() => [400, 'validation_failed']));
    expect((await setTier(apiA, admin, randomUUID(), { tier: 'pro' })).status).toBe(404);
    expect((await setLimits(apiA, admin, randomUUID(), { limits: null })).status).toBe(404);
    expect((await request('GET', `${apiA}/admin/users/${randomUUID()}/plan`, { token: admin.accessToken })).status).toBe(404);
    expect((await request('GET', `${apiA}/admin/users/not-a-uuid/plan`, { token: admin.accessToken })).status).toBe(404);
    expect((await setTier(apiA, admin, 'not-a-user', { tier: 'pro' })).status).toBe(404);
    const row = await nodeA.repos.users.findById(user.id);
    expect({ tier: row?.tier, overrides: row?.limitOverrides }).toEqual({ tier: 'free', overrides: null });
  }, 30_000);

  test('overrides replace the earlier ones (not merge), apply over the tier on the other node, and null clears them', async () => {
    const user = await registerUser(apiA, 'Override');
    const monthOf = async () =>
      (await request('GET', `${apiB}/usage/budget`, { token: user.accessToken })).body.windows.find(
        (window: { window: string }) => window.window === 'month',
      );

    const first = await setLimits(apiA, admin, user.id, { limits: { requestsPerMonth: 500, features: { flows: true } } });
    expect(first.status).toBe(200);
    expect(first.body.user.limits).toEqual(
      expect.objectContaining({ requestsPerMonth: 500, features: { localModels: false, cloudAgents: false, flows: true } }),
    );
    expect((await monthOf()).limitRequests).toBe(500);
    expect((await createFlow(apiB, user)).status).toBe(201);

    const second = await setLimits(apiA, admin, user.id, { limits: { tokensPerMonth: 9_000 } });
    expect(second.body.user).toEqual(
      expect.objectContaining({
        limitOverrides: { tokensPerMonth: 9_000 },
        // The earlier overrides are gone: the tier's request limit and features again.
        limits: expect.objectContaining({
          tokensPerMonth: 9_000,
          requestsPerMonth: 100,
          features: expect.objectContaining({ flows: false }),
        }),
      }),
    );
    expect(await monthOf()).toEqual(expect.objectContaining({ limitTokens: 9_000, limitRequests: 100 }));
    expect((await createFlow(apiB, user)).status).toBe(403);

    const cleared = await setLimits(apiA, admin, user.id, { limits: null });
    expect(cleared.body.user.limitOverrides).toBeNull();
    expect(await monthOf()).toEqual(expect.objectContaining({ limitTokens: null, limitRequests: 100 }));
    const audit = await nodeA.repos.db
      .select()
      .from(systemAudit)
      .where(and(eq(systemAudit.targetId, user.id), eq(systemAudit.action, 'user.limits_changed')));
    expect(audit).toHaveLength(3);
  }, 30_000);

  test('feature gates: a local model, a cloud agent and flows are 403 `tier_forbidden` on a plan without them', async () => {
    const user = await registerUser(apiA, 'Gated');
    const chat = (provider: string) =>
      request('POST', `${apiB}/chat`, {
        token: user.accessToken,
        body: { message: 'Say hello', tools: 'none', config: { provider, model: 'scripted-model' } },
      });
    const local = await chat('lan');
    expect(local.status).toBe(403);
    expect(local.body.error).toEqual(expect.objectContaining({ code: 'tier_forbidden', details: { feature: 'localModels' } }));
    // A hosted provider is not a local model: the free plan may use it.
    expect((await chat('scripted')).status).toBe(200);

    const cloudAgent = { provider: 'gmail', name: 'Mail', dataTypes: ['tasks'], promptTemplate: 'Extract tasks from each message.' };
    const refused = await request('POST', `${apiB}/agents/cloud`, { token: user.accessToken, body: cloudAgent });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'tier_forbidden', details: { feature: 'cloudAgents' } }));

    // On pro every feature is on: the local model answers, the cloud agent is created...
    await setTier(apiA, admin, user.id, { tier: 'pro' });
    expect((await chat('lan')).status).toBe(200);
    const agent = await request('POST', `${apiB}/agents/cloud`, { token: user.accessToken, body: cloudAgent });
    expect(agent.status).toBe(201);
    // ...and back on free its manual run is refused before anything is queued.
    await setTier(apiA, admin, user.id, { tier: 'free' });
    const run = await request('POST', `${apiB}/agents/${agent.body.id}/run`, { token: user.accessToken });
    expect(run.status).toBe(403);
    expect(run.body.error.code).toBe('tier_forbidden');

    const flow = await createFlow(apiB, user);
    expect(flow.status).toBe(403);
    const execute = await request('POST', `${apiB}/flows/${randomUUID()}/execute`, { token: user.accessToken, body: {} });
    expect(execute.body.error).toEqual(expect.objectContaining({ code: 'tier_forbidden' }));
  }, 60_000);

  test('a flow on a local model: saved on a plan with local models, refused to save or run on one without', async () => {
    const user = await registerUser(apiA, 'Flower');
    const localFlow = {
      type: 'chatflow',
      name: 'On the LAN',
      definition: { systemPrompt: 'Answer briefly.', model: { provider: 'lan', model: 'scripted-model' } },
    };
    const save = () => request('POST', `${apiB}/flows`, { token: user.accessToken, body: localFlow });
    await setTier(apiA, admin, user.id, { tier: 'pro' });
    const saved = await save();
    expect(saved.status).toBe(201);

    // Free with flows switched on for this user, local models still off.
    await setTier(apiA, admin, user.id, { tier: 'free' });
    await setLimits(apiA, admin, user.id, { limits: { features: { flows: true } } });
    const refused = await save();
    expect(refused.status).toBe(403);
    expect(refused.body.error.details).toEqual({ feature: 'localModels' });
    const chat = await request('POST', `${apiB}/flows/${saved.body.flow.id}/chat`, { token: user.accessToken, body: { message: 'hi' } });
    expect(chat.status).toBe(403);
    expect(chat.body.error.details).toEqual({ feature: 'localModels' });
    // A flow on the hosted provider is fine on the same plan.
    expect((await createFlow(apiB, user)).status).toBe(201);
  }, 30_000);

  test("an embed's public chat is refused when its owner's plan lacks flows", async () => {
    const owner = await registerUser(apiA, 'Embedder');
    await setTier(apiA, admin, owner.id, { tier: 'pro' });
    const flow = await createFlow(apiB, owner);
    const embed = await request('POST', `${apiB}/flows/${flow.body.flow.id}/embeds`, {
      token: owner.accessToken,
      body: { allowedOrigins: ['https://shop.example'] },
    });
    expect(embed.status).toBe(201);
    const visit = () => request('POST', `${apiB}/embed/public/${embed.body.embedToken}/chat`, { body: { message: 'Hello' } });
    expect((await visit()).status).toBe(200);

    await setTier(apiA, admin, owner.id, { tier: 'free' });
    const refused = await visit();
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'tier_forbidden', details: { feature: 'flows' } }));
  }, 30_000);

  test('GET /usage/budget: limits, recorded usage of this hour and this month, and when each window resets', async () => {
    const [user, other] = await Promise.all([registerUser(apiA, 'Spender'), registerUser(apiA, 'Other')]);
    await setTier(apiA, admin, user.id, { tier: 'pro' });
    const [hour, month] = budgetWindows();
    const minuteAfter = (date: Date) => new Date(date.getTime() + 60_000);
    const rows = [
      // This hour: a chat call and an embedding (tokens only, not a request).
      { userId: user.id, purpose: 'chat' as const, inputTokens: 100, outputTokens: 20, costUsd: 0.5, createdAt: minuteAfter(hour.start) },
      {
        userId: user.id,
        purpose: 'embedding' as const,
        inputTokens: 30,
        outputTokens: 0,
        costUsd: 0.01,
        createdAt: minuteAfter(hour.start),
      },
      // This month (this hour too when the month began within it).
      { userId: user.id, purpose: 'flow' as const, inputTokens: 1_000, outputTokens: 200, costUsd: 2, createdAt: month.start },
      // Last month, and another user's call: neither counts.
      {
        userId: user.id,
        purpose: 'chat' as const,
        inputTokens: 9_999,
        outputTokens: 1,
        costUsd: 9,
        createdAt: new Date(month.start.getTime() - 1),
      },
      { userId: other.id, purpose: 'chat' as const, inputTokens: 7_777, outputTokens: 1, costUsd: 7, createdAt: minuteAfter(hour.start) },
    ];
    await nodeA.repos.db.insert(llmUsage).values(rows.map((row) => ({ ...row, provider: 'scripted', model: 'scripted-model' })));
    const inWindow = (start: Date) => rows.filter((row) => row.userId === user.id && row.createdAt >= start);
    const sums = (start: Date) => ({
      usedTokens: inWindow(start).reduce((sum, row) => sum + row.inputTokens + row.outputTokens, 0),
      usedRequests: inWindow(start).filter((row) => row.purpose !== 'embedding').length,
      usedCostUsd: expect.closeTo(
        inWindow(start).reduce((sum, row) => sum + row.costUsd, 0),
        9,
      ),
    });

    const res = await request('GET', `${apiB}/usage/budget`, { token: user.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tier: 'pro',
      windows: [
        {
          window: 'hour',
          limitTokens: 50_000,
          ...sums(hour.start),
          usedRequests: sums(hour.start).usedRequests,
          reservedTokens: 0,
          limitRequests: null,
          limitCostUsd: null,
          resetsAt: hour.resetsAt.toISOString(),
        },
        {
          window: 'month',
          limitTokens: 1_000_000,
          ...sums(month.start),
          reservedTokens: 0,
          limitRequests: null,
          limitCostUsd: 20,
          resetsAt: month.resetsAt.toISOString(),
        },
      ],
    });
    expect(res.body.windows[1]).toEqual(expect.objectContaining({ usedTokens: 1_350, usedRequests: 2 }));

    // The free plan of this deployment: 100 requests a month, the rest unlimited (null).
    const fresh = await registerUser(apiA, 'Fresh');
    const free = await request('GET', `${apiB}/usage/budget`, { token: fresh.accessToken });
    expect(
      free.body.windows.map((window: Record<string, unknown>) => [
        window.window,
        window.limitTokens,
        window.limitRequests,
        window.usedTokens,
      ]),
    ).toEqual([
      ['hour', null, null, 0],
      ['month', null, 100, 0],
    ]);
    expect((await request('GET', `${apiB}/usage/budget`)).status).toBe(401);
  }, 30_000);

  test('the TypeScript client: an admin sets tier and limits, the user reads their budget', async () => {
    const user = await registerUser(apiA, 'Client');
    const operator = createSwitchboardClient({ baseUrl: nodeA.url!, accessToken: admin.accessToken, refreshToken: admin.refreshToken });
    const own = createSwitchboardClient({ baseUrl: nodeB.url!, accessToken: user.accessToken, refreshToken: user.refreshToken });

    expect((await operator.admin.users.setTier(user.id, 'enterprise')).user.tier).toBe('enterprise');
    const { user: plan } = await operator.admin.users.setLimits(user.id, { costUsdPerMonth: 3 });
    expect(plan).toEqual(
      expect.objectContaining({ limitOverrides: { costUsdPerMonth: 3 }, limits: expect.objectContaining({ costUsdPerMonth: 3 }) }),
    );
    const budget = await own.usage.budget();
    expect(budget.tier).toBe('enterprise');
    expect(budget.windows.find((window) => window.window === 'month')?.limitCostUsd).toBe(3);
    const refused = await own.admin.users.setTier(user.id, 'pro').catch((error: unknown) => error);
    expect(isApiError(refused, 'forbidden')).toBe(true);
  }, 30_000);

  test('a scheduled cloud agent of a plan without cloud agents skips its slot; on a plan with them it runs', async () => {
    const user = await registerUser(apiA, 'Scheduled');
    await setTier(apiA, admin, user.id, { tier: 'pro' });
    const created = await request('POST', `${apiB}/agents/cloud`, {
      token: user.accessToken,
      body: { provider: 'gmail', name: 'Hourly', dataTypes: ['tasks'], promptTemplate: 'Extract tasks.', scheduleCron: '0 * * * *' },
    });
    expect(created.status).toBe(201);
    const agentId: string = created.body.id;
    const redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    const queues = new QueueRegistry(redis, keyPrefix);
    // A cloud agent's run starts on `connectors` (it fetches first); `agent-runs` is checked as well.
    const runQueues = ['connectors', 'agent-runs'].map((name) => new Queue(name, { connection: redis, prefix: bullPrefix(keyPrefix) }));
    const scheduler = new AgentScheduler({
      repos: nodeA.repos,
      enqueue: queues.enqueue,
      logger: createLogger({ level: 'silent' }),
      tick: '* * * * *',
      limits: new LimitsResolver({ users: nodeA.repos.users, tiers: nodeA.config.tiers }),
    });
    const makeDue = () =>
      nodeA.repos.db.execute(
        sql`update cloud_agents set next_run_at = ${new Date(Date.now() - 3_600_000).toISOString()} where id = ${agentId}`,
      );
    const nextRunAt = async () => (await request('GET', `${apiB}/agents/cloud/${agentId}`, { token: user.accessToken })).body.nextRunAt;
    const jobsOfAgent = async () =>
      (await Promise.all(runQueues.map((queue) => queue.getJobs(['waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed']))))
        .flat()
        .filter((job) => job.data.agentId === agentId);
    try {
      await setTier(apiA, admin, user.id, { tier: 'free' });
      await makeDue();
      await scheduler.tick(new Date());
      // Skipped (by this scheduler or node A's own): the schedule moved on and nothing was queued.
      expect(Date.parse(await nextRunAt())).toBeGreaterThan(Date.now());
      expect(await jobsOfAgent()).toHaveLength(0);

      await setTier(apiA, admin, user.id, { tier: 'pro' });
      await makeDue();
      await scheduler.tick(new Date());
      expect(await eventually(jobsOfAgent, (jobs) => jobs.length === 1)).toHaveLength(1);
    } finally {
      await scheduler.stop();
      await Promise.all(runQueues.map((queue) => queue.close()));
      await queues.close();
      await redis.quit();
    }
  }, 60_000);
});
