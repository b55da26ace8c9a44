import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { and, eq } from 'drizzle-orm';
import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { inputRequests, systemAudit } from '../../src/models/schema';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { QueueRegistry } from '../../src/producers/registry';
import type { RedisConnections } from '../../src/lib/redis';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl } from '../support/database';
import { startScriptedLLM } from '../support/scripted-llm';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { testRedisConnections } from '../support/redis';
import { connectCanvas, record, waitFor, type CanvasClient } from '../support/sockets';
import { eventually } from '../support/wait';

/**
 * A human_input node sends a JSON-Schema form to its recipients and waits on a waitpoint of its
 * execution (no worker holds it); the first answer (validated against the form, by a signed-in
 * recipient) becomes its output and routes the flow on its decision; the deadline takes the
 * node's timeout outcome. Whole app: real Redis/BullMQ, PostgreSQL, sockets, the scripted model
 * (which answers each prompt by the `[tag]` it starts with).
 */

const taskOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });
const tagOf = (req: ChatRequest) => /^\[([\w-]+)\]/.exec(taskOf(req))?.[1] ?? '?';

const FORM = {
  type: 'object',
  properties: {
    note: { type: 'string', title: 'Note for the writer' },
    score: { type: 'integer', minimum: 1, maximum: 5 },
    urgent: { type: 'boolean' },
  },
  required: ['score'],
};

/** draft → review (a form with approve/reject) → send | rewrite. */
const reviewFlow = (review: Record<string, unknown> = {}) => ({
  nodes: [
    { id: 'draft', prompt: '[draft] Write a reply to {{input.customer}}' },
    {
      id: 'review',
      type: 'human_input',
      dependsOn: ['draft'],
      prompt: 'Check this draft: {{nodes.draft.output}}',
      form: FORM,
      decisions: [
        { name: 'approve', label: 'Send it', to: ['send'] },
        { name: 'reject', to: ['rewrite'] },
      ],
      ...review,
    },
    { id: 'send', prompt: '[send] Send it; the review said {{nodes.review.output}}' },
    { id: 'rewrite', prompt: '[rewrite] Rewrite it' },
  ],
  output: 'send',
});

