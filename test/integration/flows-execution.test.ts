import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * Agentflow executions: queued on `flows`, one job per node, streamed with sequenced
 * ids and resumable, listed and read with per-node detail, retried per node, outputSchema with one
 * repair, owner only. The scripted model answers each node by the `[tag]` its prompt starts with
 * and counts the requests per tag.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The node's tag: its prompt (the first user message; a repair request adds a second) starts with `[tag]`. */
const tagOf = (request: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(request.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';

describe('agentflow executions', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const requests = new Map<string, number>();
  /** What the model answers for a tag (default: `out(<tag>)`). */
  let behaviour: (tag: string, request: ChatRequest, count: number) => ChatTurn | Promise<ChatTurn> = (tag) => ({ text: `out(${tag})` });

  beforeAll(async () => {
    t = await startTestApp({
      responder: async (req) => {
        const tag = tagOf(req);
        const count = (requests.get(tag) ?? 0) + 1;
        requests.set(tag, count);
        return behaviour(tag, req, count);
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(() => t.stop());
  afterEach(() => {
    behaviour = (tag) => ({ text: `out(${tag})` });
  });

  const createFlow = async (user: TestUser, definition: unknown, type = 'agentflow'): Promise<string> => {
    const res = await request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type, name: 'Flow', definition } });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id;
  };
  const execution = (user: TestUser, flowId: string, executionId: string) =>
    request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken });
  const streamRun = (user: TestUser, flowId: string, input: unknown, extra: Parameters<typeof readSse>[1] = {}) =>
    readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input },
      timeoutMs: 30_000,
      ...extra,
    });
  const types = (messages: SseMessage[]) => messages.map((m) => (m.data.nodeId ? `${m.event}:${m.data.nodeId}` : m.event));

  test('three nodes stream every event in order, ids from 1, and the execution records each node', async () => {
    behaviour = (tag, req) => {
      if (tag === 's3')
        return { text: JSON.stringify({ title: 'Octopuses', words: messageText(req.messages.at(-1)!).split(/\s+/).length }) };
      return { text: `out(${tag}) from ${messageText(req.messages.at(-1)!)}` };
    };
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'facts', prompt: '[s1] facts about {{input.topic}}' },
        { id: 'summary', prompt: '[s2] summarize {{nodes.facts.output}}', dependsOn: ['facts'] },
        {
          id: 'title',
          prompt: '[s3] title for {{nodes.summary.output}}',
          dependsOn: ['summary'],
          outputSchema: { type: 'object', properties: { title: { type: 'string' }, words: { type: 'integer' } }, required: ['title'] },
        },
      ],
      output: 'title',
    });
    const sse = await streamRun(ada, flowId, { topic: 'octopuses' });
    expect(sse.status).toBe(200);
    const executionId = sse.headers.get('x-execution-id')!;
    expect(executionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(types(sse.messages)).toEqual([
      'execution_started',
      'node_started:facts',
      'node_completed:facts',
      'node_started:summary',
      'node_completed:summary',
      'node_started:title',
      'node_completed:title',
      'execution_completed',
    ]);
    expect(sse.messages.map((m) => m.id)).toEqual(sse.messages.map((_, i) => String(i + 1)));
    for (const m of sse.messages) expect(m.data).toMatchObject({ type: m.event, executionId });
    expect(sse.messages[0].data.flowId).toBe(flowId);
    // Templates: the input, then each ancestor's output, reached the model.
    expect(sse.messages[2].data.output).toBe('out(s1) from [s1] facts about octopuses');
    expect(sse.messages[4].data.output).toBe('out(s2) from [s2] summarize out(s1) from [s1] facts about octopuses');
    expect(sse.messages[6].data.output).toEqual({ title: 'Octopuses', words: expect.any(Number) });
    expect(sse.messages[6].data.usage).toMatchObject({
      provider: 'scripted',
      model: 'scripted-model',
      inputTokens: expect.any(Number),
      outputTokens: expect.any(Number),
    });
    const done = sse.messages.at(-1)!.data;
    expect(done.output).toEqual(sse.messages[6].data.output);
    expect(done.usage.inputTokens).toBeGreaterThan(0);

    const read = await execution(ada, flowId, executionId);
    expect(read.status).toBe(200);
    const view = read.body.execution;
    expect(view).toMatchObject({
      id: executionId,
      flowId,
      status: 'completed',
      input: { topic: 'octopuses' },
      output: done.output,
      error: null,
      usage: done.usage,
    });
    expect(view.nodes.map((n: { id: string }) => n.id)).toEqual(['facts', 'summary', 'title']);
    for (const node of view.nodes) {
      expect(node).toMatchObject({
        status: 'completed',
        attempts: 1,
        error: null,
        usage: { provider: 'scripted', model: 'scripted-model' },
      });
      expect(Date.parse(node.completedAt)).toBeGreaterThanOrEqual(Date.parse(node.startedAt));
    }
    const sum = view.nodes.reduce((acc: number, n: { usage: { inputTokens: number } }) => acc + n.usage.inputTokens, 0);
    expect(view.usage.inputTokens).toBe(sum);
    // Each node called the model once; the usage is recorded like every other model call.
    expect(['s1', 's2', 's3'].map((tag) => requests.get(tag))).toEqual([1, 1, 1]);

    // A finished execution's stream replays and closes; Last-Event-ID resumes after that event.
    const replay = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, { token: ada.accessToken });
    expect(replay.messages.map((m) => m.id)).toEqual(sse.messages.map((m) => m.id));
    const resumed = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, {
      token: ada.accessToken,
      headers: { 'Last-Event-ID': '5' },
    });
    expect(resumed.messages.map((m) => m.id)).toEqual(['6', '7', '8']);
    const pastEnd = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, {
      token: ada.accessToken,
      headers: { 'Last-Event-ID': '8' },
    });
    expect(pastEnd.messages.map((m) => m.event)).toEqual(['execution_completed']);
  });

  test('POST /execute answers 202 at once; the list is newest first and paginated', async () => {
    const flowId = await createFlow(ada, { nodes: [{ id: 'only', prompt: '[l1] say {{input.word}}' }], output: 'only' });
    const ids: string[] = [];
    for (const word of ['one', 'two', 'three']) {
      const res = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: ada.accessToken, body: { input: { word } } });
      expect(res.status).toBe(202);
      ids.push(res.body.executionId);
    }
    for (const id of ids)
      await eventually(
        () => execution(ada, flowId, id),
        (res) => res.body.execution.status === 'completed',
      );
    const first = await request('GET', `${t.api}/flows/${flowId}/executions?limit=2`, { token: ada.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.executions.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.executions[0]).toMatchObject({ status: 'completed', output: 'out(l1)', input: { word: 'three' } });
    const second = await request('GET', `${t.api}/flows/${flowId}/executions?limit=2&cursor=${first.body.nextCursor}`, {
      token: ada.accessToken,
    });
    expect(second.body).toEqual({ executions: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
  });

  test('a missing {{input.key}} is 400 missing_input listing the keys; a chatflow cannot be executed', async () => {
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'a', prompt: '[m1] {{input.topic}} in {{input.lang}}' },
        { id: 'b', prompt: '[m2] {{input.tone}} {{nodes.a.output}}', dependsOn: ['a'] },
      ],
      output: 'b',
    });
    const res = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: ada.accessToken, body: { input: { topic: 'x' } } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'missing_input', details: { missing: ['lang', 'tone'] } });
    const stream = await streamRun(ada, flowId, {});
    expect(stream.status).toBe(400);
    expect(stream.body.error.details.missing).toEqual(['lang', 'tone', 'topic']);
    const list = await request('GET', `${t.api}/flows/${flowId}/executions`, { token: ada.accessToken });
    expect(list.body.executions).toEqual([]);
    expect(requests.get('m1')).toBeUndefined();

    const chatflowId = await createFlow(ada, { systemPrompt: 'Hi' }, 'chatflow');
    const chat = await request('POST', `${t.api}/flows/${chatflowId}/execute`, { token: ada.accessToken, body: { input: {} } });
    expect({ status: chat.status, code: chat.body.error.code }).toEqual({ status: 409, code: 'not_an_agentflow' });
    const bad = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: ada.accessToken,
      rawBody: '{"input":{"topic":"\\ud800","lang":"x","tone":"y"}}',
    });
    expect(bad.status).toBe(400);
    const deep = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: ada.accessToken,
      rawBody: `{"input":{"topic":${'['.repeat(200)}${']'.repeat(200)},"lang":"x","tone":"y"}}`,
    });
    expect(deep.status).toBe(400);
  });

  test("another user reaches none of a flow's executions: every route is a 404", async () => {
    const flowId = await createFlow(ada, { nodes: [{ id: 'a', prompt: '[u1] hi' }], output: 'a' });
    const run = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: ada.accessToken, body: { input: {} } });
    const executionId = run.body.executionId;
    await eventually(
      () => execution(ada, flowId, executionId),
      (res) => res.body.execution.status === 'completed',
    );
    const attempts: Array<[string, string, unknown?]> = [
      ['POST', `/flows/${flowId}/execute`, { input: {} }],
      ['POST', `/flows/${flowId}/execute/stream`, { input: {} }],
      ['GET', `/flows/${flowId}/executions`],
      ['GET', `/flows/${flowId}/executions/${executionId}`],
      ['GET', `/flows/${flowId}/executions/${executionId}/events`],
      ['POST', `/flows/${flowId}/executions/${executionId}/cancel`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await request(method, `${t.api}${path}`, { token: bob.accessToken, body });
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
    // An execution of one flow is not reachable through another flow of the same owner.
    const otherFlow = await createFlow(ada, { nodes: [{ id: 'a', prompt: '[u2] hi' }], output: 'a' });
    expect((await execution(ada, otherFlow, executionId)).status).toBe(404);
    expect(requests.get('u1')).toBe(1);
    expect(requests.get('u2')).toBeUndefined();
  });

  test('a failed node retries alone, with backoff; the nodes before it ran once', async () => {
    behaviour = (tag, _req, count) =>
      tag === 'r2' && count === 1 ? { error: { status: 400, message: 'scripted failure' } } : { text: `out(${tag})` };
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'a', prompt: '[r1] start' },
        { id: 'b', prompt: '[r2] then {{nodes.a.output}}', dependsOn: ['a'] },
        { id: 'c', prompt: '[r3] end {{nodes.b.output}}', dependsOn: ['b'] },
      ],
      output: 'c',
    });
    const sse = await streamRun(ada, flowId, {});
    expect(types(sse.messages)).toEqual([
      'execution_started',
      'node_started:a',
      'node_completed:a',
      'node_started:b',
      'node_started:b',
      'node_completed:b',
      'node_started:c',
      'node_completed:c',
      'execution_completed',
    ]);
    expect(sse.messages.filter((m) => m.event === 'node_started' && m.data.nodeId === 'b').map((m) => m.data.attempt)).toEqual([1, 2]);
    const view = (await execution(ada, flowId, sse.headers.get('x-execution-id')!)).body.execution;
    expect(view.nodes.map((n: { attempts: number }) => n.attempts)).toEqual([1, 2, 1]);
    expect(['r1', 'r2', 'r3'].map((tag) => requests.get(tag))).toEqual([1, 2, 1]);
  });

  test('an outputSchema answer that does not validate is asked again once: repaired, or node_failed', async () => {
    const schema = {
      type: 'object',
      properties: { score: { type: 'integer', minimum: 1, maximum: 5 } },
      required: ['score'],
      additionalProperties: false,
    };
    behaviour = (tag, req, count) => {
      if (tag === 'j1') return count === 1 ? { text: 'Sure! The score is four.' } : { text: '{"score": 4}' };
      if (tag === 'j2') return { text: count === 1 ? '{"score": 9}' : '```json\n{"score": "high"}\n```' };
      return { text: `out(${tag}) ${req.messages.length}` };
    };
    const repaired = await createFlow(ada, { nodes: [{ id: 'rate', prompt: '[j1] rate it', outputSchema: schema }], output: 'rate' });
    const ok = await streamRun(ada, repaired, {});
    expect(types(ok.messages)).toEqual(['execution_started', 'node_started:rate', 'node_completed:rate', 'execution_completed']);
    expect(ok.messages[2].data.output).toEqual({ score: 4 });
    expect(requests.get('j1')).toBe(2);
    // The repair request carried the bad answer and what was wrong with it.
    const repair = t.llm.chatRequests().filter((r) => tagOf(r) === 'j1')[1];
    expect(repair.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(messageText(repair.messages[0])).toContain('"score"');

    const failing = await createFlow(ada, {
      nodes: [
        { id: 'rate', prompt: '[j2] rate it', outputSchema: schema },
        { id: 'after', prompt: '[j3] {{nodes.rate.output}}', dependsOn: ['rate'] },
      ],
      output: 'after',
    });
    const bad = await streamRun(ada, failing, {});
    expect(types(bad.messages)).toEqual(['execution_started', 'node_started:rate', 'node_failed:rate', 'execution_failed']);
    expect(bad.messages[2].data.error).toEqual({ code: 'invalid_output', message: expect.any(String) });
    expect(bad.messages[3].data.error).toMatchObject({ code: 'node_failed', nodeId: 'rate' });
    expect(requests.get('j2')).toBe(2);
    expect(requests.get('j3')).toBeUndefined();
    const view = (await execution(ada, failing, bad.headers.get('x-execution-id')!)).body.execution;
    expect(view).toMatchObject({ status: 'failed', error: { code: 'node_failed' }, output: null });
    expect(view.nodes).toEqual([
      expect.objectContaining({
        id: 'rate',
        status: 'failed',
        attempts: 1,
        error: { code: 'invalid_output', message: expect.any(String) },
      }),
      expect.objectContaining({ id: 'after', status: 'skipped', attempts: 0 }),
    ]);
    expect(view.nodes[0].usage.inputTokens).toBeGreaterThan(0);
  });

  test('a stream left mid-execution resumes with Last-Event-ID: no gap, no repeat', async () => {
    behaviour = async (tag) => {
      await sleep(150);
      return { text: `out(${tag})` };
    };
    const flowId = await createFlow(ada, {
      nodes: [
        { id: 'a', prompt: '[k1] a' },
        { id: 'b', prompt: '[k2] b {{nodes.a.output}}', dependsOn: ['a'] },
        { id: 'c', prompt: '[k3] c {{nodes.b.output}}', dependsOn: ['b'] },
      ],
      output: 'c',
    });
    const first = await streamRun(ada, flowId, {}, { until: (m) => m.event === 'node_completed' });
    const executionId = first.headers.get('x-execution-id')!;
    const last = first.messages.at(-1)!;
    expect(last.event).toBe('node_completed');
    const rest = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, {
      token: ada.accessToken,
      headers: { 'Last-Event-ID': last.id! },
      timeoutMs: 30_000,
    });
    const all = [...first.messages, ...rest.messages];
    expect(all.map((m) => m.id)).toEqual(all.map((_, i) => String(i + 1)));
    expect(all.at(-1)!.event).toBe('execution_completed');
  });

  test('executions and node durations are counted in /metrics', async () => {
    const metrics = await fetch(`${t.url}/metrics`).then((res) => res.text());
    expect(metrics).toMatch(/switchboard_flow_executions_total\{type="agentflow",status="completed"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_flow_executions_total\{type="agentflow",status="failed"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_flow_node_seconds_count\{flow_id="[^"]+",node_id="[^"]+",status="completed"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_flow_execution_seconds_count\{flow_id="[^"]+",status="completed"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_llm_request_seconds_count\{[^}]*purpose="flow"[^}]*\} [1-9]/);
  });

  test('a DAG of 20 nodes with a width of 5 runs each layer in parallel (overlapping node timings)', async () => {
    behaviour = async (tag) => {
      await sleep(400);
      return { text: `out(${tag})` };
    };
    const nodes = [];
    for (let layer = 0; layer < 4; layer++) {
      for (let i = 0; i < 5; i++) {
        const parents = layer === 0 ? [] : [0, 1, 2, 3, 4].map((p) => `n${layer - 1}${p}`);
        nodes.push({
          id: `n${layer}${i}`,
          prompt: `[w${layer}${i}] ${parents.map((p) => `{{nodes.${p}.output}}`).join(' ')}`,
          ...(parents.length ? { dependsOn: parents } : {}),
        });
      }
    }
    const flowId = await createFlow(ada, { nodes, output: 'n34' });
    const started = Date.now();
    const sse = await streamRun(ada, flowId, {}, { timeoutMs: 60_000 });
    const elapsed = Date.now() - started;
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    const view = (await execution(ada, flowId, sse.headers.get('x-execution-id')!)).body.execution;
    expect(view.nodes).toHaveLength(20);
    for (let layer = 0; layer < 4; layer++) {
      const group = view.nodes.filter((n: { id: string }) => n.id.startsWith(`n${layer}`));
      const latestStart = Math.max(...group.map((n: { startedAt: string }) => Date.parse(n.startedAt)));
      const earliestEnd = Math.min(...group.map((n: { completedAt: string }) => Date.parse(n.completedAt)));
      // Every node of the layer had started before any of them finished: they ran side by side.
      expect({ layer, overlap: latestStart < earliestEnd }).toEqual({ layer, overlap: true });
      if (layer > 0) {
        const previousEnd = Math.max(
          ...view.nodes
            .filter((n: { id: string }) => n.id.startsWith(`n${layer - 1}`))
            .map((n: { completedAt: string }) => Date.parse(n.completedAt)),
        );
        expect(Math.min(...group.map((n: { startedAt: string }) => Date.parse(n.startedAt)))).toBeGreaterThanOrEqual(previousEnd);
      }
    }
    // 20 calls of 400 ms in sequence would take 8 s; four layers in parallel take about 1.6 s.
    expect(elapsed).toBeLessThan(8_000);
    for (const node of nodes) expect(requests.get(node.prompt.slice(1, 4))).toBe(1);
  }, 90_000);
});

describe('cancelling an agentflow execution', () => {
  let t: TestApp;
  let ada: TestUser;

  beforeAll(async () => {
    // Each answer streams 200 words, 50 ms apart: a node takes 10 s unless it is stopped.
    t = await startTestApp({ llmDelayMs: 50, responder: () => ({ text: Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ') }) });
    ada = await registerUser(t.api, 'Ada');
  });
  afterAll(() => t.stop());

  test('stops the running node’s model call, cancels what has not run, and ends every stream with `cancelled`', async () => {
    const created = await request('POST', `${t.api}/flows`, {
      token: ada.accessToken,
      body: {
        type: 'agentflow',
        name: 'Slow',
        definition: {
          nodes: [
            { id: 'slow', prompt: 'long answer' },
            { id: 'next', prompt: 'then {{nodes.slow.output}}', dependsOn: ['slow'] },
          ],
          output: 'next',
        },
      },
    });
    const flowId = created.body.flow.id;
    let cancelledAt = 0;
    let cancel: Promise<Awaited<ReturnType<typeof request>>> | undefined;
    const sse = await readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { input: {} },
      timeoutMs: 20_000,
      onMessage: (message) => {
        if (message.event !== 'node_started' || cancel) return;
        // Cancel once the model has streamed a few words, so the cut call has output to account for.
        cancel = eventually(
          async () => t.llm.requests.find((r) => r.kind === 'chat'),
          (chat) => (chat?.kind === 'chat' ? (chat.writes ?? 0) : 0) >= 3,
        ).then(() => {
          cancelledAt = Date.now();
          return request('POST', `${t.api}/flows/${flowId}/executions/${message.data.executionId}/cancel`, { token: ada.accessToken });
        });
      },
    });
    const answer = await cancel!;
    expect(answer.status).toBe(202);
    const executionId = sse.headers.get('x-execution-id')!;
    expect(answer.body).toEqual({ executionId, status: 'cancelling' });
    expect(sse.messages.map((m) => m.event)).toEqual(['execution_started', 'node_started', 'cancelled']);
    expect(sse.messages.at(-1)!.data).toEqual({ type: 'cancelled', executionId });
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);

    // The model's HTTP request was closed before its answer ended.
    await eventually(
      async () => t.llm.requests.filter((r) => r.kind === 'chat'),
      (chats) => chats.length === 1 && chats[0].kind === 'chat' && chats[0].closedEarlyAt !== undefined,
    );
    const view = await eventually(
      () => request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: ada.accessToken }),
      (res) => res.body.execution.nodes[0].usage.outputTokens > 0,
    );
    expect(view.body.execution).toMatchObject({ status: 'cancelled', output: null });
    expect(view.body.execution.nodes.map((n: { status: string }) => n.status)).toEqual(['cancelled', 'cancelled']);
    // What the cut call cost is recorded (an estimate: the stream never reported usage).
    expect(view.body.execution.usage.outputTokens).toBeGreaterThan(0);

    const again = await request('POST', `${t.api}/flows/${flowId}/executions/${executionId}/cancel`, { token: ada.accessToken });
    expect({ status: again.status, code: again.body.error.code }).toEqual({ status: 409, code: 'not_running' });
    // A client resuming after the stop sees the stop.
    const resumed = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, {
      token: ada.accessToken,
      headers: { 'Last-Event-ID': '1' },
    });
    expect(resumed.messages.map((m) => m.event)).toEqual(['node_started', 'cancelled']);
    // Nothing ran after the cancel.
    expect(t.llm.chatRequests()).toHaveLength(1);
  });
});

