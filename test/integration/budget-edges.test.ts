import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDevice } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { count, eq, sql } from 'drizzle-orm';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { CANVAS_TURN_FIXED } from '../../src/ai/prompt-sizes';
import { toolsetTools, turnSystemPrompt, turnToolsets } from '../../src/assistant/turn-prompt';
import { codingSystemPrompt, codingTools, routeCodingAgent } from '../../src/coding/coding-routing';
import { withChatContext } from '../../src/assistant/chat-context';
import { chatMessages, chatSessions, flowExecutions, generations, llmUsage, runs } from '../../src/models/schema';
import { nodeSystemPrompt, type AgentflowNode } from '../../src/flows/definition';
import { JOURNEY_FINISH_TOOL } from '../../src/ai/prompt-sizes';
import { journeySystemPrompt } from '../../src/agents/journey-script';
import { promptTokenBound } from '../../src/budget/budget-door';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { eventually } from '../support/wait';

const PLAN = 'Plan the launch: todos (book venue, invite press, ship beta)';
/** The free plan of the repro: a little more than one generation's first call at the default max_tokens. */
const TOKENS_PER_HOUR = 9_782;

const launchBlocks: ChatTurn = {
  toolCalls: [
    { name: 'create_heading', args: { text: 'Launch plan', level: 1 } },
    { name: 'create_todo', args: { text: 'book venue', checked: false } },
    { name: 'create_todo', args: { text: 'invite press', checked: false } },
    { name: 'create_todo', args: { text: 'ship beta', checked: false } },
  ],
};
const manyBlocks: ChatTurn = {
  toolCalls: Array.from({ length: 40 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })),
};

/**
 * The model: a canvas turn creates the launch's blocks (forty paragraphs for a prompt that asks to
 * be cancelled), the turn after them says it is done (or fails, for a prompt that asks to fail);
 * any other call (chat) answers in a line.
 */
function responder(request: ChatRequest): ChatTurn {
  const canvas = request.tools?.some((tool) => tool.function.name === 'create_todo');
  if (!canvas) return { text: 'Sure, here it is.' };
  const prompt = String(request.messages.find((message) => message.role === 'user')?.content ?? '');
  const first = !request.messages.some((message) => message.role === 'tool');
  if (first && prompt.includes('[poison]')) return { toolCalls: [{ name: 'create_text', args: { text: prompt } }] };
  if (first) return prompt.includes('[long]') ? manyBlocks : launchBlocks;
  if (prompt.includes('[fail]')) return { error: { status: 400, message: 'The model refused the request' } };
  return { text: 'Done.' };
}

/**
 * At every budget edge a request is refused with 429 and nothing written, or served in full (a
 * generation whose later call does not fit ends `truncated` with its blocks); and the ledger
 * (`llm_usage`), the budget (`GET /usage/budget`) and the metrics agree to the token for
 * completed, failed and cancelled runs. One node on real PostgreSQL and Redis, a scripted model
 * over HTTP, the default `max_tokens`.
 */
