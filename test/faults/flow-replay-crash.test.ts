import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { loggedAt, untilPrinted, type SwitchboardProcess } from '../support/processes';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';

/**
 * kill -9 of the worker running a replay's first node: the other worker takes the cut node through
 * the lease and runs it again; the replay completes once, and the node upstream of it, reused from
 * the execution it replays, never reaches the model in the replay (counted at the model server).
 */
describe('a worker killed in the middle of a replay', () => {
  const cluster = useCluster('replaycrash', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info' });
  let llm: ScriptedLLM;
  const calls = new Map<string, number>();

  beforeAll(async () => {
    llm = await startScriptedLLM(async (req) => {
      const tag = tagOf(req);
      calls.set(tag, (calls.get(tag) ?? 0) + 1);
      // The replayed node takes a while: the kill lands while it runs.
      await sleep(tag === 'b2' ? 2_000 : 100);
      return { text: `out(${tag})` };
    });
  });
  afterAll(() => llm.close());

  test('the replay completes once; the reused node is called once in all, the cut node again on the survivor', async () => {
    const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const workerA = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const workerB = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Replayer');
    const created = await request('POST', `${base}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Replay crash',
        definition: {
          nodes: [
            { id: 'a', prompt: '[a] start' },
            { id: 'b', prompt: '[b] work on {{nodes.a.output}}', dependsOn: ['a'] },
            { id: 'c', prompt: '[c] finish {{nodes.b.output}}', dependsOn: ['b'] },
          ],
          output: 'c',
        },
      },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const original = await request('POST', `${base}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
    expect(original.status).toBe(202);
    await eventually(
      () => request('GET', `${base}/flows/${flowId}/executions/${original.body.executionId}`, { token: user.accessToken }),
      (res) => res.body.execution.status === 'completed',
      30_000,
    );
    expect(calls.get('a')).toBe(1);

    let killing = false;
    let killed: SwitchboardProcess | undefined;
    let killedAt = 0;
    const sse = await readSse(`${base}/flows/${flowId}/executions/${original.body.executionId}/replay/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { fromNode: 'b', changes: { prompt: '[b2] rework {{nodes.a.output}}' } },
      timeoutMs: 90_000,
      onMessage: (message) => {
        if (killing || message.event !== 'node_started' || message.data.nodeId !== 'b') return;
        killing = true;
        // The worker that started the replay's node `b` dies while its model call (two seconds) runs.
        const executionId = message.data.executionId as string;
        const running = (w: SwitchboardProcess) =>
          w
            .output()
            .split('\n')
            .some((line) => line.includes('flow node started') && line.includes(executionId) && line.includes('"b"'));
        // The worker's log line reaches this process through its stdout, which may come after the
        // model call it makes: both are waited for (the call takes two seconds).
        void waitUntil(() => (calls.get('b2') ?? 0) >= 1 && [workerA, workerB].some(running), 20_000).then(() => {
          killed = [workerA, workerB].find(running);
          killed?.child.kill('SIGKILL');
          if (killed) killedAt = Date.now();
        });
      },
    });

    expect(killed).toBeDefined();
    const survivor = killed === workerA ? workerB : workerA;
    expect(loggedAt(survivor, ['flow node started'], killedAt)! - killedAt).toBeLessThan(LEASE_RECOVERY_MS);
    const replayId = sse.headers.get('x-execution-id')!;
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    expect(sse.messages.at(-1)!.data.output).toBe('out(c)');
    await untilPrinted(survivor, replayId);
    // Ids without a gap; `a` announced once, as reused; `b` and `c` completed once each.
    expect(sse.messages.map((m) => Number(m.id))).toEqual(sse.messages.map((_, i) => i + 1));
    const completed = sse.messages.filter((m) => m.event === 'node_completed');
    expect(completed.map((m) => [m.data.nodeId, m.data.reused ?? false])).toEqual([
      ['a', true],
      ['b', false],
      ['c', false],
    ]);

    // The reused node never reached the model again; the cut one did, on the survivor.
    expect(calls.get('a')).toBe(1);
    expect(calls.get('b2')).toBeGreaterThanOrEqual(2);
    expect(calls.get('c')).toBe(2);
    const view = await request('GET', `${base}/flows/${flowId}/executions/${replayId}`, { token: user.accessToken });
    expect(view.body.execution).toMatchObject({ status: 'completed', replayOf: { executionId: original.body.executionId, fromNode: 'b' } });
    expect(view.body.execution.nodes.map((n: { id: string; reused: boolean; attempts: number }) => [n.id, n.reused, n.attempts])).toEqual([
      ['a', true, 0],
      ['b', false, 2],
      ['c', false, 1],
    ]);
  }, 150_000);
});
