import type { Job } from 'bullmq';
import { demoResponder } from '../../src/demo-model';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { BACKGROUND_PRIORITY } from '../../src/producers/evaluations';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { TestQueue } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * Evaluations end to end: datasets uploaded (JSON rows, CSV) or made from past executions, runs of
 * a dataset against two flow versions as normal executions on the `flows` queue (real workers, the
 * scripted model for the nodes and the demo model's deterministic judge), rule scorers and the LLM
 * judge, the comparison of versions, the concurrency cap and background priority, cancel, and
 * bad input refused with nothing saved.
 */

const CAPITALS: Record<string, string> = {
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
  Poland: 'Warsaw',
  Cuba: 'Havana',
  Ghana: 'Accra',
  Iran: 'Tehran',
  Nepal: 'Kathmandu',
  Qatar: 'Doha',
  Sweden: 'Stockholm',
  Turkey: 'Ankara',
  Canada: 'Ottawa',
  Austria: 'Vienna',
};
const JUDGE = 'You are the judge of a Switchboard evaluation.';
const userText = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });
const isJudge = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'system') ?? { content: '' }).startsWith(JUDGE);

describe('evaluations', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let queue: TestQueue;
  const judged: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  /** Holds node answers while set (to cancel mid-run). */
  let hold: Promise<void> | undefined;

  beforeAll(async () => {
    t = await startTestApp({
      responder: async (req): Promise<ChatTurn> => {
        // The judge: the demo model's deterministic verdict.
        if (isJudge(req)) {
          judged.push(userText(req));
          return demoResponder(req);
        }
        const text = userText(req);
        const country = /capital of (.+)$/.exec(text)?.[1]?.trim() ?? '';
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await new Promise((resolve) => setTimeout(resolve, 20));
          if (hold) await hold;
          if (text.startsWith('[v1]')) return { text: `The capital of ${country} is ${CAPITALS[country] ?? 'unknown'}.` };
          if (text.startsWith('[live]')) return { text: 'live answer' };
          return { text: `I am not sure about ${country}.` };
        } finally {
          inFlight -= 1;
        }
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
    queue = new TestQueue('flows', bullPrefix(t.keyPrefix));
  });
  afterAll(async () => {
    await queue.close();
    await t.stop();
  });

  const post = (user: TestUser, path: string, body: unknown) => request('POST', `${t.api}${path}`, { token: user.accessToken, body });
  const get = (user: TestUser, path: string) => request('GET', `${t.api}${path}`, { token: user.accessToken });

  /** A flow whose version 1 answers the capital and version 2 does not. */
  const twoVersionFlow = async (user: TestUser): Promise<string> => {
    const created = await post(user, '/flows', {
      type: 'agentflow',
      name: 'Capitals',
      definition: { nodes: [{ id: 'answer', prompt: '[v1] capital of {{input.country}}' }], output: 'answer' },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const v2 = await request('PATCH', `${t.api}/flows/${flowId}`, {
      token: user.accessToken,
      body: { definition: { nodes: [{ id: 'answer', prompt: '[v2] capital of {{input.country}}' }], output: 'answer' }, publish: false },
    });
    expect(v2.status).toBe(200);
    expect(v2.body.flow.latestVersion).toBe(2);
    return flowId;
  };
  const capitalsDataset = async (user: TestUser, n = 20): Promise<string> => {
    const rows = Object.entries(CAPITALS)
      .slice(0, n)
      .map(([country, capital]) => ({ input: { country }, expected: capital }));
    const res = await post(user, '/evaluations/datasets', { name: 'Capitals', rows });
    expect(res.status).toBe(201);
    expect(res.body.dataset).toMatchObject({ rowCount: n, source: 'upload' });
    return res.body.dataset.id;
  };
  const finished = (user: TestUser, id: string, timeoutMs = 60_000) =>
    eventually(
      () => get(user, `/evaluations/${id}`),
      (res) => res.body.evaluation?.status !== 'running',
      timeoutMs,
    );

  test('uploads datasets as JSON rows and as CSV, pages their rows, and keeps them to their owner', async () => {
    const json = await capitalsDataset(ada, 3);
    const csv = await post(ada, '/evaluations/datasets', {
      name: 'From CSV',
      csv: 'country,expected\nFrance,Paris\n"Mexico","Mexico City"\r\n"Côte ""d"", Ivoire",Yamoussoukro\n',
    });
    expect(csv.status).toBe(201);
    expect(csv.body.dataset.rowCount).toBe(3);
    const page1 = await get(ada, `/evaluations/datasets/${csv.body.dataset.id}?limit=2`);
    expect(page1.status).toBe(200);
    expect(page1.body.rows).toEqual([
      { position: 0, input: { country: 'France' }, expected: 'Paris' },
      { position: 1, input: { country: 'Mexico' }, expected: 'Mexico City' },
    ]);
    const page2 = await get(ada, `/evaluations/datasets/${csv.body.dataset.id}?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.rows).toEqual([{ position: 2, input: { country: 'Côte "d", Ivoire' }, expected: 'Yamoussoukro' }]);
    expect(page2.body.nextCursor).toBeNull();

    // Another user's dataset is a 404, read or deleted.
    expect((await get(bob, `/evaluations/datasets/${json}`)).status).toBe(404);
    expect((await request('DELETE', `${t.api}/evaluations/datasets/${json}`, { token: bob.accessToken })).status).toBe(404);
    const listed = await get(bob, '/evaluations/datasets');
    expect(listed.body.datasets).toEqual([]);
  });

  test('refuses a bad or oversized dataset with a clear 4xx and saves nothing', async () => {
    const user = await registerUser(t.api, 'Cap');
    const bad = [
      { name: 'both', rows: [{ input: { a: 1 } }], csv: 'a\n1\n' },
      { name: 'neither' },
      { name: 'not an object', rows: [{ input: 'text' }] },
      { name: 'unclosed', csv: 'a,expected\n"x,y\n' },
      { name: 'bad column', csv: 'a b,expected\n1,2\n' },
      { name: 'ragged', csv: 'a,expected\n1\n' },
      { name: 'header only', csv: 'a,expected\n' },
    ];
    for (const body of bad) {
      const res = await post(user, '/evaluations/datasets', body);
      expect({ name: body.name, status: res.status, code: res.body.error?.code }).toEqual({
        name: body.name,
        status: 400,
        code: 'validation_failed',
      });
    }
    const rows = Array.from({ length: t.app.config.evals.maxRows + 1 }, (_, i) => ({ input: { n: i } }));
    const tooMany = await post(user, '/evaluations/datasets', { name: 'big', rows });
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error.code).toBe('dataset_too_large');
    const tooBig = await post(user, '/evaluations/datasets', {
      name: 'wide',
      rows: [{ input: { text: 'x'.repeat(t.app.config.evals.maxDatasetBytes) } }],
    });
    expect(tooBig.status).toBe(413);
    expect((await get(user, '/evaluations/datasets')).body.datasets).toEqual([]);
  });

  test('makes a dataset from past executions of a flow, and not from another user’s flow', async () => {
    const flowId = await twoVersionFlow(ada);
    const none = await post(ada, '/evaluations/datasets/from-executions', { name: 'none', flowId });
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('no_executions');
    for (const country of ['France', 'Japan']) {
      const started = await post(ada, `/flows/${flowId}/execute`, { input: { country } });
      expect(started.status).toBe(202);
      await eventually(
        () => get(ada, `/flows/${flowId}/executions/${started.body.executionId}`),
        (res) => res.body.execution.status === 'completed',
      );
    }
    const made = await post(ada, '/evaluations/datasets/from-executions', { name: 'Past', flowId, version: 1 });
    expect(made.status).toBe(201);
    expect(made.body.dataset).toMatchObject({ source: 'executions', rowCount: 2 });
    const rows = await get(ada, `/evaluations/datasets/${made.body.dataset.id}`);
    expect(rows.body.rows).toEqual([
      { position: 0, input: { country: 'France' }, expected: 'The capital of France is Paris.' },
      { position: 1, input: { country: 'Japan' }, expected: 'The capital of Japan is Tokyo.' },
    ]);
    const stolen = await post(bob, '/evaluations/datasets/from-executions', { name: 'x', flowId });
    expect(stolen.status).toBe(404);
  });

  test('compares two versions on a 20-row dataset with rule scorers and an LLM judge', async () => {
    const flowId = await twoVersionFlow(ada);
    const datasetId = await capitalsDataset(ada);
    judged.length = 0;
    maxInFlight = 0;
    const created = await post(ada, '/evaluations', {
      flowId,
      datasetId,
      versions: [1, 2],
      concurrency: 2,
      scorers: [
        { type: 'contains' },
        { type: 'regex', name: 'sentence', pattern: '^The capital of .+ is .+\\.$' },
        { type: 'llm_judge', name: 'judge', rubric: 'The answer names the expected capital.' },
      ],
    });
    expect(created.status).toBe(202);
    const evaluationId = created.body.evaluation.id;
    expect(created.body.evaluation).toMatchObject({ status: 'running', versions: [1, 2], concurrency: 2 });
    expect(created.body.evaluation.scorers.map((s: { name: string }) => s.name)).toEqual(['contains', 'sentence', 'judge']);

    // The owner's own execution runs while the evaluation does.
    const live = await post(ada, '/flows', {
      type: 'agentflow',
      name: 'Live',
      definition: { nodes: [{ id: 'a', prompt: '[live] hello' }], output: 'a' },
    });
    const liveRun = await post(ada, `/flows/${live.body.flow.id}/execute`, { input: {} });
    expect(liveRun.status).toBe(202);

    const done = await finished(ada, evaluationId, 90_000);
    expect(done.body.evaluation.status).toBe('completed');
    const results = done.body.results as Array<{
      version: number;
      status: string;
      score: number;
      scores: Array<{ scorer: string; score: number }>;
      executionId: string;
      latencyMs: number;
      usage: { costUsd: number };
    }>;
    expect(results).toHaveLength(40);
    expect(results.every((r) => r.status === 'scored')).toBe(true);
    expect(new Set(results.map((r) => r.executionId)).size).toBe(40);
    for (const r of results.filter((x) => x.version === 1)) expect(r.score).toBe(1);
    for (const r of results.filter((x) => x.version === 2)) expect(r.score).toBe(0);
    // The judge was asked once per answer, the sample as data.
    expect(judged).toHaveLength(40);
    expect(JSON.parse(judged[0])).toEqual(expect.objectContaining({ answer: expect.any(String), expected: expect.any(String) }));
    // Never more than the evaluation's concurrency of its executions at once (the live one aside).
    expect(maxInFlight).toBeLessThanOrEqual(3);

    const comparison = await get(ada, `/evaluations/${evaluationId}/comparison`);
    expect(comparison.status).toBe(200);
    const [v1, v2] = comparison.body.versions;
    expect(v1).toMatchObject({ version: 1, rows: 20, scored: 20, meanScore: 1 });
    expect(v2).toMatchObject({ version: 2, rows: 20, scored: 20, meanScore: 0 });
    expect(v1.scorers).toEqual([
      { scorer: 'contains', meanScore: 1 },
      { scorer: 'sentence', meanScore: 1 },
      { scorer: 'judge', meanScore: 1 },
    ]);
    for (const v of [v1, v2]) {
      expect(v.latencyMs.p50).toBeGreaterThan(0);
      expect(v.latencyMs.p95).toBeGreaterThanOrEqual(v.latencyMs.p50);
      expect(v.inputTokens).toBeGreaterThan(0);
    }
    expect(comparison.body.best.score).toBe(1);

    // Each execution is a normal one of the flow, of its version.
    const executions = await get(ada, `/flows/${flowId}/executions?limit=100`);
    const byVersion = (n: number) => executions.body.executions.filter((e: { flowVersion: number }) => e.flowVersion === n).length;
    expect([byVersion(1), byVersion(2)]).toEqual([20, 20]);

    // Its node jobs waited in the background lane; the owner's own execution's did not.
    // In whatever state: a job is marked completed after its processor returns, which may be after its execution ended.
    const evalIds = new Set(results.map((r) => r.executionId));
    const nodeJobs = await eventually(
      async () =>
        ((await queue.getJobs(['completed', 'active', 'waiting', 'prioritized', 'delayed', 'failed'])) as Job[]).filter(
          (job) => job.name === 'node',
        ),
      (found) =>
        found.filter((job) => evalIds.has(job.data.executionId)).length >= 40 &&
        found.some((job) => job.data.executionId === liveRun.body.executionId),
    );
    const evalJobs = nodeJobs.filter((job) => evalIds.has(job.data.executionId));
    expect(evalJobs).toHaveLength(40);
    for (const job of evalJobs) expect(job.opts.priority).toBeGreaterThanOrEqual(BACKGROUND_PRIORITY);
    const liveJob = nodeJobs.find((job) => job.data.executionId === liveRun.body.executionId);
    expect(liveJob?.opts.priority).toBeLessThan(BACKGROUND_PRIORITY);
  }, 120_000);

  test('refuses bad scorers, unknown versions and another user’s flow or dataset, and saves nothing', async () => {
    const user = await registerUser(t.api, 'Eve');
    const flowId = await twoVersionFlow(user);
    const datasetId = await capitalsDataset(user, 2);
    const bobFlow = await twoVersionFlow(bob);
    const bobDataset = await capitalsDataset(bob, 2);
    const base = { flowId, datasetId, versions: [1], scorers: [{ type: 'exact' }] };
    const cases: Array<[string, unknown, number, string, string?]> = [
      ['invalid regex', { ...base, scorers: [{ type: 'regex', pattern: '(unclosed' }] }, 400, 'validation_failed', 'scorers.0.pattern'],
      ['bad regex flag', { ...base, scorers: [{ type: 'regex', pattern: 'a', flags: 'g' }] }, 400, 'validation_failed'],
      [
        'invalid JSON Schema',
        { ...base, scorers: [{ type: 'exact' }, { type: 'json_schema', schema: { type: 'strin' } }] },
        400,
        'validation_failed',
        'scorers.1.schema',
      ],
      [
        'unknown judge model',
        { ...base, scorers: [{ type: 'llm_judge', rubric: 'r', model: { provider: 'x', model: 'y' } }] },
        400,
        'validation_failed',
        'scorers.0.model',
      ],
      [
        'two scorers of one name',
        {
          ...base,
          scorers: [
            { type: 'exact', name: 'a' },
            { type: 'contains', name: 'a' },
          ],
        },
        400,
        'validation_failed',
        'scorers.1.name',
      ],
      ['no scorer', { ...base, scorers: [] }, 400, 'validation_failed'],
      ['unknown version', { ...base, versions: [1, 7] }, 404, 'not_found', 'versions.1'],
      ['a version twice', { ...base, versions: [1, 1] }, 400, 'validation_failed'],
      ['too much concurrency', { ...base, concurrency: 1_000 }, 400, 'validation_failed'],
      ['another user’s flow', { ...base, flowId: bobFlow }, 404, 'not_found'],
      ['another user’s dataset', { ...base, datasetId: bobDataset }, 404, 'not_found'],
      [
        'a missing input',
        {
          ...base,
          datasetId: (await post(user, '/evaluations/datasets', { name: 'x', rows: [{ input: { city: 'Paris' } }] })).body.dataset.id,
        },
        400,
        'missing_input',
      ],
    ];
    for (const [name, body, status, code, path] of cases) {
      const res = await post(user, '/evaluations', body);
      expect({ name, status: res.status, code: res.body.error?.code }).toEqual({ name, status, code });
      if (path) expect({ name, paths: res.body.error.details.map((d: { path: string }) => d.path) }).toEqual({ name, paths: [path] });
    }
    expect((await get(user, '/evaluations')).body.evaluations).toEqual([]);
    expect((await get(user, `/flows/${flowId}/executions`)).body.executions).toEqual([]);
    // Another user's evaluation is a 404 on every path.
    const mine = await post(user, '/evaluations', base);
    expect(mine.status).toBe(202);
    for (const path of ['', '/comparison']) expect((await get(bob, `/evaluations/${mine.body.evaluation.id}${path}`)).status).toBe(404);
    expect((await post(bob, `/evaluations/${mine.body.evaluation.id}/cancel`, {})).status).toBe(404);
    await finished(user, mine.body.evaluation.id);
  }, 60_000);

  test('cancel stops an evaluation: rows not started never run, running executions are cancelled', async () => {
    const flowId = await twoVersionFlow(ada);
    const datasetId = await capitalsDataset(ada, 6);
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    try {
      const created = await post(ada, '/evaluations', {
        flowId,
        datasetId,
        versions: [1],
        concurrency: 2,
        scorers: [{ type: 'contains' }],
      });
      expect(created.status).toBe(202);
      const id = created.body.evaluation.id;
      const running = await eventually(
        () => get(ada, `/evaluations/${id}`),
        (res) => res.body.results.filter((r: { status: string }) => r.status === 'running').length === 2,
      );
      expect(running.body.results.filter((r: { status: string }) => r.status === 'pending')).toHaveLength(4);
      // A claimed row is marked running before its execution is created: wait for both executions.
      await eventually(
        () => get(ada, `/flows/${flowId}/executions`),
        (res) => res.body.executions.length === 2,
      );
      const cancelled = await post(ada, `/evaluations/${id}/cancel`, {});
      expect(cancelled.status).toBe(202);
      expect(cancelled.body).toEqual({ evaluationId: id, status: 'cancelled' });
      release();
      const view = await get(ada, `/evaluations/${id}`);
      expect(view.body.evaluation.status).toBe('cancelled');
      expect(view.body.results.map((r: { status: string }) => r.status)).toEqual(Array(6).fill('cancelled'));
      // The two running executions end cancelled, and no other starts.
      const executions = await eventually(
        () => get(ada, `/flows/${flowId}/executions`),
        (res) => res.body.executions.length === 2 && res.body.executions.every((e: { status: string }) => e.status === 'cancelled'),
      );
      expect(executions.body.executions).toHaveLength(2);
      expect((await post(ada, `/evaluations/${id}/cancel`, {})).body.error.code).toBe('not_running');
    } finally {
      release();
      hold = undefined;
    }
  }, 60_000);
});
