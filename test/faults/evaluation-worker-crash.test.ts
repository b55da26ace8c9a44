import { demoResponder } from '../../src/demo-model';
import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import type { SwitchboardProcess } from '../support/processes';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const JUDGE = 'You are the judge of a Switchboard evaluation.';
const system = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'system') ?? { content: '' });
const user = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });

const COUNTRIES: Record<string, string> = {
  France: 'Paris',
  Japan: 'Tokyo',
  Italy: 'Rome',
  Spain: 'Madrid',
  Egypt: 'Cairo',
  Peru: 'Lima',
  Kenya: 'Nairobi',
  Chile: 'Santiago',
  Greece: 'Athens',
  Norway: 'Oslo',
};

/**
 * kill -9 of a worker process in the middle of an evaluation: the other worker takes its node,
 * advance and score jobs back through the lease (and the reaper any evaluation left stuck); the
 * evaluation completes with every row of every version scored exactly once, each under one
 * execution (no row is started twice, none is lost), and the comparison counts each row once.
 */
describe('a worker killed in the middle of an evaluation', () => {
  const cluster = useCluster('evalcrash', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info', REAPER_INTERVAL_MS: '2000', REAPER_GRACE_MS: '4000' });
  let llm: ScriptedLLM;

  beforeAll(async () => {
    llm = await startScriptedLLM(async (req) => {
      if (system(req).startsWith(JUDGE)) {
        await sleep(100);
        return demoResponder(req);
      }
      const text = user(req);
      const country = /capital of (.+)$/.exec(text)?.[1]?.trim() ?? '';
      // Long enough that the kill lands while several executions and judges are in flight.
      await sleep(600);
      return { text: text.startsWith('[v1]') ? `The capital is ${COUNTRIES[country]}.` : `No idea about ${country}.` };
    });
  });
  afterAll(() => llm.close());

  test('completes with every row scored once, none lost and none started twice', async () => {
    const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const workerA = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const workerB = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const base = `${api.url}/api/v1`;
    const owner = await registerUser(base, 'EvalCrash');
    const auth = { token: owner.accessToken };

    const created = await request('POST', `${base}/flows`, {
      ...auth,
      body: {
        type: 'agentflow',
        name: 'Capitals',
        definition: { nodes: [{ id: 'a', prompt: '[v1] capital of {{input.country}}' }], output: 'a' },
      },
    });
    const flowId = created.body.flow.id;
    await request('PATCH', `${base}/flows/${flowId}`, {
      ...auth,
      body: { definition: { nodes: [{ id: 'a', prompt: '[v2] capital of {{input.country}}' }], output: 'a' }, publish: false },
    });
    const dataset = await request('POST', `${base}/evaluations/datasets`, {
      ...auth,
      body: { name: 'Ten', rows: Object.entries(COUNTRIES).map(([country, capital]) => ({ input: { country }, expected: capital })) },
    });
    const started = await request('POST', `${base}/evaluations`, {
      ...auth,
      body: {
        flowId,
        datasetId: dataset.body.dataset.id,
        versions: [1, 2],
        concurrency: 4,
        scorers: [{ type: 'contains' }, { type: 'llm_judge', rubric: 'Names the expected capital.' }],
      },
    });
    expect(started.status).toBe(202);
    const id = started.body.evaluation.id;

    // Some rows scored, others running: kill the worker that has started an execution's node.
    await eventually(
      () => request('GET', `${base}/evaluations/${id}`, auth),
      (res) => res.body.results.filter((r: { status: string }) => r.status === 'scored').length >= 4,
      60_000,
    );
    const busy = (w: SwitchboardProcess) => w.output().includes('flow node started');
    const killed = [workerA, workerB].find(busy) ?? workerA;
    killed.child.kill('SIGKILL');
    const before = await request('GET', `${base}/evaluations/${id}`, auth);
    expect(before.body.evaluation.status).toBe('running');

    const done = await eventually(
      () => request('GET', `${base}/evaluations/${id}`, auth),
      (res) => res.body.evaluation.status !== 'running',
      LEASE_RECOVERY_MS + 90_000,
    );
    expect(done.body.evaluation.status).toBe('completed');
    const results = done.body.results as Array<{ version: number; status: string; score: number; executionId: string }>;
    expect(results).toHaveLength(20);
    expect(results.every((r) => r.status === 'scored')).toBe(true);
    for (const r of results) expect({ version: r.version, score: r.score }).toEqual({ version: r.version, score: r.version === 1 ? 1 : 0 });

    // One execution per row and version: none started twice, none lost.
    const executions = await request('GET', `${base}/flows/${flowId}/executions?limit=100`, auth);
    expect(executions.body.executions).toHaveLength(20);
    expect(new Set(results.map((r) => r.executionId))).toEqual(new Set(executions.body.executions.map((e: { id: string }) => e.id)));
    expect(executions.body.executions.every((e: { status: string }) => e.status === 'completed')).toBe(true);

    const comparison = await request('GET', `${base}/evaluations/${id}/comparison`, auth);
    expect(
      comparison.body.versions.map((v: { version: number; rows: number; scored: number; meanScore: number }) => [
        v.version,
        v.rows,
        v.scored,
        v.meanScore,
      ]),
    ).toEqual([
      [1, 10, 10, 1],
      [2, 10, 10, 0],
    ]);
  }, 240_000);
});