describe('executions are limited per user and tier', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: { TIER_LIMITS: JSON.stringify({ free: { flowExecutionsPerMinute: 2 } }) } });
  });
  afterAll(() => t.stop());

  test('past flowExecutionsPerMinute: 429 with Retry-After, nothing started; another user is not affected', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
    const definition = { nodes: [{ id: 'a', prompt: 'hi' }], output: 'a' };
    const flowOf = async (user: TestUser) =>
      (await request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name: 'F', definition } })).body.flow
        .id;
    const [adaFlow, bobFlow] = await Promise.all([flowOf(ada), flowOf(bob)]);
    const run = (user: TestUser, flowId: string) =>
      request('POST', `${t.api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
    expect((await run(ada, adaFlow)).status).toBe(202);
    expect((await run(ada, adaFlow)).status).toBe(202);
    const third = await run(ada, adaFlow);
    expect({ status: third.status, code: third.body.error.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    const streamed = await readSse(`${t.api}/flows/${adaFlow}/execute/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { input: {} },
    });
    expect(streamed.status).toBe(429);
    const list = await request('GET', `${t.api}/flows/${adaFlow}/executions`, { token: ada.accessToken });
    expect(list.body.executions).toHaveLength(2);
    expect((await run(bob, bobFlow)).status).toBe(202);
  });
});
