import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

/**
 * Control flow in agentflows, on the real queue workers: conditions and routers skip the branches
 * they do not take, foreach runs one item job per element under its concurrency cap and joins in
 * order, loops stop at `until` or their bound, subflows run as child executions (a cancel of the
 * parent cancels the child), and bad definitions are a 400 naming the node, nothing saved.
 * The scripted model answers each prompt by the `[tag]` it starts with.
 */

const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';
const taskOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });

describe('agentflow control flow', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const calls = new Map<string, number>();
  let behaviour: (tag: string, req: ChatRequest) => ChatTurn | Promise<ChatTurn> = (tag) => ({ text: `out(${tag})` });

  beforeAll(async () => {
    t = await startTestApp({
      responder: async (req) => {
        const tag = tagOf(req);
        calls.set(tag, (calls.get(tag) ?? 0) + 1);
        return behaviour(tag, req);
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(() => t.stop());
  afterEach(() => {
    behaviour = (tag) => ({ text: `out(${tag})` });
    calls.clear();
  });

  const create = (user: TestUser, definition: unknown, name = 'Flow') =>
    request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name, definition } });
  const createFlow = async (user: TestUser, definition: unknown, name?: string): Promise<string> => {
    const res = await create(user, definition, name);
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id;
  };
  const run = (user: TestUser, flowId: string, input: unknown) =>
    readSse(`${t.api}/flows/${flowId}/execute/stream`, { method: 'POST', token: user.accessToken, body: { input }, timeoutMs: 30_000 });
  const read = async (user: TestUser, flowId: string, executionId: string) =>
    (await request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken })).body.execution;
  const statuses = (execution: { nodes: Array<{ id: string; status: string }> }) =>
    Object.fromEntries(execution.nodes.map((node) => [node.id, node.status]));
  const events = (messages: SseMessage[], type: string) => messages.filter((m) => m.event === type).map((m) => m.data.nodeId);

  test('a condition takes one branch; the other, and what only it leads to, end skipped; a join after both runs', async () => {
    const flowId = await createFlow(ada, {
      nodes: [
        {
          id: 'check',
          type: 'condition',
          branches: [{ name: 'high', when: 'input.score >= 50 and not (input.tags contains "spam")', to: ['praise'] }],
          else: ['fix'],
        },
        { id: 'praise', prompt: '[praise] well done' },
        { id: 'fix', prompt: '[fix] try again' },
        { id: 'fix2', prompt: '[fix2] then {{nodes.fix.output}}', dependsOn: ['fix'] },
        { id: 'final', prompt: '[final] {{nodes.praise.output}} / {{nodes.fix2.output}}', dependsOn: ['praise', 'fix2'] },
      ],
      output: 'final',
    });
    const high = await run(ada, flowId, { score: 72, tags: ['news'] });
    expect(high.messages.at(-1)!.event).toBe('execution_completed');
    expect(high.messages.at(-1)!.data.output).toBe('out(final)');
    expect(events(high.messages, 'node_skipped').sort()).toEqual(['fix', 'fix2']);
    expect(high.messages.find((m) => m.event === 'node_completed' && m.data.nodeId === 'check')!.data.output).toEqual({ branch: 'high' });
    const view = await read(ada, flowId, high.headers.get('x-execution-id')!);
    expect(statuses(view)).toEqual({ check: 'completed', praise: 'completed', fix: 'skipped', fix2: 'skipped', final: 'completed' });
    expect(calls.get('fix')).toBeUndefined();
    // The skipped branch's output reads as null in the join's prompt.
    expect(calls.get('final')).toBe(1);

    calls.clear();
    const low = await run(ada, flowId, { score: 72, tags: ['spam'] });
    expect(low.messages.at(-1)!.event).toBe('execution_completed');
    expect(events(low.messages, 'node_skipped')).toEqual(['praise']);
    expect(calls.get('fix2')).toBe(1);
    // Every event id from 1, no gap, each node announced once.
    expect(low.messages.map((m) => Number(m.id))).toEqual(low.messages.map((_, i) => i + 1));
  }, 60_000);

  test('a router lets the model pick a branch by name; the others are skipped', async () => {
    behaviour = (tag, req) =>
      tag === 'route' ? { text: taskOf(req).includes('refund') ? 'Billing.' : 'support' } : { text: `out(${tag})` };
    const flowId = await createFlow(ada, {
      nodes: [
        {
          id: 'triage',
          type: 'router',
          prompt: '[route] {{input.message}}',
          branches: [
            { name: 'billing', description: 'payments and refunds', to: ['bill'] },
            { name: 'support', description: 'anything else', to: ['help'] },
          ],
        },
        { id: 'bill', prompt: '[bill] handle' },
        { id: 'help', prompt: '[help] handle' },
      ],
      output: 'bill',
    });
    const sse = await run(ada, flowId, { message: 'I want a refund' });
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    expect(sse.messages.find((m) => m.data.nodeId === 'triage' && m.event === 'node_completed')!.data.output).toEqual({
      branch: 'billing',
    });
    expect(events(sse.messages, 'node_skipped')).toEqual(['help']);
    expect(sse.messages.at(-1)!.data.output).toBe('out(bill)');

    // An answer that names no branch is asked once more, then the node fails `invalid_output`.
    calls.clear();
    behaviour = (tag) => ({ text: tag === 'route' ? 'I am not sure' : `out(${tag})` });
    const unsure = await run(ada, flowId, { message: 'hello' });
    expect(unsure.messages.at(-1)!.event).toBe('execution_failed');
    expect(unsure.messages.find((m) => m.event === 'node_failed')!.data.error.code).toBe('invalid_output');
    expect(calls.get('route')).toBe(2);
  }, 60_000);

  test('foreach runs one item job per element, at most `concurrency` at once, and joins the answers in order', async () => {
    let active = 0;
    let most = 0;
    behaviour = async (tag, req) => {
      if (tag !== 'each') return { text: `out(${tag}) ${taskOf(req)}` };
      active += 1;
      most = Math.max(most, active);
      const word = /item=(\w+)/.exec(taskOf(req))![1];
      // Later elements answer sooner: the join must still be in list order.
      await new Promise((resolve) => setTimeout(resolve, 40 * (6 - Number(/index=(\d+)/.exec(taskOf(req))![1]))));
      active -= 1;
      return { text: word.toUpperCase() };
    };
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'each', type: 'foreach', items: 'input.words', prompt: '[each] item={{item}} index={{index}}', concurrency: 2 },
        { id: 'after', prompt: '[after] {{nodes.each.output}}', dependsOn: ['each'] },
      ],
      output: 'each',
    });
    const words = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta'];
    const sse = await run(ada, flowId, { words });
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    expect(sse.messages.at(-1)!.data.output).toEqual(words.map((word) => word.toUpperCase()));
    expect(most).toBeLessThanOrEqual(2);
    expect(calls.get('each')).toBe(words.length);
    const items = sse.messages.filter((m) => m.event === 'item_completed');
    expect(items.map((m) => m.data.index).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(calls.get('after')).toBe(1);
    const view = await read(ada, flowId, sse.headers.get('x-execution-id')!);
    const node = view.nodes.find((n: { id: string }) => n.id === 'each');
    expect(node.usage.inputTokens).toBeGreaterThan(0);
    expect(view.usage.inputTokens).toBeGreaterThanOrEqual(node.usage.inputTokens);

    // An empty list completes at once with [].
    const empty = await run(ada, flowId, { words: [] });
    expect(empty.messages.at(-1)!.data.output).toEqual([]);
    // Over an input that is not a list: a 400 naming it, nothing run.
    const before = (await request('GET', `${t.api}/flows/${flowId}/executions`, { token: ada.accessToken })).body.executions.length;
    const bad = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: ada.accessToken,
      body: { input: { words: 'alpha beta' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    expect(bad.body.error.details[0]).toMatchObject({ path: 'input.words', message: expect.stringContaining('"each"') });
    expect((await request('GET', `${t.api}/flows/${flowId}/executions`, { token: ada.accessToken })).body.executions.length).toBe(before);
  }, 60_000);

  test('foreach over a node output that is a list (its outputSchema says so)', async () => {
    behaviour = (tag, req) =>
      tag === 'ideas' ? { text: JSON.stringify({ ideas: ['a', 'b', 'c'] }) } : { text: `${tag}:${/item=(\w+)/.exec(taskOf(req))?.[1]}` };
    const flowId = await createFlow(ada, {
      nodes: [
        {
          id: 'ideas',
          prompt: '[ideas] three ideas',
          outputSchema: { type: 'object', properties: { ideas: { type: 'array', items: { type: 'string' } } }, required: ['ideas'] },
        },
        { id: 'each', type: 'foreach', items: 'nodes.ideas.output.ideas', prompt: '[expand] item={{item}}', dependsOn: ['ideas'] },
      ],
      output: 'each',
    });
    const sse = await run(ada, flowId, {});
    expect(sse.messages.at(-1)!.data.output).toEqual(['expand:a', 'expand:b', 'expand:c']);
  }, 60_000);

  test('a loop repeats until its `until` holds, or stops at maxIterations', async () => {
    behaviour = (tag, req) => {
      const iteration = Number(/iteration=(\d+)/.exec(taskOf(req))?.[1] ?? 0);
      return { text: tag === 'draft' && iteration >= 3 ? `DONE after ${taskOf(req)}` : `draft ${iteration}` };
    };
    const flowId = await createFlow(ada, {
      nodes: [
        {
          id: 'refine',
          type: 'loop',
          prompt: '[draft] iteration={{loop.iteration}} previous={{loop.previous}}',
          maxIterations: 5,
          until: "output contains 'DONE'",
        },
      ],
      output: 'refine',
    });
    const sse = await run(ada, flowId, {});
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    expect(sse.messages.at(-1)!.data.output).toBe('DONE after [draft] iteration=3 previous=draft 2');
    expect(calls.get('draft')).toBe(3);

    calls.clear();
    behaviour = () => ({ text: 'never done' });
    const bounded = await createFlow(ada, {
      nodes: [{ id: 'l', type: 'loop', prompt: '[draft] again', maxIterations: 2, until: 'iteration > 10' }],
      output: 'l',
    });
    const stopped = await run(ada, bounded, {});
    expect(stopped.messages.at(-1)!.data.output).toBe('never done');
    expect(calls.get('draft')).toBe(2);
  }, 60_000);

  test('a subflow runs another flow of the owner as a child execution, with its own reservation', async () => {
    behaviour = (tag, req) => ({ text: `${tag}(${taskOf(req).replace(/^\[\w+\] /, '')})` });
    const childId = await createFlow(ada, { nodes: [{ id: 'c', prompt: '[child] about {{input.topic}}' }], output: 'c' }, 'Child');
    const parentId = await createFlow(ada, {
      nodes: [
        { id: 'sub', type: 'subflow', flowId: childId, input: { topic: 'the {{input.subject}}' } },
        { id: 'wrap', prompt: '[wrap] {{nodes.sub.output}}', dependsOn: ['sub'] },
      ],
      output: 'wrap',
    });
    const sse = await run(ada, parentId, { subject: 'sea' });
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    expect(sse.messages.at(-1)!.data.output).toBe('wrap(child(about the sea))');
    const started = sse.messages.find((m) => m.event === 'subflow_started')!;
    expect(started.data.nodeId).toBe('sub');
    const child = await read(ada, childId, started.data.childExecutionId);
    expect(child).toMatchObject({ status: 'completed', output: 'child(about the sea)', input: { topic: 'the sea' } });
    expect(child.usage.inputTokens).toBeGreaterThan(0);
    // Another user cannot read the child either.
    expect((await request('GET', `${t.api}/flows/${childId}/executions/${child.id}`, { token: bob.accessToken })).status).toBe(404);
  }, 60_000);

  test('cancelling the parent cancels its running subflow', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    behaviour = async (tag) => {
      if (tag === 'slow') await held;
      return { text: `out(${tag})` };
    };
    const childId = await createFlow(ada, { nodes: [{ id: 's', prompt: '[slow] wait' }], output: 's' }, 'Slow child');
    const parentId = await createFlow(ada, { nodes: [{ id: 'sub', type: 'subflow', flowId: childId }], output: 'sub' });
    const started = await request('POST', `${t.api}/flows/${parentId}/execute`, { token: ada.accessToken, body: { input: {} } });
    expect(started.status).toBe(202);
    const parent = started.body.executionId;
    await waitUntil(() => (calls.get('slow') ?? 0) > 0, 15_000);
    const children = await request('GET', `${t.api}/flows/${childId}/executions`, { token: ada.accessToken });
    const child = children.body.executions[0].id;
    const cancel = await request('POST', `${t.api}/flows/${parentId}/executions/${parent}/cancel`, { token: ada.accessToken });
    expect(cancel.status).toBe(202);
    await eventually(
      () => read(ada, childId, child),
      (view) => view.status === 'cancelled',
    );
    expect((await read(ada, parentId, parent)).status).toBe('cancelled');
    release();
  }, 60_000);

  describe('bad definitions: a 400 naming the node, nothing saved', () => {
    const cases: Array<[string, unknown, string, RegExp]> = [
      [
        'a cycle outside a loop',
        {
          nodes: [
            { id: 'a', prompt: 'x', dependsOn: ['b'] },
            { id: 'b', prompt: 'y', dependsOn: ['a'] },
          ],
          output: 'a',
        },
        'definition.nodes.0.dependsOn',
        /dependency cycle: a → b → a; to repeat work use a loop node/,
      ],
      [
        'a branch to a missing node',
        { nodes: [{ id: 'c', type: 'condition', branches: [{ name: 'yes', when: 'input.ok', to: ['ghost'] }] }], output: 'c' },
        'definition.nodes.0.branches.0.to.0',
        /leads to a missing node: no node has the id "ghost"/,
      ],
      [
        'an unreachable node',
        {
          nodes: [
            { id: 'c', type: 'condition', branches: [{ name: 'yes', when: 'input.ok', to: ['a'] }] },
            { id: 'a', prompt: 'x' },
            { id: 'b', prompt: 'y', dependsOn: ['c'] },
          ],
          output: 'a',
        },
        'definition.nodes.2.dependsOn.0',
        /"b" is unreachable: no branch of condition "c" leads to it/,
      ],
      [
        'a foreach over a text output',
        {
          nodes: [
            { id: 'a', prompt: 'x' },
            { id: 'f', type: 'foreach', items: 'nodes.a.output', prompt: '{{item}}', dependsOn: ['a'] },
          ],
          output: 'f',
        },
        'definition.nodes.1.items',
        /foreach over a value that is not a list: "a" answers text/,
      ],
      [
        'a foreach over a non-array schema field',
        {
          nodes: [
            { id: 'a', prompt: 'x', outputSchema: { type: 'object', properties: { n: { type: 'integer' } } } },
            { id: 'f', type: 'foreach', items: 'nodes.a.output.n', prompt: '{{item}}', dependsOn: ['a'] },
          ],
          output: 'f',
        },
        'definition.nodes.1.items',
        /makes nodes.a.output.n integer, not an array/,
      ],
      [
        'a loop without a bound',
        { nodes: [{ id: 'l', type: 'loop', prompt: 'x' }], output: 'l' },
        'definition.nodes.0.maxIterations',
        /a loop needs its bound/,
      ],
      [
        'an expression that does not parse',
        {
          nodes: [
            { id: 'c', type: 'condition', branches: [{ name: 'y', when: 'input.a >= ', to: ['a'] }] },
            { id: 'a', prompt: 'x' },
          ],
          output: 'a',
        },
        'definition.nodes.0.branches.0.when',
        /not a valid expression: expected a value but found the end/,
      ],
      [
        'an expression over a node that is not an ancestor',
        {
          nodes: [
            { id: 'a', prompt: 'x' },
            { id: 'c', type: 'condition', branches: [{ name: 'y', when: 'nodes.a.output == "x"', to: ['b'] }] },
            { id: 'b', prompt: 'y' },
          ],
          output: 'b',
        },
        'definition.nodes.1.branches.0.when',
        /not an ancestor/,
      ],
      [
        '{{item}} outside a foreach',
        { nodes: [{ id: 'a', prompt: 'x {{item}}' }], output: 'a' },
        'definition.nodes.0.prompt',
        /only read by a foreach node's prompt/,
      ],
      [
        'a subflow naming no flow of the owner',
        { nodes: [{ id: 's', type: 'subflow', flowId: '00000000-0000-4000-8000-000000000000' }], output: 's' },
        'definition.nodes.0.flowId',
        /no agentflow of yours has the id/,
      ],
    ];
    test.each(cases)('%s', async (_name, definition, path, message) => {
      const before = (await request('GET', `${t.api}/flows`, { token: ada.accessToken })).body.flows.length;
      const res = await create(ada, definition);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(message) })]),
      );
      expect((await request('GET', `${t.api}/flows`, { token: ada.accessToken })).body.flows.length).toBe(before);
    });

    test("a subflow that misses inputs its flow reads, or runs another user's flow, or itself", async () => {
      const childId = await createFlow(ada, { nodes: [{ id: 'c', prompt: '{{input.topic}} {{input.tone}}' }], output: 'c' }, 'Needs input');
      const missing = await create(ada, { nodes: [{ id: 's', type: 'subflow', flowId: childId, input: { topic: 'x' } }], output: 's' });
      expect(missing.status).toBe(400);
      expect(missing.body.error.details[0]).toEqual({ path: 'definition.nodes.0.input', message: expect.stringContaining('"tone"') });
      // Bob cannot run Ada's flow as his subflow: it is not his.
      const stolen = await create(bob, {
        nodes: [{ id: 's', type: 'subflow', flowId: childId, input: { topic: 'x', tone: 'y' } }],
        output: 's',
      });
      expect(stolen.status).toBe(400);
      expect(stolen.body.error.details[0].path).toBe('definition.nodes.0.flowId');
      const self = await request('PATCH', `${t.api}/flows/${childId}`, {
        token: ada.accessToken,
        body: { definition: { nodes: [{ id: 's', type: 'subflow', flowId: childId, input: {} }], output: 's' } },
      });
      expect(self.status).toBe(400);
      expect(self.body.error.details[0].message).toMatch(/cannot run itself/);
      expect((await request('GET', `${t.api}/flows/${childId}`, { token: ada.accessToken })).body.flow.latestVersion).toBe(1);
    });
  });
});
