import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { BACKGROUND_PRIORITY } from '../../src/producers/evaluations';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { TestQueue } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * An evaluation's executions stay in the background lane for every job they queue: the lane is
 * kept on the execution's row, so foreach items, a subflow's child and its notice, and the
 * reaper's resume of an orphaned execution all wait behind everyone's own work (BullMQ priority at
 * or above BACKGROUND_PRIORITY), while a person's own execution never does.
 */

const promptOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });

describe('the evaluation lane is kept by every job of its executions', () => {
  let t: TestApp;
  let ada: TestUser;
  let queue: TestQueue;

  beforeAll(async () => {
    t = await startTestApp({
      env: { REAPER_GRACE_MS: '300', REAPER_INTERVAL_MS: '300' },
      responder: (req) => ({ text: `answer: ${promptOf(req)}` }),
    });
    ada = await registerUser(t.api, 'Ada');
    queue = new TestQueue('flows', bullPrefix(t.keyPrefix));
  });
  afterAll(async () => {
    await queue.close();
    await t.stop();
  });

  const post = (path: string, body: unknown) => request('POST', `${t.api}${path}`, { token: ada.accessToken, body });
  const get = (path: string) => request('GET', `${t.api}${path}`, { token: ada.accessToken });
  const createFlow = async (definition: unknown): Promise<string> => {
    const res = await post('/flows', { type: 'agentflow', name: `Lane ${randomUUID().slice(0, 6)}`, definition });
    expect(res.status).toBe(201);
    return res.body.flow.id;
  };
  /**
   * Every node job of these executions, in whatever state it is: completed jobs are kept, and a job
   * whose notice already ended the execution may still be active on a slow host.
   */
  const nodeJobsOf = async (executionIds: ReadonlySet<string>) =>
    ((await queue.getJobs(['completed', 'active', 'waiting', 'prioritized', 'delayed', 'failed'])) as Job[]).filter(
      (job) => job.name === 'node' && executionIds.has(job.data.executionId),
    );

  test("an evaluation's foreach items, subflow child and its notice wait in the lane; a person's run of the same flow does not", async () => {
    const child = await createFlow({ nodes: [{ id: 'c', prompt: 'child of {{input.text}}' }], output: 'c' });
    const flowId = await createFlow({
      nodes: [
        { id: 'each', type: 'foreach', items: 'input.words', prompt: 'shout {{item}}', concurrency: 2 },
        { id: 'sub', type: 'subflow', flowId: child, input: { text: '{{nodes.each.output}}' }, dependsOn: ['each'] },
      ],
      output: 'sub',
    });
    const dataset = await post('/evaluations/datasets', { name: 'Words', rows: [{ input: { words: ['a', 'b', 'c'] }, expected: 'a' }] });
    expect(dataset.status).toBe(201);
    const created = await post('/evaluations', {
      flowId,
      datasetId: dataset.body.dataset.id,
      versions: [1],
      scorers: [{ type: 'contains' }],
    });
    expect(created.status).toBe(202);
    const done = await eventually(
      () => get(`/evaluations/${created.body.evaluation.id}`),
      (res) => res.body.evaluation?.status !== 'running',
      60_000,
    );
    expect(done.body.evaluation.status).toBe('completed');
    const executionId = done.body.results[0].executionId as string;

    // The execution and its child keep the lane on their rows.
    const row = await t.app.repos.flowExecutions.find(executionId);
    expect(row?.lane).toBe('evaluation');
    const childRow = await t.app.repos.flowExecutions.childOf(executionId, 'sub');
    expect(childRow).toMatchObject({ status: 'completed', lane: 'evaluation' });

    const jobs = await eventually(
      () => nodeJobsOf(new Set([executionId, childRow!.id])),
      (found) => found.length >= 7 && found.some((job) => job.data.nodeId === 'sub' && job.data.child !== undefined),
    );
    const items = jobs.filter((job) => job.data.item !== undefined);
    const notice = jobs.filter((job) => job.data.child !== undefined);
    expect(items.map((job) => job.data.item).sort()).toEqual([0, 1, 2]);
    expect(notice).toHaveLength(1);
    // Roots, items, the subflow node, its child's node and the child's notice to its parent.
    expect(jobs.length).toBeGreaterThanOrEqual(7);
    for (const job of jobs)
      expect({ id: job.id, lane: job.data.lane, background: (job.opts.priority ?? 0) >= BACKGROUND_PRIORITY }).toEqual({
        id: job.id,
        lane: 'evaluation',
        background: true,
      });

    // The owner's own run of the same flow: no lane, on any of its jobs.
    const own = await post(`/flows/${flowId}/execute`, { input: { words: ['x', 'y'] } });
    expect(own.status).toBe(202);
    await eventually(
      () => get(`/flows/${flowId}/executions/${own.body.executionId}`),
      (res) => res.body.execution.status === 'completed',
    );
    expect((await t.app.repos.flowExecutions.find(own.body.executionId))?.lane).toBeNull();
    const ownJobs = await eventually(
      () => nodeJobsOf(new Set([own.body.executionId])),
      (found) => found.some((job) => job.data.child !== undefined) && found.filter((job) => job.data.item !== undefined).length === 2,
    );
    expect(ownJobs.filter((job) => job.data.item !== undefined)).toHaveLength(2);
    for (const job of ownJobs)
      expect({ id: job.id, lane: job.data.lane, priority: (job.opts.priority ?? 0) < BACKGROUND_PRIORITY }).toEqual({
        id: job.id,
        lane: undefined,
        priority: true,
      });
  }, 90_000);

  test('the reaper resumes an orphaned evaluation execution in the lane, a person’s at normal priority', async () => {
    const flowId = await createFlow({
      nodes: [
        { id: 'a', prompt: 'first' },
        { id: 'b', prompt: 'then {{nodes.a.output}}', dependsOn: ['a'] },
      ],
      output: 'b',
    });
    const flow = (await get(`/flows/${flowId}`)).body.flow;
    // Rows written, no job in Redis (its process died before queueing): one in the lane, one not.
    const orphan = async (lane?: 'evaluation') => {
      const id = randomUUID();
      await t.app.repos.flowExecutions.create({
        id,
        flowId,
        userId: ada.id,
        tier: 'free',
        definition: flow.definition,
        flowVersion: 1,
        input: {},
        nodeIds: ['a', 'b'],
        ...(lane ? { lane } : {}),
      });
      return id;
    };
    const [background, foreground] = [await orphan('evaluation'), await orphan()];
    for (const id of [background, foreground])
      await eventually(
        () => get(`/flows/${flowId}/executions/${id}`),
        (res) => res.body.execution.status === 'completed',
        20_000,
      );

    // A node's job ends just after its commit ended the execution: wait for all four to be finished.
    const jobs = await eventually(
      () => nodeJobsOf(new Set([background, foreground])),
      (found) => found.length === 4,
    );
    const of = (id: string) => jobs.filter((job) => job.data.executionId === id);
    expect(
      of(background)
        .map((job) => job.data.nodeId)
        .sort(),
    ).toEqual(['a', 'b']);
    for (const job of of(background))
      expect([job.data.lane, (job.opts.priority ?? 0) >= BACKGROUND_PRIORITY]).toEqual(['evaluation', true]);
    expect(
      of(foreground)
        .map((job) => job.data.nodeId)
        .sort(),
    ).toEqual(['a', 'b']);
    for (const job of of(foreground)) expect([job.data.lane, (job.opts.priority ?? 0) < BACKGROUND_PRIORITY]).toEqual([undefined, true]);
  }, 60_000);
});
