import { randomUUID } from 'node:crypto';
import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { createLogger } from '../../src/lib/logger';
import { TriggerScheduler } from '../../src/triggers/trigger-scheduler';
import { signWebhook } from '../../src/webhooks/signature';
import { startTestApp, type TestApp } from '../support/app';
import { useCluster } from '../support/cluster';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

const promptOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });
const tagOf = (req: ChatRequest) => /^\[([\w-]+)\]/.exec(promptOf(req))?.[1] ?? '?';

/** The model: the router picks `research`, every other node answers `out(<tag>)`. */
function answer(req: ChatRequest) {
  const tag = tagOf(req);
  return { text: tag === 'route' ? 'research' : `out(${tag}:${promptOf(req).slice(tag.length + 3)})` };
}

/** A router → a foreach over the input's items → a subflow → a form whose decision routes → ship. */
const parentFlow = (childId: string) => ({
  nodes: [
    {
      id: 'triage',
      type: 'router',
      prompt: '[route] {{input.topic}}',
      branches: [
        { name: 'research', description: 'look into it', to: ['each'] },
        { name: 'ignore', description: 'nothing to do', to: ['nothing'] },
      ],
    },
    { id: 'each', type: 'foreach', items: 'input.items', prompt: '[each] {{item}}', concurrency: 2 },
    { id: 'nothing', prompt: '[nothing] idle' },
    { id: 'sub', type: 'subflow', flowId: childId, input: { topic: '{{input.topic}}' }, dependsOn: ['each'] },
    {
      id: 'review',
      type: 'human_input',
      dependsOn: ['sub'],
      prompt: 'Ship {{nodes.sub.output}}?',
      form: { type: 'object', properties: { note: { type: 'string' } }, required: ['note'] },
      decisions: [
        { name: 'ship', to: ['ship'] },
        { name: 'stop', to: ['stop'] },
      ],
    },
    { id: 'ship', prompt: '[ship] {{nodes.sub.output}}' },
    { id: 'stop', prompt: '[stop] halt' },
  ],
  output: 'ship',
});
const childFlow = { nodes: [{ id: 'dig', prompt: '[child] {{input.topic}}' }], output: 'dig' };

type Api = { base: string; user: TestUser };

async function createFlows({ base, user }: Api): Promise<string> {
  const create = async (name: string, definition: unknown) => {
    const res = await request('POST', `${base}/flows`, { token: user.accessToken, body: { type: 'agentflow', name, definition } });
    if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id as string;
  };
  return create('Parent', parentFlow(await create('Child', childFlow)));
}

/** The one form of `executionId`, once its node waits. */
async function pendingForm({ base, user }: Api, executionId: string) {
  const listed = await eventually(
    () => request('GET', `${base}/hitl/inputs?status=pending`, { token: user.accessToken }),
    (res) => res.body.inputs?.some((form: { executionId: string }) => form.executionId === executionId),
    60_000,
  );
  return listed.body.inputs.find((form: { executionId: string }) => form.executionId === executionId) as { id: string; prompt: string };
}

