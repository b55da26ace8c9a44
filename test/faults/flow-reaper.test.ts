import { randomUUID } from 'node:crypto';
import { flowChildJobId, flowNodeJobId } from '../../src/producers/flows';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';
import { TestQueue } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * An agentflow execution whose node jobs are gone (its API process died between writing the rows
 * and queueing the roots, or Redis lost the jobs) is resumed by the reaper (decision 0115): ready
 * nodes are queued again, a node already finished is not run again, and the execution completes.
 */
describe('the reaper resumes an agentflow execution with no live node job', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      env: { REAPER_GRACE_MS: '300', REAPER_INTERVAL_MS: '300' },
      responder: (req) => ({ text: `answer ${req.messages.length}` }),
    });
  });
  afterAll(() => t.stop());

  test('queues what is ready and completes it; the finished node calls the model no more', async () => {
    const user = await registerUser(t.api, 'Reaped');
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Orphan',
        definition: {
          nodes: [
            { id: 'a', prompt: 'first' },
            { id: 'b', prompt: 'then {{nodes.a.output}}', dependsOn: ['a'] },
          ],
          output: 'b',
        },
      },
    });
    const flow = created.body.flow;
    // Given: rows written, node `a` already completed, and no job in Redis for anything.
    const { repos } = t.app;
    const executionId = randomUUID();
    await repos.flowExecutions.create({
      id: executionId,
      flowId: flow.id,
      userId: user.id,
      tier: 'free',
      definition: flow.definition,
      flowVersion: 1,
      input: {},
      nodeIds: ['a', 'b'],
    });
    await repos.flowExecutions.startNode(executionId, 'a');
    expect(
      await repos.flowExecutions.completeNode(executionId, 'a', 'done before the crash', {
        provider: 'scripted',
        model: 'scripted-model',
        inputTokens: 1,
        outputTokens: 1,
        costUsd: 0,
      }),
    ).toBe(true);

    const view = await eventually(
      () => request('GET', `${t.api}/flows/${flow.id}/executions/${executionId}`, { token: user.accessToken }),
      (res) => res.body.execution.status !== 'running',
      20_000,
    );
    expect(view.body.execution).toMatchObject({ status: 'completed', output: 'answer 2' });
    expect(view.body.execution.nodes.map((n: { id: string; status: string; attempts: number }) => [n.id, n.status, n.attempts])).toEqual([
      ['a', 'completed', 1],
      ['b', 'completed', 1],
    ]);
    // Only `b` reached the model, with `a`'s stored output in its prompt.
    const calls = t.llm.chatRequests();
    expect(calls).toHaveLength(1);
    expect(JSON.stringify(calls[0].messages)).toContain('then done before the crash');
    // The stream has `a`'s missing event, then `b`'s, then the end.
    const events = await fetch(`${t.api}/flows/${flow.id}/executions/${executionId}/events`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
    }).then((r) => r.text());
    expect([...events.matchAll(/event: (\w+)/g)].map((m) => m[1])).toEqual([
      'node_completed',
      'node_started',
      'node_completed',
      'execution_completed',
    ]);
  });

  test("a subflow node whose child ended is left to the child's queued notice, not resumed beside it", async () => {
    const user = await registerUser(t.api, 'Notice');
    const createFlow = async (name: string, definition: unknown) =>
      (await request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name, definition } })).body.flow;
    const child = await createFlow('Child', { nodes: [{ id: 'c', prompt: 'child' }], output: 'c' });
    const parent = await createFlow('Parent', {
      nodes: [{ id: 'sub', type: 'subflow', flowId: child.id, input: {} }],
      output: 'sub',
    });
    // Given: the parent's subflow node is running, its child has just completed, and the child's
    // notice to the parent is queued (held back a few seconds, as a busy queue would hold it).
    const { repos } = t.app;
    const parentId = randomUUID();
    const base = { userId: user.id, tier: 'free' as const, flowVersion: 1, input: {} };
    await repos.flowExecutions.create({ ...base, id: parentId, flowId: parent.id, definition: parent.definition, nodeIds: ['sub'] });
    await repos.flowExecutions.startNode(parentId, 'sub');
    const childId = randomUUID();
    await repos.flowExecutions.create({
      ...base,
      id: childId,
      flowId: child.id,
      definition: child.definition,
      nodeIds: ['c'],
      parent: { executionId: parentId, nodeId: 'sub', depth: 1 },
    });
    await repos.flowExecutions.end(childId, { status: 'completed', output: 'from the child' });
    const queue = new TestQueue('flows', bullPrefix(t.keyPrefix));
    try {
      const notice = flowChildJobId(parentId, 'sub', childId);
      await queue.add(
        'node',
        { executionId: parentId, nodeId: 'sub', userId: user.id, tier: 'free', child: childId },
        { jobId: notice, delay: 3_000 },
      );

      // The sweeps meanwhile (every 300 ms, the execution past its grace) see the notice live and
      // leave the execution alone: the notice completes the node, and no job of the node's own is queued.
      const view = await eventually(
        () => request('GET', `${t.api}/flows/${parent.id}/executions/${parentId}`, { token: user.accessToken }),
        (res) => res.body.execution.status !== 'running',
        20_000,
      );
      expect(view.body.execution).toMatchObject({ status: 'completed', output: 'from the child' });
      // The notice's job ends just after its commit ended the execution.
      await eventually(
        () => queue.getJobState(notice),
        (state) => state === 'completed',
      );
      expect(await queue.getJob(flowNodeJobId(parentId, 'sub'))).toBeUndefined();
    } finally {
      await queue.close();
    }
  });
});
