import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { count, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { extractionFirstCall } from '../../src/agents/extraction-prompt';
import { AgentScheduler } from '../../src/agents/scheduler';
import { turnSystemPrompt } from '../../src/assistant/turn-prompt';
import { LimitsResolver } from '../../src/auth/limits';
import { BudgetDoor, promptTokenBound } from '../../src/budget/budget-door';
import { FLOW_NODE_SYSTEM } from '../../src/flows/definition';
import { createLogger } from '../../src/lib/logger';
import { agentRuns, chatMessages, chatSessions, flowExecutions, llmUsage, mcpServers, runs } from '../../src/models/schema';
import { bullPrefix, QueueRegistry } from '../../src/producers/registry';
import type { QueueName } from '../../config';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { testRedisConnections, TestQueue } from '../support/redis';
import { eventually } from '../support/wait';
import { serveMcpTools } from '../support/mcp-tool-server';

const ANSWER = 'Sure, here it is.';

/**
 * The model: an extraction call records one task per `TODO:` line of its document; any other call
 * (an agentflow node, an assistant turn) answers in a line without calling a tool.
 */
function responder(request: ChatRequest): ChatTurn {
  if (request.tools?.some((tool) => tool.function.name === 'record_items')) {
    const document = String(request.messages.find((message) => message.role === 'user')?.content ?? '');
    const items = [...document.matchAll(/^TODO: (.+)$/gm)].map((match) => ({ type: 'tasks', title: match[1] }));
    return { toolCalls: [{ name: 'record_items', args: { items } }] };
  }
  return { text: ANSWER };
}

/**
 * An MCP server (the SDK's, over stateless Streamable HTTP) with two safe tools; the description of
 * `lookup_order` can grow while the test runs, as a server's tools change between two listings.
 */
async function startToolServer() {
  const initial = { lookupDescription: 'Finds an order by its id', listRefund: true };
  const state = { ...initial };
  const served = await serveMcpTools('shop', (server) => {
    server.registerTool('lookup_order', { description: state.lookupDescription, inputSchema: { orderId: z.string() } }, async () => ({
      content: [{ type: 'text', text: 'shipped' }],
    }));
    if (state.listRefund)
      server.registerTool(
        'refund',
        { description: 'Refunds an order', inputSchema: { orderId: z.string(), reason: z.string() } },
        async () => ({
          content: [{ type: 'text', text: 'refunded' }],
        }),
      );
  });
  return {
    state,
    /** Lists the tools as they were at the start. */
    reset: () => Object.assign(state, initial),
    origin: served.origin,
    close: served.close,
  };
}

/** The texts a model request carried, as the gateway counts a prompt: each message's content and each tool's definition. */
const sentTexts = (request: ChatRequest) => [
  ...request.messages.map((message) => (typeof message.content === 'string' ? message.content : JSON.stringify(message.content))),
  ...(request.tools ?? []).map((tool) => JSON.stringify(tool)),
];
const toolNames = (request: ChatRequest) => (request.tools ?? []).map((tool) => tool.function.name);

/**
 * At the budget edge of the three paths whose first model call carries parts the request cannot
 * read whole (an agent run's document, a flow node's tools, the user's MCP servers' tools): one
 * token short of what the request reserves is 429 with nothing written and nothing queued; at it,
 * the request is served and its first call, as the model received it, fits what was reserved. One
 * node on real PostgreSQL and Redis, a scripted model and a real MCP server over HTTP.
 */
describe('budget edges of agent runs, flow nodes with tools and MCP tools', () => {
  let t: TestApp;
  let tools: Awaited<ReturnType<typeof startToolServer>>;
  let maxTokens: number;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    tools = await startToolServer();
    t = await startTestApp({
      responder,
      env: {
        // No scheduler role: the test's own scheduler is the only one that ticks.
        SWITCHBOARD_ROLES: 'api,worker',
        FLOW_HTTP_PRIVATE_ORIGINS: tools.origin,
        TIER_LIMITS: JSON.stringify({ free: { tokensPerHour: 1_000_000, agentRunsPerMinute: 100, flowExecutionsPerMinute: 100 } }),
      },
    });
    maxTokens = t.app.config.llm.maxTokens;
  }, 60_000);
  afterEach(() => {
    for (const device of devices.splice(0)) device.close();
    tools.reset();
  });
  afterAll(async () => {
    await t?.stop();
    await tools?.close();
  }, 30_000);

  const setTokensPerHour = (user: TestUser, tokensPerHour: number) =>
    t.app.repos.users.changePlan(user.id, { limitOverrides: { tokensPerHour } }, { actorId: user.id });
  /** The hour window once nothing is reserved: every run the user started has ended. */
  const settledHour = (user: TestUser) =>
    eventually(
      async () => {
        const res = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
        return (res.body.windows as Array<{ window: string; usedTokens: number; reservedTokens: number }>).find(
          (w) => w.window === 'hour',
        )!;
      },
      (window) => window.reservedTokens === 0,
    );
  const ledger = async (user: TestUser) => {
    const [row] = await t.app.repos.db
      .select({ tokens: sql<number>`coalesce(sum(${llmUsage.inputTokens} + ${llmUsage.outputTokens}), 0)::int` })
      .from(llmUsage)
      .where(eq(llmUsage.userId, user.id));
    return row.tokens;
  };
  /** The user's jobs on `queue`, in every state. */
  const queued = async (queue: QueueName, user: TestUser) => {
    const bull = new TestQueue(queue, bullPrefix(t.keyPrefix));
    try {
      const jobs = await bull.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
      return jobs.filter((job) => job?.data?.userId === user.id).length;
    } finally {
      await bull.close();
    }
  };
  /** What a refused request must leave as it was: its rows, its queue's jobs, the model's requests. */
  const footprint = async (user: TestUser, queue: QueueName) => {
    const { db } = t.app.repos;
    const rows = async (table: typeof runs | typeof agentRuns | typeof flowExecutions | typeof chatSessions) =>
      (await db.select({ n: count() }).from(table).where(eq(table.userId, user.id)))[0].n;
    const [messages] = await db
      .select({ n: count() })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatMessages.sessionId, chatSessions.id))
      .where(eq(chatSessions.userId, user.id));
    return {
      runs: await rows(runs),
      agentRuns: await rows(agentRuns),
      executions: await rows(flowExecutions),
      sessions: await rows(chatSessions),
      messages: messages.n,
      jobs: await queued(queue, user),
      modelRequests: t.llm.chatRequests().length,
    };
  };
  const expectBudgetExceeded = (res: { status: number; body: any }) => {
    expect(res.status).toBe(429);
    expect(res.body.error).toEqual(expect.objectContaining({ code: 'budget_exceeded' }));
  };
  const registerShop = async (user: TestUser, name: string) => {
    const res = await request('POST', `${t.api}/mcp-servers`, {
      token: user.accessToken,
      body: { name, url: `${tools.origin}/mcp`, allowedTools: ['lookup_order', 'refund'], safeTools: ['lookup_order', 'refund'] },
    });
    expect(res.status).toBe(201);
    return res.body.mcpServer.id as string;
  };
  const recordedSizes = async (serverId: string) =>
    (await t.app.repos.db.select({ sizes: mcpServers.toolSizes }).from(mcpServers).where(eq(mcpServers.id, serverId)))[0].sizes;

  describe('agent runs: the first call is reserved at the largest document it may read', () => {
    const agentBody = (deviceId: string) => ({
      name: 'Inbox',
      deviceId,
      directoryPaths: ['/notes'],
      dataTypes: ['tasks'],
      promptTemplate: 'Extract tasks: every line starting with TODO is one. Überall ✓',
      fileExtensions: ['.txt'],
    });
    const connect = async (user: TestUser, deviceId: string) => {
      const device = await DeviceSimulator.connect({
        url: t.url,
        accessToken: user.accessToken,
        deviceId,
        reconnection: false,
        readAgentFiles: async () => ({
          files: [{ path: '/notes/acme.txt', name: 'acme.txt', content: 'Call with ACME\nTODO: Send the quote\n' }],
        }),
      });
      devices.push(device);
      return device;
    };
    const reservedFor = (agent: ReturnType<typeof agentBody>) => {
      const first = extractionFirstCall(agent);
      return promptTokenBound(first.texts, first.fixed) + maxTokens;
    };

    test('a manual run: one token short is 429 with no run written or queued; at it, the run delivers and its first call fits', async () => {
      const user = await registerUser(t.api, 'AgentEdge');
      const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
      const device = await connect(user, deviceId);
      const body = agentBody(deviceId);
      const created = await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body });
      expect(created.status).toBe(201);
      const run = () => request('POST', `${t.api}/agents/${created.body.id}/run`, { token: user.accessToken });
      const reserved = reservedFor(body);

      await setTokensPerHour(user, reserved - 1);
      const kept = await footprint(user, 'agent-runs');
      expectBudgetExceeded(await run());
      expect(await footprint(user, 'agent-runs')).toEqual(kept);
      expect(device.agentRuns).toHaveLength(0);

      await setTokensPerHour(user, reserved);
      const requestsBefore = t.llm.chatRequests().length;
      const started = await run();
      expect(started.status).toBe(202);
      const done = await eventually(
        () => request('GET', `${t.api}/agents/runs?agentId=${created.body.id}`, { token: user.accessToken }),
        (res) => res.body.runs?.[0]?.completedAt != null,
      );
      expect(done.body.runs[0]).toMatchObject({ status: 'success', itemsProcessed: 1, itemsCreated: 1 });
      // The first call as the model received it: the system prompt, the document and the tool, within the reservation.
      const [first] = t.llm.chatRequests().slice(requestsBefore);
      expect(toolNames(first)).toEqual(['record_items']);
      expect(promptTokenBound(sentTexts(first)) + maxTokens).toBeLessThanOrEqual(reserved);
      expect((await settledHour(user)).usedTokens).toBe(await ledger(user));
    }, 60_000);

    test('a scheduled run: one token short skips its slot with nothing written or queued; at it, the run is queued', async () => {
      const { repos, config } = t.app;
      const redis = testRedisConnections();
      await redis.ready();
      const logger = createLogger({ level: 'silent' });
      const budget = new BudgetDoor({
        redis: redis.cache.command,
        keyPrefix: t.keyPrefix,
        limits: new LimitsResolver({ users: repos.users, tiers: config.tiers }),
        usage: repos.usage,
        logger,
        calls: { maxTokens, pricing: config.llm.pricing, defaultModel: config.llm.model },
      });
      const queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
      const scheduler = new AgentScheduler({ repos, enqueue: queues.enqueue, logger, tick: '* * * * *', budget });
      try {
        const user = await registerUser(t.api, 'SchedEdge');
        const body = { ...agentBody(`offline-${randomUUID().slice(0, 6)}`), scheduleCron: '0 */6 * * *' };
        const created = await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body });
        expect(created.status).toBe(201);
        const due = () =>
          repos.db.execute(sql`update local_agents set next_run_at = now() - interval '1 day' where id = ${created.body.id}`);
        const reserved = reservedFor(body);

        await setTokensPerHour(user, reserved - 1);
        await due();
        const kept = await footprint(user, 'agent-runs');
        expect(await scheduler.tick()).toBe(0);
        expect(await footprint(user, 'agent-runs')).toEqual(kept);

        await setTokensPerHour(user, reserved);
        await due();
        expect(await scheduler.tick()).toBe(1);
        // Its device is offline: the run waits, and gives back the reservation its slot took.
        await eventually(
          () => request('GET', `${t.api}/agents/runs?agentId=${created.body.id}`, { token: user.accessToken }),
          (res) => res.body.runs?.[0]?.status === 'waiting_device',
        );
        expect(await queued('agent-runs', user)).toBe(kept.jobs + 1);
        expect((await settledHour(user)).usedTokens).toBe(0);
      } finally {
        await scheduler.stop();
        await queues.close();
        await redis.quit();
      }
    }, 60_000);
  });

  test('a flow whose first node has device, HTTP and MCP tools: one token short is 429 with nothing written or queued; at it, run to completion', async () => {
    const user = await registerUser(t.api, 'FlowTools');
    const server = `shop_${randomUUID().slice(0, 6).replace(/-/g, '')}`;
    const serverId = await registerShop(user, server);
    const definition = {
      deviceId: 'desk-1',
      allowedOrigins: [tools.origin],
      httpTools: [{ name: 'weather', description: 'Today’s weather “here”', method: 'GET', url: `${tools.origin}/weather` }],
      nodes: [{ id: 'plan', prompt: 'Plan {{input.topic}} ✓', tools: ['list_tasks', 'weather', `mcp__${server}__lookup_order`] }],
      output: 'plan',
    };
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Planner', definition },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const execute = () =>
      request('POST', `${t.api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: { topic: 'the launch' } } });
    const completed = (executionId: string) =>
      eventually(
        () => request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken }),
        (res) => ['completed', 'failed'].includes(res.body.execution?.status),
      );
    const firstCallOf = (from: number) =>
      t.llm
        .chatRequests()
        .slice(from)
        .find((r) => r.messages[0]?.content === FLOW_NODE_SYSTEM && r.messages[1]?.content === 'Plan the launch ✓')!;

    // The server was never listed: the request counted no MCP tool, the worker's listing was larger,
    // and the budget had room, so the reservation was widened and the node offered every tool.
    let from = t.llm.chatRequests().length;
    const primed = await execute();
    expect(primed.status).toBe(202);
    expect((await completed(primed.body.executionId)).body.execution.status).toBe('completed');
    const sent = firstCallOf(from);
    expect(toolNames(sent)).toEqual(['list_tasks', 'weather', `mcp__${server}__lookup_order`]);
    // The listing recorded the tool's size as the model received its definition.
    const mcpDefinition = JSON.stringify(sent.tools![2]);
    expect(await recordedSizes(serverId)).toEqual({ lookup_order: Buffer.byteLength(mcpDefinition, 'utf8') });
    const used = (await settledHour(user)).usedTokens;
    expect(used).toBe(await ledger(user));

    // The same first call again, all of it known to the request now.
    const firstCall = promptTokenBound(sentTexts(sent)) + maxTokens;
    await setTokensPerHour(user, used + firstCall - 1);
    const kept = await footprint(user, 'flows');
    expectBudgetExceeded(await execute());
    expect(await footprint(user, 'flows')).toEqual(kept);

    await setTokensPerHour(user, used + firstCall);
    from = t.llm.chatRequests().length;
    const served = await execute();
    expect(served.status).toBe(202);
    expect((await completed(served.body.executionId)).body.execution).toMatchObject({ status: 'completed', output: ANSWER });
    expect(sentTexts(firstCallOf(from))).toEqual(sentTexts(sent));
    expect((await settledHour(user)).usedTokens).toBe(await ledger(user));
  }, 60_000);

  test('an assistant turn of a user with an MCP server: one token short is 429 with nothing written; at it, answered with every tool; a grown tool is left out rather than the turn refused', async () => {
    const user = await registerUser(t.api, 'McpChat');
    const server = `shop_${randomUUID().slice(0, 6).replace(/-/g, '')}`;
    const serverId = await registerShop(user, server);
    const chat = (body: Record<string, unknown>) => request('POST', `${t.api}/chat`, { token: user.accessToken, body });
    const turnsFrom = (from: number) => t.llm.chatRequests().slice(from);

    // The first turn lists the server (never listed: widened, every tool offered) and records its tools' sizes.
    let from = t.llm.chatRequests().length;
    const opened = await chat({ message: 'Hello there' });
    expect(opened.status).toBe(200);
    const sessionId = opened.body.sessionId as string;
    const [primed] = turnsFrom(from);
    expect(toolNames(primed)).toEqual([`mcp__${server}__lookup_order`, `mcp__${server}__refund`]);
    const definitions = primed.tools!.map((tool) => JSON.stringify(tool));
    expect(await recordedSizes(serverId)).toEqual({
      lookup_order: Buffer.byteLength(definitions[0], 'utf8'),
      refund: Buffer.byteLength(definitions[1], 'utf8'),
    });

    // The next turn's first call: no device, so the plain system prompt, the two earlier messages, the message and the MCP tools.
    const history = ['Hello there', ANSWER];
    const firstCall = (message: string, tools: string[]) =>
      promptTokenBound([turnSystemPrompt([], null), ...history, message, ...tools]) + maxTokens;
    let used = (await settledHour(user)).usedTokens;
    const message = 'Where is order 42? 日本語で';
    await setTokensPerHour(user, used + firstCall(message, definitions) - 1);
    const kept = await footprint(user, 'assistant');
    expectBudgetExceeded(await chat({ message, sessionId }));
    expect(await footprint(user, 'assistant')).toEqual(kept);

    await setTokensPerHour(user, used + firstCall(message, definitions));
    from = t.llm.chatRequests().length;
    const answered = await chat({ message, sessionId });
    expect(answered.status).toBe(200);
    expect(answered.body.response).toBe(ANSWER);
    const [served] = turnsFrom(from);
    expect(promptTokenBound(sentTexts(served)) + maxTokens).toBe(firstCall(message, definitions));
    used = (await settledHour(user)).usedTokens;
    expect(used).toBe(await ledger(user));
    history.push(message, ANSWER);

    // The server grows a tool's description: the request counts the recorded (smaller) size, and the
    // budget has no room for more. The turn is answered, without the grown tool.
    tools.state.lookupDescription = `Finds an order by its id. ${'Orders ship within two days; '.repeat(30)}`;
    // A changed definition is offered only once its owner approved it.
    expect((await request('POST', `${t.api}/mcp-servers/${serverId}/tools/approve`, { token: user.accessToken })).status).toBe(200);
    const next = 'And order 43?';
    await setTokensPerHour(user, used + firstCall(next, definitions));
    from = t.llm.chatRequests().length;
    const trimmed = await chat({ message: next, sessionId });
    expect(trimmed.status).toBe(200);
    expect(trimmed.body.response).toBe(ANSWER);
    const [narrow] = turnsFrom(from);
    expect(toolNames(narrow)).toEqual([`mcp__${server}__refund`]);
    expect(promptTokenBound(sentTexts(narrow)) + maxTokens).toBeLessThanOrEqual(firstCall(next, definitions));
    used = (await settledHour(user)).usedTokens;
    expect(used).toBe(await ledger(user));
    history.push(next, ANSWER);
    // Its listing recorded the new size: the next request counts it, and at that edge offers both tools.
    const grown = (await recordedSizes(serverId)).lookup_order;
    expect(grown).toBeGreaterThan(Buffer.byteLength(definitions[0], 'utf8') + 700);

    const last = 'Thanks!';
    const grownCall = firstCall(last, ['x'.repeat(grown), definitions[1]]);
    await setTokensPerHour(user, used + grownCall - 1);
    const keptLast = await footprint(user, 'assistant');
    expectBudgetExceeded(await chat({ message: last, sessionId }));
    expect(await footprint(user, 'assistant')).toEqual(keptLast);
    await setTokensPerHour(user, used + grownCall);
    from = t.llm.chatRequests().length;
    expect((await chat({ message: last, sessionId })).status).toBe(200);
    const [full] = turnsFrom(from);
    expect(toolNames(full)).toEqual([`mcp__${server}__lookup_order`, `mcp__${server}__refund`]);
    expect(promptTokenBound(sentTexts(full)) + maxTokens).toBe(grownCall);
    expect((await settledHour(user)).usedTokens).toBe(await ledger(user));

    // A tool the server no longer lists leaves the record with it.
    tools.state.listRefund = false;
    await setTokensPerHour(user, 1_000_000);
    from = t.llm.chatRequests().length;
    expect((await chat({ message: 'Bye', sessionId })).status).toBe(200);
    expect(toolNames(turnsFrom(from)[0])).toEqual([`mcp__${server}__lookup_order`]);
    expect(await recordedSizes(serverId)).toEqual({ lookup_order: grown });
  }, 60_000);
});
