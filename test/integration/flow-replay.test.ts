import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { AdminDirectory } from '../../src/auth/admins';
import { rowsOf } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * Replay from a step: an ended execution re-run from one of its nodes with a changed prompt, model
 * or input, as a new execution of a draft version; every node it does not re-run keeps the output
 * the execution committed and calls no model (counted at the scripted model server and in the
 * usage ledger); its events stream like any execution's; the draft is published through the
 * versions' publish. Bad input is refused with nothing saved or run.
 */

/** A node's tag: its prompt starts with `[tag]`. */
const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';
const promptOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });

/** facts → summary → title, and tags beside summary (it reads facts only). */
const brief = {
  nodes: [
    { id: 'facts', prompt: '[facts] facts about {{input.topic}}' },
    { id: 'summary', prompt: '[summary] summarize {{nodes.facts.output}}', dependsOn: ['facts'] },
    { id: 'tags', prompt: '[tags] tags for {{nodes.facts.output}}', dependsOn: ['facts'] },
    { id: 'title', prompt: '[title] title for {{nodes.summary.output}} in {{input.style}}', dependsOn: ['summary'] },
  ],
  output: 'title',
};

describe('replay an execution from a step', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  /** Every model request: its tag and its prompt. */
  const calls: Array<{ tag: string; prompt: string; model: string }> = [];
  /** Node `slow` waits for this while set (an execution held mid-way). */
  let hold: Promise<void> | null = null;

  beforeAll(async () => {
    t = await startTestApp({
      // A second model a replay may switch a node to.
      env: { LLM_FALLBACK_MODELS: 'scripted-large' },
      responder: async (req): Promise<ChatTurn> => {
        const tag = tagOf(req);
        calls.push({ tag, prompt: promptOf(req), model: req.model });
        if (tag === 'slow' && hold) await hold;
        return { text: `out(${tag}:${calls.filter((call) => call.tag === tag).length})` };
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(() => t.stop());

  const api = (method: string, user: TestUser, pathname: string, body?: unknown) =>
    request(method, `${t.api}${pathname}`, { token: user.accessToken, body });
  const createFlow = async (user: TestUser, definition: unknown): Promise<string> => {
    const res = await api('POST', user, '/flows', { type: 'agentflow', name: `Replay ${randomUUID().slice(0, 6)}`, definition });
    expect(res.status).toBe(201);
    return res.body.flow.id;
  };
  const finished = (user: TestUser, flowId: string, executionId: string) =>
    eventually(
      () => api('GET', user, `/flows/${flowId}/executions/${executionId}`),
      (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
      20_000,
    );
  const run = async (user: TestUser, flowId: string, input: Record<string, unknown>) => {
    const started = await api('POST', user, `/flows/${flowId}/execute`, { input });
    expect(started.status).toBe(202);
    const done = await finished(user, flowId, started.body.executionId);
    expect(done.body.execution.status).toBe('completed');
    return done.body.execution as { id: string; nodes: Array<{ id: string; output: unknown }> };
  };
  /** Rows of the usage ledger: one per model call the user paid for. */
  const ledgerRows = async (user: TestUser) =>
    rowsOf<{ n: number }>(await t.app.repos.db.execute(sql`select count(*)::int as n from llm_usage where user_id = ${user.id}`))[0].n;
  /** What a refused replay must leave unchanged: executions, versions, ledger rows and model calls. */
  const footprint = async (user: TestUser, flowId: string) => ({
    executions: (await api('GET', user, `/flows/${flowId}/executions?limit=200`)).body.executions.length,
    latestVersion: (await api('GET', user, `/flows/${flowId}`)).body.flow.latestVersion,
    ledger: await ledgerRows(user),
    calls: calls.length,
  });

  test('a replay from a middle node re-runs it and what follows; upstream outputs are reused, with no model call or ledger row', async () => {
    const flowId = await createFlow(ada, brief);
    const original = await run(ada, flowId, { topic: 'octopuses', style: 'plain' });
    const outputOf = (id: string) => original.nodes.find((node) => node.id === id)!.output;
    const ledgerBefore = await ledgerRows(ada);
    const callsBefore = calls.length;

    const sse = await readSse(`${t.api}/flows/${flowId}/executions/${original.id}/replay/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { fromNode: 'summary', changes: { prompt: '[summary2] one line: {{nodes.facts.output}}' } },
      timeoutMs: 30_000,
    });

    expect(sse.status).toBe(200);
    const replayId = sse.headers.get('x-execution-id')!;
    expect(replayId).not.toBe(original.id);
    expect(sse.headers.get('x-flow-version')).toBe('2');
    // The reviewer's stream: the start names its source, reused nodes come first, then the nodes that run.
    expect(sse.messages.map((m) => (m.data.nodeId ? `${m.event}:${m.data.nodeId}` : m.event))).toEqual([
      'execution_started',
      'node_completed:facts',
      'node_completed:tags',
      'node_started:summary',
      'node_completed:summary',
      'node_started:title',
      'node_completed:title',
      'execution_completed',
    ]);
    expect(sse.messages.map((m) => Number(m.id))).toEqual(sse.messages.map((_, i) => i + 1));
    expect(sse.messages[0].data).toMatchObject({ flowId, replayOf: { executionId: original.id, fromNode: 'summary' } });
    const reusedFacts = sse.messages[1].data;
    expect(reusedFacts).toMatchObject({ reused: true, output: outputOf('facts'), usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } });
    expect(sse.messages.at(-1)!.data.output).toBe('out(title:2)');

    // Only summary (with its new prompt, reading facts' committed output) and title reached the model.
    const replayCalls = calls.slice(callsBefore);
    expect(replayCalls.map((call) => call.tag).sort()).toEqual(['summary2', 'title']);
    expect(replayCalls.find((call) => call.tag === 'summary2')!.prompt).toBe(`[summary2] one line: ${String(outputOf('facts'))}`);
    expect(await ledgerRows(ada)).toBe(ledgerBefore + 2);

    const view = (await api('GET', ada, `/flows/${flowId}/executions/${replayId}`)).body.execution;
    expect(view).toMatchObject({ status: 'completed', flowVersion: 2, replayOf: { executionId: original.id, fromNode: 'summary' } });
    const node = (id: string) => view.nodes.find((n: { id: string }) => n.id === id);
    for (const id of ['facts', 'tags']) {
      expect(node(id)).toMatchObject({ status: 'completed', reused: true, attempts: 0, output: outputOf(id), startedAt: null });
      expect(node(id).usage).toMatchObject({ inputTokens: 0, outputTokens: 0, costUsd: 0 });
    }
    for (const id of ['summary', 'title']) expect(node(id)).toMatchObject({ status: 'completed', reused: false, attempts: 1 });
    // The replay costs only what it ran.
    expect(view.usage.inputTokens).toBe(node('summary').usage.inputTokens + node('title').usage.inputTokens);
    // The original is untouched.
    const before = (await api('GET', ada, `/flows/${flowId}/executions/${original.id}`)).body.execution;
    expect(before).toMatchObject({ flowVersion: 1, replayOf: null, output: original.nodes.find((n) => n.id === 'title')!.output });

    // The change is a draft: saved as version 2, not published.
    const flow = (await api('GET', ada, `/flows/${flowId}`)).body.flow;
    expect(flow).toMatchObject({ publishedVersion: 1, latestVersion: 2 });
    const draft = (await api('GET', ada, `/flows/${flowId}/versions/2`)).body.version;
    expect(draft.published).toBe(false);
    expect(draft.definition.nodes[1].prompt).toBe('[summary2] one line: {{nodes.facts.output}}');
    expect(draft.definition.nodes[0]).toEqual(flow.definition.nodes[0]);

    // Publish the winner: new executions run it.
    const published = await api('POST', ada, `/flows/${flowId}/versions/2/publish`);
    expect(published.status).toBe(200);
    expect(published.body.flow.publishedVersion).toBe(2);
    const afterPublish = calls.length;
    await run(ada, flowId, { topic: 'squids', style: 'plain' });
    expect(calls.slice(afterPublish).map((call) => call.tag)).toContain('summary2');
  });

  test("a replay with a new model and input keeps the execution's version when the definition is unchanged, and a new one when not", async () => {
    const flowId = await createFlow(ada, brief);
    const original = await run(ada, flowId, { topic: 'bees', style: 'plain' });

    // The input only: the definition is the execution's, so is its version.
    const same = await api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, {
      fromNode: 'title',
      changes: { input: { style: 'haiku' } },
    });
    expect(same.status).toBe(202);
    expect(same.body).toEqual({ executionId: expect.any(String), flowVersion: 1, draft: false, reusedNodes: ['facts', 'summary', 'tags'] });
    const sameView = (await finished(ada, flowId, same.body.executionId)).body.execution;
    expect(sameView).toMatchObject({ status: 'completed', input: { topic: 'bees', style: 'haiku' } });
    const titleCall = calls.filter((call) => call.tag === 'title').at(-1)!;
    expect(titleCall.prompt).toMatch(/ in haiku$/);
    expect((await api('GET', ada, `/flows/${flowId}`)).body.flow.latestVersion).toBe(1);

    // A new model for title: a new draft, run on that model.
    const models = (await api('GET', ada, '/models')).body.models as Array<{ provider: string; model: string }>;
    const model = models.find((candidate) => candidate.model === 'scripted-large')!;
    expect(model).toBeDefined();
    const other = await api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, { fromNode: 'title', changes: { model } });
    expect(other.status).toBe(202);
    expect(other.body).toMatchObject({ flowVersion: 2, draft: true });
    await finished(ada, flowId, other.body.executionId);
    expect(calls.filter((call) => call.tag === 'title').at(-1)!.model).toBe(model.model);
    // The same change again reuses that draft rather than saving another.
    const again = await api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, { fromNode: 'title', changes: { model } });
    expect(again.body).toMatchObject({ flowVersion: 2, draft: true });
    await finished(ada, flowId, again.body.executionId);
    expect((await api('GET', ada, `/flows/${flowId}`)).body.flow.latestVersion).toBe(2);
  });

  test('refused with nothing saved or run: an unknown node, an invalid change naming its node, an input a reused node reads', async () => {
    const flowId = await createFlow(ada, brief);
    const original = await run(ada, flowId, { topic: 'owls', style: 'plain' });
    // A later version with a node the execution never had.
    const v2 = await api('PATCH', ada, `/flows/${flowId}`, {
      definition: { ...brief, nodes: [...brief.nodes, { id: 'extra', prompt: '[extra] more', dependsOn: ['title'] }] },
    });
    expect(v2.status).toBe(200);
    const before = await footprint(ada, flowId);
    const replay = (body: unknown) => api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, body);

    const cases: Array<[unknown, number, string, { path: string; nodeId?: string; message?: RegExp }]> = [
      [{ fromNode: 'nope' }, 400, 'validation_failed', { path: 'fromNode', nodeId: 'nope', message: /no node "nope"/ }],
      [
        { fromNode: 'extra' },
        400,
        'validation_failed',
        { path: 'fromNode', nodeId: 'extra', message: /published version, not in version 1/ },
      ],
      // A prompt reading a node that is not upstream of it.
      [
        { fromNode: 'summary', changes: { prompt: '[s] {{nodes.title.output}}' } },
        400,
        'validation_failed',
        { path: 'changes.prompt', nodeId: 'summary' },
      ],
      [{ fromNode: 'summary', changes: { prompt: '' } }, 400, 'validation_failed', { path: 'changes.prompt', nodeId: 'summary' }],
      [
        { fromNode: 'summary', changes: { model: { provider: 'nowhere', model: 'nothing' } } },
        400,
        'unknown_model',
        { path: 'changes.model', nodeId: 'summary' },
      ],
      [
        { fromNode: 'summary', changes: { nodeInput: { x: 'y' } } },
        400,
        'validation_failed',
        { path: 'changes.nodeInput', nodeId: 'summary' },
      ],
      // facts reads input.topic and would be reused: its old output would not match the new input.
      [
        { fromNode: 'summary', changes: { input: { topic: 'eagles' } } },
        400,
        'validation_failed',
        { path: 'changes.input.topic', nodeId: 'facts' },
      ],
      [{ fromNode: 'summary', changes: { temperature: 2 } }, 400, 'validation_failed', { path: 'changes' }],
      [{}, 400, 'validation_failed', { path: 'fromNode' }],
    ];
    for (const [body, status, code, detail] of cases) {
      const res = await replay(body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status, code });
      const found = (res.body.error.details as Array<{ path: string; nodeId?: string; message: string }>).find(
        (d) => d.path === detail.path,
      );
      expect({ body, found: !!found }).toEqual({ body, found: true });
      if (detail.nodeId) {
        expect(found!.nodeId).toBe(detail.nodeId);
        expect(res.body.error.message).toContain(`"${detail.nodeId}"`);
      }
      if (detail.message) expect(found!.message).toMatch(detail.message);
    }
    expect(await footprint(ada, flowId)).toEqual(before);
  });

  test("another user's execution is 404; a running execution is 409; a node whose upstream never completed is 409", async () => {
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'slow', prompt: '[slow] start {{input.topic}}' },
        { id: 'next', prompt: '[next] after {{nodes.slow.output}}', dependsOn: ['slow'] },
        { id: 'last', prompt: '[last] after {{nodes.next.output}}', dependsOn: ['next'] },
      ],
      output: 'last',
    });
    const started = await api('POST', ada, `/flows/${flowId}/execute`, { input: { topic: 'x' } });
    const executionId = started.body.executionId as string;
    await eventually(
      () => api('GET', ada, `/flows/${flowId}/executions/${executionId}`),
      (res) => res.body.execution.nodes[0].status === 'running',
    );
    const before = await footprint(ada, flowId);

    const running = await api('POST', ada, `/flows/${flowId}/executions/${executionId}/replay`, { fromNode: 'slow' });
    expect(running.status).toBe(409);
    expect(running.body.error.code).toBe('execution_running');

    // Bob: through Ada's flow, through a flow of his own, or with a bad body: 404, never a 400.
    const bobFlow = await createFlow(bob, brief);
    for (const [flow, body] of [
      [flowId, { fromNode: 'slow' }],
      [bobFlow, { fromNode: 'slow' }],
      [flowId, { fromNode: 42 }],
      [bobFlow, { nonsense: true }],
    ] as const) {
      const res = await api('POST', bob, `/flows/${flow}/executions/${executionId}/replay`, body);
      expect({ flow, body, status: res.status }).toEqual({ flow, body, status: 404 });
    }
    expect((await api('POST', ada, `/flows/${flowId}/executions/${randomUUID()}/replay`, { fromNode: 'slow' })).status).toBe(404);
    expect(await footprint(ada, flowId)).toEqual(before);

    // Cancelled while `slow` ran: `next` never ran, so a replay from it has nothing upstream to reuse.
    expect((await api('POST', ada, `/flows/${flowId}/executions/${executionId}/cancel`)).status).toBe(202);
    await finished(ada, flowId, executionId);
    hold = null;
    release();
    // Whichever node downstream is asked for, the answer names the first one that did not complete.
    for (const fromNode of ['next', 'last']) {
      const notReached = await api('POST', ada, `/flows/${flowId}/executions/${executionId}/replay`, { fromNode });
      expect(notReached.status).toBe(409);
      expect(notReached.body.error).toMatchObject({ code: 'node_not_reached', message: expect.stringContaining('replay from "slow"') });
    }

    // From `slow` itself, the cancelled execution runs again to the end.
    const resumed = await api('POST', ada, `/flows/${flowId}/executions/${executionId}/replay`, { fromNode: 'slow' });
    expect(resumed.status).toBe(202);
    expect(resumed.body).toMatchObject({ flowVersion: 1, draft: false, reusedNodes: [] });
    expect((await finished(ada, flowId, resumed.body.executionId)).body.execution).toMatchObject({
      status: 'completed',
      output: 'out(last:1)',
    });
  });

  test('a node no branch led to is 409; a branch replayed keeps the condition, and an API key that may only read cannot replay', async () => {
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'check', type: 'condition', branches: [{ name: 'big', when: 'input.n > 10', to: ['big'] }], else: ['small'] },
        { id: 'big', prompt: '[big] big {{input.n}}' },
        { id: 'small', prompt: '[small] small {{input.n}}' },
      ],
      output: 'big',
    });
    const original = await run(ada, flowId, { n: 50 });
    const skipped = await api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, { fromNode: 'small' });
    expect(skipped.status).toBe(409);
    expect(skipped.body.error.code).toBe('node_not_reached');
    const onCondition = await api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, {
      fromNode: 'check',
      changes: { prompt: 'x' },
    });
    expect(onCondition.status).toBe(400);
    expect(onCondition.body.error.details[0]).toMatchObject({ path: 'changes.prompt', nodeId: 'check' });

    const replay = await api('POST', ada, `/flows/${flowId}/executions/${original.id}/replay`, {
      fromNode: 'big',
      changes: { prompt: '[big2] bigger {{input.n}}' },
    });
    expect(replay.status).toBe(202);
    expect(replay.body.reusedNodes).toEqual(['check', 'small']);
    const view = (await finished(ada, flowId, replay.body.executionId)).body.execution;
    expect(view.nodes.map((n: { id: string; status: string; reused: boolean }) => [n.id, n.status, n.reused])).toEqual([
      ['check', 'completed', true],
      ['big', 'completed', false],
      ['small', 'skipped', true],
    ]);

    const key = await api('POST', ada, '/api-keys', { name: 'reader', scopes: ['read'] });
    expect(key.status).toBe(201);
    const byKey = await request('POST', `${t.api}/flows/${flowId}/executions/${original.id}/replay`, {
      token: key.body.secret,
      body: { fromNode: 'big' },
    });
    expect(byKey.status).toBe(403);
  });

  test('a replay over the budget is 429 budget_exceeded with no draft saved and nothing run', async () => {
    const admin = await registerUser(t.api, 'Operator');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    const carol = await registerUser(t.api, 'Carol');
    const limits = await request('PUT', `${t.api}/admin/users/${carol.id}/limits`, {
      token: admin.accessToken,
      body: { limits: { requestsPerMonth: 4 } },
    });
    expect(limits.status).toBe(200);
    const flowId = await createFlow(carol, brief);
    // Four nodes, four model requests: the month's allowance is spent.
    const original = await run(carol, flowId, { topic: 'moths', style: 'plain' });
    const before = await footprint(carol, flowId);

    const res = await api('POST', carol, `/flows/${flowId}/executions/${original.id}/replay`, {
      fromNode: 'title',
      changes: { prompt: '[title2] a title for {{nodes.summary.output}}' },
    });
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('budget_exceeded');
    expect(await footprint(carol, flowId)).toEqual(before);
  });
});
