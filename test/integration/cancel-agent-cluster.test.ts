import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model/responder';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { useCluster } from '../support/cluster';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually, waitUntil } from '../support/wait';

const LONG_ANSWER = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

/** Anything that says `SLOW` keeps the model streaming; everything else gets the demo model's answer. */
function responder(req: ChatRequest): ChatTurn {
  const prompt = req.messages.map((m) => messageText(m)).join('\n');
  return /SLOW/.test(prompt) ? { text: LONG_ANSWER } : demoResponder(req);
}

const agentBody = (deviceId: string) => ({
  name: 'Notes',
  deviceId,
  directoryPaths: ['/Users/ana/Notes'],
  dataTypes: ['tasks'],
  promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
  fileExtensions: ['.txt'],
});

/**
 * Cancelling agent runs and journey turns across processes, as `npm start` runs them: the cancel
 * arrives at an API process, the run or turn is held by a worker process, and the signal goes
 * through Redis. A run or turn still queued (no worker yet) is taken off its queue by the API.
 */
describe('agent run and journey turn cancel across processes', () => {
  let llm: ScriptedLLM;
  const cluster = useCluster('agent-cancel');
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    llm = await startScriptedLLM(responder, { delayMs: 40 });
  }, 120_000);

  afterAll(async () => {
    for (const device of devices) device.close();
    await llm.close();
  });

  const modelEnv = () => ({ OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' });
  const runOf = async (api: string, user: TestUser, runId: string) =>
    ((await request('GET', `${api}/agents/runs`, { token: user.accessToken })).body.runs as Array<Record<string, any>>).find(
      (run) => run.id === runId,
    );

  async function localAgent(api: string, url: string, user: TestUser, content: string) {
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const created = await request('POST', `${api}/agents/local`, { token: user.accessToken, body: agentBody(deviceId) });
    expect(created.status).toBe(201);
    const device = await DeviceSimulator.connect({
      url,
      accessToken: user.accessToken,
      deviceId,
      reconnection: false,
      readAgentFiles: async () => ({ files: [{ path: '/Users/ana/Notes/a.txt', name: 'a.txt', content }] }),
    });
    devices.push(device);
    return created.body.id as string;
  }

  test('an agent run and a journey turn held by a worker process stop when the API process is asked', async () => {
    const [api] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', AGENT_RUN_TIMEOUT_MS: '60000' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker', AGENT_RUN_TIMEOUT_MS: '60000', ...modelEnv() }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Canceller');

    // An agent run: the worker process streams the extraction.
    const agentId = await localAgent(base, api.url!, user, 'SLOW notes\nTODO: never reached\n');
    let before = llm.requests.length;
    const started = await request('POST', `${base}/agents/${agentId}/run`, { token: user.accessToken });
    const runId = started.body.runId as string;
    await waitUntil(() => llm.requests.slice(before).some((r) => r.kind === 'chat'), 30_000);
    const cancelled = await request('POST', `${base}/agents/runs/${runId}/cancel`, { token: user.accessToken });
    expect(cancelled).toEqual(expect.objectContaining({ status: 202, body: { runId, status: 'cancelling' } }));
    await waitUntil(() => llm.requests.slice(before).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined), 10_000);
    expect(
      await eventually(
        () => runOf(base, user, runId),
        (run) => run?.completedAt !== null,
      ),
    ).toMatchObject({ status: 'cancelled' });

    // A journey turn: the worker process streams the next question.
    const journey = await request('POST', `${base}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['tasks'] },
    });
    const sessionId = journey.body.sessionId as string;
    before = llm.requests.length;
    const waiting = request('POST', `${base}/agents/journey/message`, {
      token: user.accessToken,
      body: { sessionId, message: 'SLOW markdown notes' },
    });
    await waitUntil(() => llm.requests.slice(before).some((r) => r.kind === 'chat'), 30_000);
    expect((await request('POST', `${base}/agents/journey/${sessionId}/cancel`, { token: user.accessToken })).status).toBe(202);
    expect((await waiting).body).toMatchObject({ sessionId, turn: 0, done: false, cancelled: true });
    await waitUntil(() => llm.requests.slice(before).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined), 10_000);
  }, 120_000);

  test('still queued (no worker yet): the API takes the run and the turn off their queues and ends them; a worker started later runs neither', async () => {
    const prefix = `${cluster.keyPrefix}-queued`;
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', REDIS_KEY_PREFIX: prefix });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Queued');
    const stranger = await registerUser(base, 'Stranger');

    // A manual run has no row until a worker starts it: the cancel finds its job.
    const agentId = await localAgent(base, api.url!, user, 'TODO: never run\n');
    const started = await request('POST', `${base}/agents/${agentId}/run`, { token: user.accessToken });
    const runId = started.body.runId as string;
    expect((await request('POST', `${base}/agents/runs/${runId}/cancel`, { token: stranger.accessToken })).status).toBe(404);
    const cancelled = await request('POST', `${base}/agents/runs/${runId}/cancel`, { token: user.accessToken });
    expect(cancelled).toEqual(expect.objectContaining({ status: 202, body: { runId, status: 'cancelling' } }));
    expect(await runOf(base, user, runId)).toMatchObject({ status: 'cancelled', itemsProcessed: 0 });
    expect((await request('POST', `${base}/agents/runs/${runId}/cancel`, { token: user.accessToken })).status).toBe(409);

    // A journey answer waiting in the queue: its request answers `cancelled` once the job is taken off.
    const journey = await request('POST', `${base}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['tasks'] },
    });
    const sessionId = journey.body.sessionId as string;
    const waiting = request('POST', `${base}/agents/journey/message`, {
      token: user.accessToken,
      body: { sessionId, message: 'Markdown notes' },
    });
    const cancel = await eventually(
      () => request('POST', `${base}/agents/journey/${sessionId}/cancel`, { token: user.accessToken }),
      (res) => res.status === 202,
    );
    expect(cancel.body).toEqual({ sessionId, status: 'cancelling' });
    expect((await waiting).body).toMatchObject({ sessionId, turn: 0, done: false, cancelled: true });

    // A worker now: neither the cancelled run nor the cancelled turn reaches the model.
    const requestsBefore = llm.requests.length;
    await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', REDIS_KEY_PREFIX: prefix, ...modelEnv() });
    const next = await request('POST', `${base}/agents/${agentId}/run`, { token: user.accessToken });
    await eventually(
      () => runOf(base, user, next.body.runId),
      (run) => run?.completedAt != null,
      30_000,
    );
    // Only the later run's one document reached the model.
    expect(llm.requests.slice(requestsBefore).filter((r) => r.kind === 'chat')).toHaveLength(1);
    expect(await runOf(base, user, runId)).toMatchObject({ status: 'cancelled' });
  }, 120_000);
});