describe('budget edges: refused before anything is written, or served', () => {
  let t: TestApp;
  let maxTokens: number;

  beforeAll(async () => {
    t = await startTestApp({
      llmDelayMs: 15,
      responder,
      env: {
        TIER_LIMITS: JSON.stringify({
          free: { generationsPerMinute: 100, generationsPerHour: 1_000, concurrentGenerations: 4, tokensPerHour: TOKENS_PER_HOUR },
        }),
      },
    });
    maxTokens = t.app.config.llm.maxTokens;
  }, 60_000);

  afterAll(() => t.stop(), 30_000);

  const setTokensPerHour = (user: TestUser, tokensPerHour: number) =>
    t.app.repos.users.changePlan(user.id, { limitOverrides: { tokensPerHour } }, { actorId: user.id });

  const generate = (user: TestUser, canvasId: string, prompt: string, onMessage?: (message: SseMessage) => void) =>
    readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt },
      onMessage,
      until: (message) => ['complete', 'error', 'cancelled'].includes(message.event ?? ''),
      timeoutMs: 30_000,
    });

  const hour = async (user: TestUser) => {
    const res = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
    expect(res.status).toBe(200);
    return (res.body.windows as Array<{ window: string; usedTokens: number; reservedTokens: number }>).find((w) => w.window === 'hour')!;
  };
  /** Tokens of the user's usage lines: the ledger `GET /usage` reads. */
  const ledger = async (user: TestUser) => {
    const [row] = await t.app.repos.db
      .select({ tokens: sql<number>`coalesce(sum(${llmUsage.inputTokens} + ${llmUsage.outputTokens}), 0)::int` })
      .from(llmUsage)
      .where(eq(llmUsage.userId, user.id));
    return row.tokens;
  };
  /** Every model token the metrics counted (all providers, models, tiers and directions). */
  const metricTokens = async () => {
    const text = (await request('GET', `${t.url}/metrics`)).body as string;
    return [...text.matchAll(/^switchboard_llm_tokens_total\{[^}]*\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
  };
  /** What a refused request must leave as it was. */
  const footprint = async (user: TestUser) => {
    const { db } = t.app.repos;
    const [made] = await db.select({ n: count() }).from(generations).where(eq(generations.userId, user.id));
    const [sessions] = await db.select({ n: count() }).from(chatSessions).where(eq(chatSessions.userId, user.id));
    const [messages] = await db
      .select({ n: count() })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatMessages.sessionId, chatSessions.id))
      .where(eq(chatSessions.userId, user.id));
    const [ran] = await db.select({ n: count() }).from(runs).where(eq(runs.userId, user.id));
    return { generations: made.n, sessions: sessions.n, messages: messages.n, runs: ran.n, modelRequests: t.llm.chatRequests().length };
  };
  /** Ledger = budget = metrics (since `metricsBefore`) = the generation's own record, once nothing is reserved. */
  const expectAgreement = async (user: TestUser, metricsBefore: number, record?: { inputTokens: number; outputTokens: number }) => {
    const window = await eventually(
      () => hour(user),
      (w) => w.reservedTokens === 0,
    );
    const spent = await ledger(user);
    expect(spent).toBeGreaterThan(0);
    expect(window.usedTokens).toBe(spent);
    expect((await metricTokens()) - metricsBefore).toBe(spent);
    if (record) expect(record.inputTokens + record.outputTokens).toBe(spent);
  };
  const generationOf = async (user: TestUser, canvasId: string, generationId: string) =>
    (await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken })).body.generation;

  test('a generation: one token short of its first call is 429 with nothing written; at it, served, and a later call that does not fit ends it truncated with its blocks', async () => {
    const user = await registerUser(t.api, 'Edge');
    const canvasId = await createCanvas(t.api, user);
    // What the worker's first call reserves: the canvas turn's system prompt and tools, the prompt, max_tokens.
    const firstCall = promptTokenBound([PLAN], CANVAS_TURN_FIXED) + maxTokens;

    await setTokensPerHour(user, firstCall - 1);
    const kept = await footprint(user);
    const refused = await generate(user, canvasId, PLAN);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toEqual(
      expect.objectContaining({
        code: 'budget_exceeded',
        details: expect.objectContaining({ window: 'hour', limit: firstCall - 1, used: 0 }),
      }),
    );
    expect(await footprint(user)).toEqual(kept);

    await setTokensPerHour(user, firstCall);
    const metricsBefore = await metricTokens();
    const served = await generate(user, canvasId, PLAN);
    expect(served.status).toBe(200);
    const last = served.messages.at(-1)!;
    // The second call (the first one's blocks and results in its prompt) does not fit what is left:
    // the run ends `complete`, truncated, with every block the user saw.
    expect(last.event).toBe('complete');
    expect(last.data.truncated).toBe(true);
    const streamed = served.messages.filter((m) => m.event === 'tool_output').map((m) => m.data.block.content.text);
    expect(streamed).toEqual(['Launch plan', 'book venue', 'invite press', 'ship beta']);
    expect(last.data.blocks.map((block: { content: { text: string } }) => block.content.text)).toEqual(streamed);
    expect(served.messages.some((m) => m.event === 'rollback')).toBe(false);
    const generationId = served.headers.get('x-generation-id')!;
    const record = await generationOf(user, canvasId, generationId);
    expect(record).toEqual(expect.objectContaining({ status: 'completed', blockCount: 4, truncated: true }));
    await expectAgreement(user, metricsBefore, record.usage);
  }, 60_000);

  test("the issue's repro: sequential generations at tokensPerHour 9782 are each served in full or refused with nothing written", async () => {
    const user = await registerUser(t.api, 'Repro');
    const canvasId = await createCanvas(t.api, user);
    const metricsBefore = await metricTokens();
    const answers: number[] = [];
    for (let i = 0; i < 4 && answers.at(-1) !== 429; i += 1) {
      const kept = await footprint(user);
      const answer = await generate(user, canvasId, PLAN);
      answers.push(answer.status);
      if (answer.status === 429) {
        expect(answer.body.error.code).toBe('budget_exceeded');
        expect(await footprint(user)).toEqual(kept);
      } else {
        expect(answer.status).toBe(200);
        expect(answer.messages.at(-1)).toEqual(expect.objectContaining({ event: 'complete' }));
      }
    }
    expect(answers[0]).toBe(200);
    expect(answers.at(-1)).toBe(429);
    await expectAgreement(user, metricsBefore);
    expect(await ledger(user)).toBeLessThanOrEqual(TOKENS_PER_HOUR);
  }, 60_000);

  test('POST /chat with a device: one token short of its first call is 429 with no session or message; at it, answered', async () => {
    const user = await registerUser(t.api, 'Chatter');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: {},
      reconnection: false,
    });
    try {
      const message = 'What is on my plate today?';
      const toolsets = turnToolsets(message, true);
      const firstCall = promptTokenBound([turnSystemPrompt(toolsets, null), message], toolsetTools(toolsets)) + maxTokens;
      const chat = () => request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message, deviceId: device.deviceId } });

      await setTokensPerHour(user, firstCall - 1);
      const kept = await footprint(user);
      const refused = await chat();
      expect(refused.status).toBe(429);
      expect(refused.body.error).toEqual(expect.objectContaining({ code: 'budget_exceeded' }));
      expect(await footprint(user)).toEqual(kept);

      await setTokensPerHour(user, firstCall);
      const metricsBefore = await metricTokens();
      const answered = await chat();
      expect(answered.status).toBe(200);
      expect(answered.body.response).toBe('Sure, here it is.');
      await expectAgreement(user, metricsBefore);
    } finally {
      device.close();
    }
  }, 60_000);

  test("a device's chat_request: one token short is a budget_exceeded ack with nothing stored; at it, acknowledged and answered", async () => {
    const user = await registerUser(t.api, 'Desktop');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: {},
      reconnection: false,
    });
    try {
      const message = 'Add a task to book the venue';
      const context = { openProject: 'Launch' };
      const toolsets = turnToolsets(message, true);
      const firstCall = promptTokenBound([turnSystemPrompt(toolsets, context), message], toolsetTools(toolsets)) + maxTokens;
      const ask = () => device.socket.timeout(10_000).emitWithAck('chat_request', { message, context });

      await setTokensPerHour(user, firstCall - 1);
      const kept = await footprint(user);
      expect(await ask()).toEqual({ error: expect.objectContaining({ code: 'budget_exceeded' }) });
      expect(await footprint(user)).toEqual(kept);

      await setTokensPerHour(user, firstCall);
      const final = new Promise<{ response: string }>((resolve) => device.socket.once('final', resolve));
      expect(await ask()).toEqual({ sessionId: expect.any(String), messageId: expect.any(String) });
      expect((await final).response).toBe('Sure, here it is.');
      expect((await hour(user)).usedTokens).toBe(await ledger(user));
    } finally {
      device.close();
    }
  }, 60_000);

  test.each(['orchestrator', 'coder'] as const)(
    'POST /chat naming the %s agent: one token short of its first call (the agent’s prompt and tools) is 429 with nothing written; at it, answered',
    async (named) => {
      const user = await registerUser(t.api, named === 'coder' ? 'Coder' : 'Orchestrated');
      const root = await mkdtemp(join(tmpdir(), 'sb-edge-project-'));
      const deviceId = `dev-${randomUUID().slice(0, 8)}`;
      const device = await connectDevice({
        transport: 'socket.io',
        url: t.url,
        token: user.accessToken,
        deviceId,
        project: await projectTools({ root, historyDir: join(root, '..', `${deviceId}-history`) }),
        reconnection: false,
      });
      try {
        await eventually(
          () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
          (res) => res.body.devices?.some((d: { deviceId: string; project: unknown }) => d.deviceId === deviceId && d.project),
        );
        // The Orchestrator keeps a message that names no specialist (and is offered the plan tool); the coder is named.
        const message = named === 'orchestrator' ? 'Hello, tell me about this project' : 'Add a README to the project';
        const agent = routeCodingAgent(named, message);
        expect(agent).toBe(named);
        const context = { openFile: 'src/index.ts' };
        const config = t.app.config.codingAgents[agent];
        const system = withChatContext(codingSystemPrompt(config), context);
        const firstCall = promptTokenBound([system, message], codingTools(agent, config)) + maxTokens;
        // Well above what the old allowance reserved: the edge below would have admitted a turn its first call refuses.
        expect(firstCall).toBeGreaterThan(promptTokenBound([message]) + 1_000 + maxTokens);
        const chat = () =>
          request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message, deviceId, agent: named, context } });

        await setTokensPerHour(user, firstCall - 1);
        const kept = await footprint(user);
        const refused = await chat();
        expect(refused.status).toBe(429);
        expect(refused.body.error).toEqual(expect.objectContaining({ code: 'budget_exceeded' }));
        expect(await footprint(user)).toEqual(kept);

        await setTokensPerHour(user, firstCall);
        const metricsBefore = await metricTokens();
        const answered = await chat();
        expect(answered.status).toBe(200);
        // A request the Orchestrator keeps ends with the server's note that no specialist was chosen.
        expect(answered.body.response).toMatch(
          named === 'orchestrator' ? /^Sure, here it is\.\n\nNo specialist agent was chosen/ : /^Sure, here it is\.$/,
        );
        await expectAgreement(user, metricsBefore);
      } finally {
        device.close();
        await rm(root, { recursive: true, force: true });
      }
    },
    60_000,
  );

  test('a chatflow turn: one token short of its first call (the flow’s prompt and history) is 429 with nothing written; at it, answered', async () => {
    const user = await registerUser(t.api, 'Flowchat');
    const systemPrompt = 'You are a pirate helper. Answer in one line, with a “yo-ho” where it fits.';
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Pirate', definition: { systemPrompt, historyWindow: 2 } },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const chat = (body: Record<string, unknown>) => request('POST', `${t.api}/flows/${flowId}/chat`, { token: user.accessToken, body });
    const opened = await chat({ message: 'Ahoy there' });
    expect(opened.status).toBe(200);
    const { sessionId } = opened.body as { sessionId: string };
    const used = (
      await eventually(
        () => hour(user),
        (w) => w.reservedTokens === 0,
      )
    ).usedTokens;

    // The second turn's first call: the flow's system prompt, the session's last two messages, the new one.
    const message = 'Where be the treasure? 日本語で';
    const firstCall = promptTokenBound([systemPrompt, 'Ahoy there', opened.body.response, message]) + maxTokens;
    // Below what the old allowance reserved: at the edge that count refused a turn that fits.
    expect(firstCall).toBeLessThan(promptTokenBound([message]) + 1_000 + maxTokens);

    await setTokensPerHour(user, used + firstCall - 1);
    const kept = await footprint(user);
    const refused = await chat({ message, sessionId });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'budget_exceeded' }));
    expect(await footprint(user)).toEqual(kept);

    await setTokensPerHour(user, used + firstCall);
    const answered = await chat({ message, sessionId });
    expect(answered.status).toBe(200);
    expect(answered.body.response).toBe('Sure, here it is.');
    expect(
      (
        await eventually(
          () => hour(user),
          (w) => w.reservedTokens === 0,
        )
      ).usedTokens,
    ).toBe(await ledger(user));
  }, 60_000);

  test('a flow execution: one token short of its first node’s call is 429 with no execution written; at it, run to completion', async () => {
    const user = await registerUser(t.api, 'Flowrunner');
    const node: AgentflowNode = { id: 'only', prompt: 'Summarise {{input.topic}} in one line' };
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Summary', definition: { nodes: [node], output: 'only' } },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const execute = () =>
      request('POST', `${t.api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: { topic: 'treasure maps ✓' } } });
    const executions = async () => {
      const [row] = await t.app.repos.db.select({ n: count() }).from(flowExecutions).where(eq(flowExecutions.userId, user.id));
      return row.n;
    };
    // The node's call: the node system prompt and the rendered prompt, no tools.
    const firstCall = promptTokenBound([nodeSystemPrompt(node), 'Summarise treasure maps ✓ in one line']) + maxTokens;

    await setTokensPerHour(user, firstCall - 1);
    const kept = { ...(await footprint(user)), executions: await executions() };
    const refused = await execute();
    expect(refused.status).toBe(429);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'budget_exceeded' }));
    expect({ ...(await footprint(user)), executions: await executions() }).toEqual(kept);

    await setTokensPerHour(user, firstCall);
    const started = await execute();
    expect(started.status).toBe(202);
    const done = await eventually(
      () => request('GET', `${t.api}/flows/${flowId}/executions/${started.body.executionId}`, { token: user.accessToken }),
      (res) => ['completed', 'failed'].includes(res.body.execution?.status),
    );
    expect(done.body.execution).toMatchObject({ status: 'completed', output: 'Sure, here it is.' });
    expect(
      (
        await eventually(
          () => hour(user),
          (w) => w.reservedTokens === 0,
        )
      ).usedTokens,
    ).toBe(await ledger(user));
  }, 60_000);

  test('a journey’s third answer: one token short of its first call (prompt, exchanges, finish tool) is 429 with nothing written; at it, answered', async () => {
    const user = await registerUser(t.api, 'Journeyer');
    const started = await request('POST', `${t.api}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['tasks'] },
    });
    expect(started.status).toBe(201);
    const sessionId = started.body.sessionId as string;
    const send = (message: string) =>
      request('POST', `${t.api}/agents/journey/message`, { token: user.accessToken, body: { sessionId, message } });
    const exchanges = [started.body.message as string];
    for (const answer of ['Plain-text logs', 'Error lines become tasks']) {
      const reply = await send(answer);
      expect(reply.status).toBe(200);
      exchanges.push(answer, reply.body.message);
    }
    const used = (
      await eventually(
        () => hour(user),
        (w) => w.reservedTokens === 0,
      )
    ).usedTokens;
    const view = async () => (await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken })).body;

    // The third answer's first call: the journey's system prompt, the exchanges so far, the answer, and the finish tool.
    const answer = 'FATAL means high priority ✓';
    const firstCall = promptTokenBound([journeySystemPrompt('local', ['tasks']), ...exchanges, answer], JOURNEY_FINISH_TOOL) + maxTokens;
    await setTokensPerHour(user, used + firstCall - 1);
    const kept = { ...(await footprint(user)), journey: await view() };
    const refused = await send(answer);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'budget_exceeded' }));
    expect({ ...(await footprint(user)), journey: await view() }).toEqual(kept);

    await setTokensPerHour(user, used + firstCall);
    const answered = await send(answer);
    expect(answered.status).toBe(200);
    expect(answered.body).toEqual(expect.objectContaining({ sessionId, turn: 3 }));
    expect(
      (
        await eventually(
          () => hour(user),
          (w) => w.reservedTokens === 0,
        )
      ).usedTokens,
    ).toBe(await ledger(user));
  }, 60_000);

  test('a completed generation: ledger, budget, metrics and its record agree to the token', async () => {
    const user = await registerUser(t.api, 'Completed');
    const canvasId = await createCanvas(t.api, user);
    await setTokensPerHour(user, 1_000_000);
    const metricsBefore = await metricTokens();
    const done = await generate(user, canvasId, PLAN);
    expect(done.messages.at(-1)).toEqual(
      expect.objectContaining({ event: 'complete', data: expect.objectContaining({ truncated: false }) }),
    );
    const record = await generationOf(user, canvasId, done.headers.get('x-generation-id')!);
    await expectAgreement(user, metricsBefore, record.usage);
  }, 60_000);

  test('a failed generation: the calls it made before failing are in the ledger, the budget, the metrics and its record', async () => {
    const user = await registerUser(t.api, 'Failed');
    const canvasId = await createCanvas(t.api, user);
    await setTokensPerHour(user, 1_000_000);
    const metricsBefore = await metricTokens();
    const failed = await generate(user, canvasId, `${PLAN} [fail]`);
    expect(failed.messages.at(-1)).toEqual(
      expect.objectContaining({ event: 'error', data: expect.objectContaining({ code: 'llm_unavailable' }) }),
    );
    const record = await generationOf(user, canvasId, failed.headers.get('x-generation-id')!);
    expect(record.status).toBe('failed');
    await expectAgreement(user, metricsBefore, record.usage);
  }, 60_000);

  test('a generation whose blocks the database refuses on every attempt: each attempt’s calls are in the ledger, the budget and the metrics', async () => {
    const user = await registerUser(t.api, 'Retried');
    const canvasId = await createCanvas(t.api, user);
    await setTokensPerHour(user, 1_000_000);
    const poison = `${PLAN} [poison] ${randomUUID()}`;
    const { db } = t.app.repos;
    // A real database fault: this one block's insert is refused, so the run's end fails and the job is retried.
    const fn = `refuse_${randomUUID().replaceAll('-', '')}`;
    await db.execute(
      sql.raw(`create function ${fn}() returns trigger language plpgsql as $$ begin
        if new.content->>'text' = '${poison}' then raise exception 'refused by the test'; end if; return new; end $$`),
    );
    await db.execute(sql.raw(`create trigger ${fn} before insert on blocks for each row execute function ${fn}()`));
    try {
      const metricsBefore = await metricTokens();
      const requestsBefore = t.llm.chatRequests().length;
      const failed = await generate(user, canvasId, poison);
      expect(failed.messages.at(-1)).toEqual(
        expect.objectContaining({ event: 'error', data: expect.objectContaining({ code: 'generation_failed' }) }),
      );
      // Three attempts, each of two model calls.
      expect(t.llm.chatRequests().length - requestsBefore).toBe(6);
      await expectAgreement(user, metricsBefore);
      const lines = await db.select({ id: llmUsage.id }).from(llmUsage).where(eq(llmUsage.userId, user.id));
      expect(lines).toHaveLength(3);
    } finally {
      await db.execute(sql.raw(`drop trigger ${fn} on blocks`));
      await db.execute(sql.raw(`drop function ${fn}()`));
    }
  }, 60_000);

  test('a cancelled generation: what it cost up to the cancel is in the ledger, the budget, the metrics and its record', async () => {
    const user = await registerUser(t.api, 'Cancelled');
    const canvasId = await createCanvas(t.api, user);
    await setTokensPerHour(user, 1_000_000);
    const metricsBefore = await metricTokens();
    let cancelled: Promise<unknown> | undefined;
    const sse = await generate(user, canvasId, `${PLAN} [long]`, (message) => {
      if (message.event === 'tool_output' && !cancelled)
        cancelled = request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${message.data.generationId}/cancel`, {
          token: user.accessToken,
        });
    });
    await cancelled;
    expect(sse.messages.at(-1)?.event).toBe('cancelled');
    const record = await generationOf(user, canvasId, sse.headers.get('x-generation-id')!);
    expect(record.status).toBe('cancelled');
    await expectAgreement(user, metricsBefore, record.usage);
  }, 60_000);
});
