import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';

/**
 * kill -9 of the only worker while a human_input node waits for its form: nothing of the wait was
 * in that process (the form and its waitpoint are rows, the node's job had ended), so a new worker
 * — whose start-up sweep leaves the waiting node alone — finishes the flow once the form is
 * answered, and the form was asked exactly once.
 */
describe('a worker killed while a human_input node waits', () => {
  const cluster = useCluster('inputcrash', { LOG_LEVEL: 'info', REAPER_GRACE_MS: '0', REAPER_INTERVAL_MS: '500' });
  let llm: ScriptedLLM;
  const calls = new Map<string, number>();

  beforeAll(async () => {
    llm = await startScriptedLLM(async (req) => {
      const tag = tagOf(req);
      calls.set(tag, (calls.get(tag) ?? 0) + 1);
      return { text: `out(${tag})` };
    });
  });
  afterAll(() => llm.close());

  test('the form survives the kill; the answer on the API finishes the node on the new worker', async () => {
    const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const workerA = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Crash');
    const created = await request('POST', `${base}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Waits',
        definition: {
          nodes: [
            { id: 'draft', prompt: '[draft] write' },
            {
              id: 'review',
              type: 'human_input',
              dependsOn: ['draft'],
              prompt: 'Ship {{nodes.draft.output}}?',
              form: { type: 'object', properties: { note: { type: 'string' } } },
              decisions: [
                { name: 'ship', to: ['ship'] },
                { name: 'stop', to: ['stop'] },
              ],
            },
            { id: 'ship', prompt: '[ship] with {{nodes.review.output}}' },
            { id: 'stop', prompt: '[stop] stop' },
          ],
          output: 'ship',
        },
      },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const started = await request('POST', `${base}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
    const executionId = started.body.executionId as string;
    const pending = await eventually(
      () => request('GET', `${base}/hitl/inputs?status=pending`, { token: user.accessToken }),
      (res) => res.body.inputs?.length === 1,
      30_000,
    );
    const form = pending.body.inputs[0];
    expect(form).toMatchObject({ executionId, nodeId: 'review', prompt: 'Ship out(draft)?' });

    // kill -9 of the only worker while the node waits; a new one starts and sweeps at once.
    await workerA.stop('SIGKILL');
    await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const waiting = await request('GET', `${base}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken });
    expect(waiting.body.execution.status).toBe('running');

    const answered = await request('POST', `${base}/hitl/inputs/${form.id}/answer`, {
      token: user.accessToken,
      body: { values: { note: 'go' }, decision: 'ship' },
    });
    expect(answered.status).toBe(200);
    const done = await eventually(
      () => request('GET', `${base}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken }),
      (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
      60_000,
    );
    expect(done.body.execution).toMatchObject({ status: 'completed', output: 'out(ship)' });
    const nodes = Object.fromEntries(done.body.execution.nodes.map((node: { id: string }) => [node.id, node]));
    expect(nodes.review).toMatchObject({ status: 'completed', attempts: 1, output: { values: { note: 'go' }, decision: 'ship' } });
    expect(nodes.stop.status).toBe('skipped');
    // Every model call ran once: the draft before the kill, the shipping after the answer.
    expect(Object.fromEntries(calls)).toEqual({ draft: 1, ship: 1 });
    // One form, answered once.
    const forms = await request('GET', `${base}/hitl/inputs`, { token: user.accessToken });
    expect(forms.body.inputs.filter((entry: { executionId: string }) => entry.executionId === executionId)).toEqual([
      expect.objectContaining({ id: form.id, status: 'answered', answeredBy: user.id }),
    ]);
  }, 180_000);
});