describe('human_input nodes', () => {
  let t: TestApp;
  let redis: RedisConnections;
  let queues: QueueRegistry;
  let ada: TestUser;
  let bob: TestUser;
  let eve: TestUser;
  const prompts = new Map<string, string[]>();
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      responder: (req) => {
        const tag = tagOf(req);
        prompts.set(tag, [...(prompts.get(tag) ?? []), taskOf(req)]);
        return { text: tag === 'draft' ? 'Dear ACME, your order ships Monday.' : `out(${tag})` };
      },
    });
    redis = testRedisConnections();
    await redis.ready();
    queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
    [ada, bob, eve] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob'), registerUser(t.api, 'Eve')]);
    // Ada and Bob share a canvas: Ada's forms may ask Bob. Eve shares nothing with Ada.
    await addMember(t.api, ada, await createCanvas(t.api, ada), bob, 'editor');
  });
  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await queues?.close();
    await redis?.quit();
    await t?.stop();
  });

  const create = (user: TestUser, definition: unknown) =>
    request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name: 'Review', definition } });
  const createFlow = async (user: TestUser, definition: unknown): Promise<string> => {
    const res = await create(user, definition);
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id;
  };
  const execute = async (user: TestUser, flowId: string) => {
    const res = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: user.accessToken,
      body: { input: { customer: 'ACME' } },
    });
    expect(res.status).toBe(202);
    return res.body.executionId as string;
  };
  const execution = async (user: TestUser, flowId: string, executionId: string) =>
    (await request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken })).body.execution;
  const ended = (user: TestUser, flowId: string, executionId: string) =>
    eventually(
      () => execution(user, flowId, executionId),
      (view) => ['completed', 'failed', 'cancelled'].includes(view?.status),
      20_000,
    );
  const nodeOf = (view: { nodes: Array<{ id: string }> }, id: string) => view.nodes.find((node) => node.id === id) as any;
  /** The pending form of an execution, as its recipient lists it. */
  const pendingForm = async (user: TestUser, executionId: string) => {
    const listed = await eventually(
      () => request('GET', `${t.api}/hitl/inputs?status=pending`, { token: user.accessToken }),
      (res) => res.body.inputs?.some((form: { executionId: string }) => form.executionId === executionId),
    );
    return listed.body.inputs.find((form: { executionId: string }) => form.executionId === executionId);
  };
  const answer = (token: string, id: string, body: unknown) => request('POST', `${t.api}/hitl/inputs/${id}/answer`, { token, body });
  /** The execution's input waitpoint: written just after its form, which may be listed first. */
  const waitpointOf = async (executionId: string) => {
    const rows = await eventually(
      () => t.app.repos.waitpoints.ofRun('flow', executionId),
      (found) => found.some((row) => row.kind === 'input'),
    );
    return rows.find((row) => row.kind === 'input')!;
  };
  const browser = async (user: TestUser) => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    return socket;
  };

  test('the node waits on a waitpoint, no job holds it; bad answers, strangers and API keys change nothing; the answer routes the flow', async () => {
    const flowId = await createFlow(ada, reviewFlow());
    const adaBrowser = await browser(ada);
    const requested = waitFor(adaBrowser, 'input_requested', undefined, 15_000);
    const executionId = await execute(ada, flowId);
    const form = await pendingForm(ada, executionId);
    expect(form).toMatchObject({
      nodeId: 'review',
      ownerId: ada.id,
      prompt: 'Check this draft: Dear ACME, your order ships Monday.',
      // The fields' order as written is kept (the stored jsonb does not keep key order).
      form: { ...FORM, propertyOrder: ['note', 'score', 'urgent'] },
      decisions: [
        { name: 'approve', label: 'Send it' },
        { name: 'reject', label: 'reject' },
      ],
      status: 'pending',
      values: null,
    });
    expect(await requested).toMatchObject({ inputId: form.id, executionId, flowId, nodeId: 'review' });

    // It waits as a waitpoint of the running execution; the node's job is finished, no worker holds it.
    const waitpoint = await waitpointOf(executionId);
    expect(waitpoint).toMatchObject({ status: 'pending', ref: form.id, userId: ada.id });
    expect(waitpoint.completeAfter?.toISOString()).toBe(form.expiresAt);
    await expect(t.app.repos.runs.find('flow', executionId)).resolves.toMatchObject({ status: 'running' });
    // The node's job ends once its form and waitpoint are written: it completes, and nothing holds the node.
    await eventually(
      async () => (await queues.job('flows', `flow-${executionId}-review`))?.getState(),
      (state) => state === 'completed',
    );
    expect(nodeOf(await execution(ada, flowId, executionId), 'review').status).toBe('running');

    // Someone who is not a recipient: 404, as for a missing form; an API key of the owner: 403.
    expect((await request('GET', `${t.api}/hitl/inputs/${form.id}`, { token: eve.accessToken })).status).toBe(404);
    const byStranger = await answer(eve.accessToken, form.id, { values: { score: 5 }, decision: 'approve' });
    expect(byStranger.status).toBe(404);
    const key = await request('POST', `${t.api}/api-keys`, { token: ada.accessToken, body: { name: 'bot', scopes: ['read', 'write'] } });
    const byKey = await answer(key.body.secret, form.id, { values: { score: 5 }, decision: 'approve' });
    expect(byKey.status).toBe(403);
    expect(byKey.body.error.code).toBe('person_required');

    // Answers that do not fit the form: 400 naming each problem.
    const outOfRange = await answer(ada.accessToken, form.id, { values: { score: 9, urgent: 'yes' }, decision: 'approve' });
    expect(outOfRange.status).toBe(400);
    expect(outOfRange.body.error.code).toBe('validation_failed');
    expect(outOfRange.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['values.score', 'values.urgent']);
    const missing = await answer(ada.accessToken, form.id, { values: { note: 'fine' }, decision: 'approve' });
    expect(missing.body.error.details).toEqual([expect.objectContaining({ path: 'values.score' })]);
    const noDecision = await answer(ada.accessToken, form.id, { values: { score: 4 } });
    expect(noDecision.body.error.details).toEqual([expect.objectContaining({ path: 'decision' })]);
    const badDecision = await answer(ada.accessToken, form.id, { values: { score: 4 }, decision: 'maybe' });
    expect(badDecision.status).toBe(400);

    // None of them wrote anything.
    await expect(t.app.repos.inputRequests.find(form.id)).resolves.toMatchObject({ status: 'pending', answer: null });
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({ status: 'pending' });
    expect(prompts.get('send')).toBeUndefined();

    const resolved = waitFor(adaBrowser, 'input_resolved', undefined, 15_000);
    const answered = await answer(ada.accessToken, form.id, { values: { score: 5, note: 'ship it' }, decision: 'approve' });
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({
      status: 'answered',
      values: { score: 5, note: 'ship it' },
      decision: 'approve',
      answeredBy: ada.id,
    });
    expect(await resolved).toEqual({ inputId: form.id, status: 'answered', answeredBy: ada.id, decision: 'approve' });

    const done = await ended(ada, flowId, executionId);
    expect(done.status).toBe('completed');
    expect(nodeOf(done, 'review')).toMatchObject({
      status: 'completed',
      output: { values: { score: 5, note: 'ship it' }, decision: 'approve', answeredBy: ada.id, timedOut: false },
    });
    expect(nodeOf(done, 'send').status).toBe('completed');
    expect(nodeOf(done, 'rewrite').status).toBe('skipped');
    expect(prompts.get('send')![0]).toContain('"note":"ship it"');
    expect(prompts.get('rewrite')).toBeUndefined();

    // The first answer won: a second one is 409 and changes nothing; the answer is audited.
    const again = await answer(ada.accessToken, form.id, { values: { score: 1 }, decision: 'reject' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_answered');
    await expect(t.app.repos.inputRequests.find(form.id)).resolves.toMatchObject({
      decision: 'approve',
      answer: { score: 5, note: 'ship it' },
    });
    const audit = await t.app.repos.db
      .select()
      .from(systemAudit)
      .where(and(eq(systemAudit.targetId, form.id), eq(systemAudit.action, 'input.answered')));
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actorId: ada.id, details: expect.objectContaining({ decision: 'approve' }) });
  }, 60_000);

  test('named recipients: another user who shares a canvas is asked on their own sockets; when two answer at once, one wins', async () => {
    // A recipient the owner shares no canvas with (or who does not exist) is refused on save, nothing saved.
    const before = (await request('GET', `${t.api}/flows`, { token: ada.accessToken })).body.flows.length;
    for (const stranger of [eve.email, 'nobody@example.test']) {
      const refused = await create(ada, reviewFlow({ recipients: [bob.email, stranger] }));
      expect(refused.status).toBe(400);
      expect(refused.body.error.details).toEqual([
        expect.objectContaining({ path: 'definition.nodes.1.recipients.1', message: expect.stringContaining('shares a canvas') }),
      ]);
    }
    expect((await request('GET', `${t.api}/flows`, { token: ada.accessToken })).body.flows).toHaveLength(before);

    const flowId = await createFlow(ada, reviewFlow({ recipients: [bob.email, ada.id] }));
    const [bobBrowser, eveBrowser] = [await browser(bob), await browser(eve)];
    const eveHeard = [...record(eveBrowser, 'input_requested'), ...record(eveBrowser, 'input_resolved')];
    const bobRequested = waitFor(bobBrowser, 'input_requested', undefined, 15_000);
    const bobResolved = waitFor(bobBrowser, 'input_resolved', undefined, 15_000);
    const executionId = await execute(ada, flowId);
    const form = await pendingForm(bob, executionId);
    expect((await bobRequested).inputId).toBe(form.id);
    expect((await request('GET', `${t.api}/hitl/inputs/${form.id}`, { token: ada.accessToken })).status).toBe(200);

    const [byBob, byAda] = await Promise.all([
      answer(bob.accessToken, form.id, { values: { score: 2 }, decision: 'reject' }),
      answer(ada.accessToken, form.id, { values: { score: 5 }, decision: 'approve' }),
    ]);
    expect([byBob.status, byAda.status].sort()).toEqual([200, 409]);
    const winner = byBob.status === 200 ? bob : ada;
    const loser = byBob.status === 200 ? byAda : byBob;
    expect(loser.body.error.code).toBe('already_answered');
    expect((await bobResolved).answeredBy).toBe(winner.id);

    const done = await ended(ada, flowId, executionId);
    expect(done.status).toBe('completed');
    expect(nodeOf(done, 'review').output.answeredBy).toBe(winner.id);
    expect(nodeOf(done, winner === bob ? 'rewrite' : 'send').status).toBe('completed');
    expect(nodeOf(done, winner === bob ? 'send' : 'rewrite').status).toBe('skipped');
    // Exactly one completion of the waitpoint, and Eve heard nothing of it.
    await expect(waitpointOf(executionId)).resolves.toMatchObject({ status: 'completed', completedBy: null });
    expect(eveHeard).toEqual([]);
  }, 60_000);

  test.each<[string, { outcome: string; decision?: string; values?: Record<string, unknown> }]>([
    ['decision', { outcome: 'decision', decision: 'reject' }],
    ['default', { outcome: 'default', values: { score: 3, note: 'no answer' }, decision: 'approve' }],
    ['fail', { outcome: 'fail' }],
  ])(
    'its deadline takes the timeout outcome "%s" through the kernel; a late answer is 409',
    async (outcome, timeout) => {
      const flowId = await createFlow(ada, reviewFlow({ timeout: { seconds: 3600, ...timeout } }));
      const executionId = await execute(ada, flowId);
      const form = await pendingForm(ada, executionId);
      const waitpoint = await waitpointOf(executionId);
      // The deadline's delayed job is queued right after the waitpoint's row is committed.
      const deadline = await eventually(
        () => queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`),
        (job) => job !== undefined,
      );
      await deadline!.promote();

      const done = await ended(ada, flowId, executionId);
      await expect(t.app.repos.inputRequests.find(form.id)).resolves.toMatchObject({ status: 'timeout' });
      await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({
        status: 'completed',
        output: { inputId: form.id, status: 'timeout', timedOut: true },
      });
      if (outcome === 'fail') {
        expect(done.status).toBe('failed');
        expect(nodeOf(done, 'review')).toMatchObject({ status: 'failed', error: { code: 'input_timeout' } });
      } else {
        expect(done.status).toBe('completed');
        const review = nodeOf(done, 'review').output;
        expect(review).toMatchObject({ timedOut: true, answeredBy: null, decision: timeout.decision });
        expect(review.values).toEqual(outcome === 'default' ? { score: 3, note: 'no answer' } : null);
        expect(nodeOf(done, outcome === 'default' ? 'send' : 'rewrite').status).toBe('completed');
      }
      const late = await answer(ada.accessToken, form.id, { values: { score: 5 }, decision: 'approve' });
      expect(late.status).toBe(409);
      expect(late.body.error.code).toBe('expired');
    },
    60_000,
  );

  test('a cancelled execution cancels its form: recipients hear it, an answer is 409', async () => {
    const flowId = await createFlow(ada, reviewFlow());
    const adaBrowser = await browser(ada);
    const executionId = await execute(ada, flowId);
    const form = await pendingForm(ada, executionId);
    const resolved = waitFor(adaBrowser, 'input_resolved', undefined, 15_000);
    const cancel = await request('POST', `${t.api}/flows/${flowId}/executions/${executionId}/cancel`, { token: ada.accessToken });
    expect(cancel.status).toBe(202);
    expect(await resolved).toMatchObject({ inputId: form.id, status: 'cancelled', answeredBy: null });
    const late = await answer(ada.accessToken, form.id, { values: { score: 5 }, decision: 'approve' });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('cancelled');
    expect((await execution(ada, flowId, executionId)).status).toBe('cancelled');
  }, 60_000);

  test("an evaluation's executions ask nobody: the node takes its timeout outcome at once", async () => {
    const flowId = await createFlow(
      ada,
      reviewFlow({ timeout: { seconds: 3600, outcome: 'default', values: { score: 4 }, decision: 'approve' } }),
    );
    const dataset = await request('POST', `${t.api}/evaluations/datasets`, {
      token: ada.accessToken,
      body: { name: 'Customers', rows: [{ input: { customer: 'ACME' }, expected: 'out(send)' }] },
    });
    expect(dataset.status).toBe(201);
    const started = await request('POST', `${t.api}/evaluations`, {
      token: ada.accessToken,
      body: { flowId, datasetId: dataset.body.dataset.id, versions: [1], scorers: [{ type: 'contains' }] },
    });
    expect(started.status).toBe(202);
    const done = await eventually(
      () => request('GET', `${t.api}/evaluations/${started.body.evaluation.id}`, { token: ada.accessToken }),
      (res) => res.body.evaluation?.status !== 'running',
      30_000,
    );
    expect(done.body.evaluation.status).toBe('completed');
    const [result] = done.body.results;
    expect(result).toMatchObject({ status: 'scored', score: 1 });
    const review = nodeOf(await execution(ada, flowId, result.executionId), 'review');
    expect(review.output).toMatchObject({ values: { score: 4 }, decision: 'approve', timedOut: true, answeredBy: null });
    await expect(t.app.repos.inputRequests.forNode(result.executionId, 'review')).resolves.toBeNull();
  }, 60_000);

  test('a form that is not a valid JSON Schema, or a timeout that does not fit it, is a 400 naming the node; nothing is saved', async () => {
    const before = (await request('GET', `${t.api}/flows`, { token: ada.accessToken })).body.flows.length;
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ form: { type: 'object', properties: { score: { type: 'strng' } } } }, 'definition.nodes.1.form', 'not a valid JSON Schema'],
      [
        { form: { type: 'object', properties: { code: { type: 'string', pattern: '^(a+)+$' } } } },
        'definition.nodes.1.form.properties.code.pattern',
        'not supported',
      ],
      [{ form: { type: 'string' } }, 'definition.nodes.1.form.type', 'object'],
      [
        { timeout: { seconds: 3600, outcome: 'default', values: { score: 'high' }, decision: 'approve' } },
        'definition.nodes.1.timeout.values.score',
        'integer',
      ],
      [{ timeout: { seconds: 3600, outcome: 'decision', decision: 'later' } }, 'definition.nodes.1.timeout.decision', 'not one of'],
      [{ timeout: { seconds: 5 } }, 'definition.nodes.1.timeout.seconds', ''],
      [{ decisions: ['approve', 'approve'] }, 'definition.nodes.1.decisions.1.name', 'names two'],
      [{ prompt: 'See {{nodes.send.output}}' }, 'definition.nodes.1.prompt', 'not an ancestor'],
    ];
    for (const [change, path, words] of cases) {
      const res = await create(ada, reviewFlow(change));
      expect({ change, status: res.status }).toEqual({ change, status: 400 });
      expect({ change, details: res.body.error.details }).toEqual({
        change,
        details: expect.arrayContaining([expect.objectContaining({ path, message: expect.stringContaining(words) })]),
      });
    }
    expect((await request('GET', `${t.api}/flows`, { token: ada.accessToken })).body.flows).toHaveLength(before);

    // `input` is the same kind under the name the API contract gives it; no decisions, no routing.
    const aliased = await create(ada, {
      nodes: [
        { id: 'ask', type: 'input', form: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } },
        { id: 'greet', prompt: '[greet] Hello {{nodes.ask.output}}', dependsOn: ['ask'] },
      ],
      output: 'greet',
    });
    expect(aliased.status).toBe(201);
    expect(aliased.body.flow.definition.nodes[0].type).toBe('human_input');
    const executionId = await execute(ada, aliased.body.flow.id);
    const form = await pendingForm(ada, executionId);
    expect(form.decisions).toEqual([]);
    const withDecision = await answer(ada.accessToken, form.id, { values: { name: 'Ada' }, decision: 'approve' });
    expect(withDecision.body.error.details).toEqual([expect.objectContaining({ path: 'decision' })]);
    expect((await answer(ada.accessToken, form.id, { values: { name: 'Ada' } })).status).toBe(200);
    const done = await ended(ada, aliased.body.flow.id, executionId);
    expect(done.output).toBe('out(greet)');
    expect(prompts.get('greet')!.at(-1)).toContain('"name":"Ada"');
  }, 60_000);
});

describe('human_input nodes and webhooks', () => {
  let t: TestApp;
  let server: http.Server;
  const received: Array<{ body: string; headers: http.IncomingHttpHeaders }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({ env: { WEBHOOK_PRIVATE_ORIGINS: origin, WEBHOOK_BACKOFF_MS: '50' } });
    (t as TestApp & { origin: string }).origin = origin;
  });
  afterAll(async () => {
    await t?.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('a recipient subscribed to input.requested receives the form, signed like every webhook', async () => {
    const origin = (t as TestApp & { origin: string }).origin;
    const ada = await registerUser(t.api, 'Ada');
    const hook = await request('POST', `${t.api}/webhooks`, {
      token: ada.accessToken,
      body: { url: `${origin}/forms`, events: ['input.requested'] },
    });
    expect(hook.status).toBe(201);
    const flow = await request('POST', `${t.api}/flows`, {
      token: ada.accessToken,
      body: {
        type: 'agentflow',
        name: 'Ask',
        definition: { nodes: [{ id: 'ask', type: 'human_input', prompt: 'Your name?', decisions: ['ok'] }], output: 'ask' },
      },
    });
    const started = await request('POST', `${t.api}/flows/${flow.body.flow.id}/execute`, { token: ada.accessToken, body: { input: {} } });
    expect(started.status).toBe(202);
    await eventually(
      () => Promise.resolve(received.length),
      (count) => count > 0,
    );
    const message = JSON.parse(received[0].body);
    expect(message).toMatchObject({
      type: 'input.requested',
      data: {
        executionId: started.body.executionId,
        flowId: flow.body.flow.id,
        nodeId: 'ask',
        ownerId: ada.id,
        prompt: 'Your name?',
        decisions: [{ name: 'ok', label: 'ok' }],
      },
    });
    expect(message.data.answer).toBe(`POST /api/v1/hitl/inputs/${message.data.inputId}/answer`);
    const secret = Buffer.from(String(hook.body.secret).replace(/^whsec_/, ''), 'base64');
    const { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature } = received[0].headers;
    const expected = createHmac('sha256', secret)
      .update(`${String(id)}.${String(timestamp)}.${received[0].body}`)
      .digest('base64');
    expect(signature).toBe(`v1,${expected}`);
  }, 30_000);
});

describe('a human_input node waiting across a restart', () => {
  test('given an app stopped while a form waits, the answer on a new app finishes the node and the flow', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const llm = await startScriptedLLM((req) => ({ text: `out(${tagOf(req)})` }));
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const start = (): Promise<RunningSwitchboard> => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { REAPER_GRACE_MS: '0' } });
      return startSwitchboard(config, {
        logger: createLogger({ level: config.log.level }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    };
    let app = await start();
    try {
      let api = `${app.url}/api/v1`;
      const user = await registerUser(api, 'Restart');
      const created = await request('POST', `${api}/flows`, {
        token: user.accessToken,
        body: { type: 'agentflow', name: 'Restart', definition: reviewFlow() },
      });
      expect(created.status).toBe(201);
      const flowId = created.body.flow.id as string;
      const queued = await request('POST', `${api}/flows/${flowId}/execute`, {
        token: user.accessToken,
        body: { input: { customer: 'ACME' } },
      });
      const executionId = queued.body.executionId as string;
      const first = app;
      const form = await eventually(
        () => first.repos.inputRequests.forNode(executionId, 'review'),
        (row) => row?.status === 'pending' && row.announcedAt !== null,
      );
      await app.stop();

      app = await start();
      api = `${app.url}/api/v1`;
      const restarted = app;
      // The new process's recovery (no grace) leaves the waiting node waiting: nothing asks again.
      await expect(restarted.repos.runs.find('flow', executionId)).resolves.toMatchObject({ status: 'running' });
      const answered = await request('POST', `${api}/hitl/inputs/${form!.id}/answer`, {
        token: user.accessToken,
        body: { values: { score: 4 }, decision: 'approve' },
      });
      expect(answered.status).toBe(200);
      const done = await eventually(
        () => request('GET', `${api}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken }),
        (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
        20_000,
      );
      expect(done.body.execution).toMatchObject({ status: 'completed', output: 'out(send)' });
      const forms = await restarted.repos.db.select().from(inputRequests).where(eq(inputRequests.executionId, executionId));
      expect(forms).toHaveLength(1);
    } finally {
      await app.stop();
      await llm.close();
      await database.drop();
    }
  }, 90_000);
});