/** Answers the form on the API and checks the whole execution: every node as its branch and the answer say. */
async function answerAndCheck({ base, user }: Api, flowId: string, executionId: string, formId: string) {
  const answered = await request('POST', `${base}/hitl/inputs/${formId}/answer`, {
    token: user.accessToken,
    body: { values: { note: 'go' }, decision: 'ship' },
  });
  expect(answered.status).toBe(200);
  const done = await eventually(
    () => request('GET', `${base}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken }),
    (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
    60_000,
  );
  expect(done.body.execution).toMatchObject({ status: 'completed', output: 'out(ship:out(child:tides))' });
  const nodes = Object.fromEntries(done.body.execution.nodes.map((node: { id: string }) => [node.id, node]));
  expect(nodes.triage.output).toEqual({ branch: 'research' });
  expect(nodes.each.output).toEqual(['out(each:a)', 'out(each:b)', 'out(each:c)']);
  expect(nodes.sub).toMatchObject({ status: 'completed', output: 'out(child:tides)' });
  expect(nodes.review).toMatchObject({ status: 'completed', output: { values: { note: 'go' }, decision: 'ship' } });
  expect([nodes.nothing.status, nodes.stop.status]).toEqual(['skipped', 'skipped']);
}

/**
 * One agentflow with a router, a foreach, a subflow and a human_input form, started the two ways
 * a flow starts without a person: by a signed inbound webhook (on separate API and worker
 * processes, the worker killed with SIGKILL while the form waits and replaced) and by its schedule.
 * The form is answered on the API; each run completes with every node as its branch says, and
 * each model call ran once.
 */
describe('a flow with every control node and a form, started by a webhook and by a schedule', () => {
  describe('from a signed webhook, across a worker kill -9', () => {
    const cluster = useCluster('everynode', { LOG_LEVEL: 'info', REAPER_GRACE_MS: '0', REAPER_INTERVAL_MS: '500' });
    let llm: ScriptedLLM;
    const calls = new Map<string, number>();

    beforeAll(async () => {
      llm = await startScriptedLLM(async (req) => {
        calls.set(tagOf(req), (calls.get(tagOf(req)) ?? 0) + 1);
        return answer(req);
      });
    });
    afterAll(() => llm.close());

    test('the webhook starts it, the form outlives the worker, the answer finishes it on the new worker', async () => {
      const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
      const apiProcess = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
      const worker = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
      const api: Api = { base: `${apiProcess.url}/api/v1`, user: await registerUser(`${apiProcess.url}/api/v1`, 'Hooked') };
      const flowId = await createFlows(api);
      const trigger = await request('POST', `${api.base}/flows/${flowId}/triggers`, {
        token: api.user.accessToken,
        body: { type: 'webhook', name: 'Inbound' },
      });
      expect(trigger.status).toBe(201);

      const body = JSON.stringify({ topic: 'tides', items: ['a', 'b', 'c'] });
      const id = `msg_${randomUUID()}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const delivered = await request('POST', `${api.base}/hooks/${trigger.body.trigger.id}`, {
        rawBody: body,
        headers: {
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(trigger.body.secret, id, timestamp, body),
        },
      });
      expect(delivered.status).toBe(202);
      const listed = await eventually(
        () => request('GET', `${api.base}/flows/${flowId}/executions`, { token: api.user.accessToken }),
        (res) => res.body.executions?.length === 1,
      );
      const executionId = listed.body.executions[0].id as string;
      const form = await pendingForm(api, executionId);
      expect(form.prompt).toBe('Ship out(child:tides)?');

      await worker.stop('SIGKILL');
      await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
      await answerAndCheck(api, flowId, executionId, form.id);
      // Nothing ran twice: the kill came while no job held any node.
      expect(Object.fromEntries(calls)).toEqual({ route: 1, each: 3, child: 1, ship: 1 });
    }, 240_000);
  });

  describe('from its schedule', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ responder: answer });
    });
    afterAll(() => t.stop());

    test('the due slot starts it with the schedule input; the answer on the API finishes it', async () => {
      const api: Api = { base: t.api, user: await registerUser(t.api, 'Scheduled') };
      const flowId = await createFlows(api);
      const schedule = await request('POST', `${api.base}/flows/${flowId}/triggers`, {
        token: api.user.accessToken,
        body: { type: 'schedule', name: 'Hourly', cron: '0 * * * *', input: { topic: 'tides', items: ['a', 'b', 'c'] } },
      });
      expect(schedule.status).toBe(201);
      const scheduler = new TriggerScheduler({
        repos: t.app.repos,
        triggers: t.app.flowTriggers,
        logger: createLogger({ level: 'silent' }),
        tick: '* * * * *',
      });
      expect(await scheduler.tick(new Date(new Date(schedule.body.trigger.nextRunAt).getTime() + 5_000))).toBe(1);
      const listed = await eventually(
        () => request('GET', `${api.base}/flows/${flowId}/executions`, { token: api.user.accessToken }),
        (res) => res.body.executions?.length === 1,
      );
      const executionId = listed.body.executions[0].id as string;
      const form = await pendingForm(api, executionId);
      await answerAndCheck(api, flowId, executionId, form.id);
    }, 120_000);
  });
});
