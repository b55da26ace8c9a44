import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { loggedAt, untilPrinted, type SwitchboardProcess } from '../support/processes';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { readSse } from '../support/sse';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';

/**
 * kill -9 of a worker process in the middle of an agentflow execution (decision 0115):
 * its worker lease lapses, the other worker takes its node jobs and starts the cut node again,
 * well before their locks (a minute here) could lapse; the execution completes, and every node
 * that had finished before the kill called the model exactly once (counted at the model server).
 */
describe('a worker killed in the middle of an agentflow execution', () => {
  const cluster = useCluster('flowcrash', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info' });
  let llm: ScriptedLLM;
  const calls = new Map<string, number>();

  beforeAll(async () => {
    llm = await startScriptedLLM(async (req) => {
      const tag = tagOf(req);
      calls.set(tag, (calls.get(tag) ?? 0) + 1);
      // Each node's model call takes a while, b1 less than its siblings: when b1 completes the
      // others still have a second to run, so the kill lands while some of them are running.
      await sleep(tag === 'a' ? 200 : tag === 'b1' ? 300 : 1_500);
      return { text: `out(${tag})` };
    });
  });
  afterAll(() => llm.close());

  test('the execution completes and each node that finished before the kill ran exactly once', async () => {
    const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
    // One at a time: three processes compiling at once on a loaded machine can miss the start timeout.
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const workerA = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const workerB = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Crash');
    // a → six nodes side by side → z.
    const middle = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
    const definition = {
      nodes: [
        { id: 'a', prompt: '[a] start' },
        ...middle.map((id) => ({ id, prompt: `[${id}] work on {{nodes.a.output}}`, dependsOn: ['a'] })),
        { id: 'z', prompt: `[z] join ${middle.map((id) => `{{nodes.${id}.output}}`).join(' ')}`, dependsOn: middle },
      ],
      output: 'z',
    };
    const created = await request('POST', `${base}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Crash', definition },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id;

    let killed: SwitchboardProcess | undefined;
    let killedAt = 0;
    const finishedBeforeKill: string[] = [];
    const sse = await readSse(`${base}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 90_000,
      onMessage: (message) => {
        if (message.event === 'node_completed' && !killed) finishedBeforeKill.push(message.data.nodeId);
        if (killed || message.event !== 'node_completed' || !middle.includes(message.data.nodeId)) return;
        // The first middle node is done, the others are running: kill a worker that has started one
        // of those still running (not only the one that just completed).
        const executionId = message.data.executionId;
        const unfinished = middle.filter((id) => !finishedBeforeKill.includes(id));
        const running = (w: SwitchboardProcess) =>
          w
            .output()
            .split('\n')
            .some(
              (line) =>
                line.includes('flow node started') && line.includes(executionId) && unfinished.some((id) => line.includes(`"${id}"`)),
            );
        killed = [workerA, workerB].find(running);
        killed?.child.kill('SIGKILL');
        if (killed) killedAt = Date.now();
      },
    });

    expect(killed).toBeDefined();
    const survivor = killed === workerA ? workerB : workerA;
    // The survivor started a node again, through the lease.
    expect(loggedAt(survivor, ['flow node started'], killedAt)! - killedAt).toBeLessThan(LEASE_RECOVERY_MS);
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    const executionId = sse.headers.get('x-execution-id')!;
    await untilPrinted(survivor, executionId);
    expect(sse.messages.at(-1)!.data.output).toBe('out(z)');

    // Every node completed once in the stream, and the stream's ids have no gap.
    const completed = sse.messages.filter((m) => m.event === 'node_completed').map((m) => m.data.nodeId);
    expect([...completed].sort()).toEqual(['a', ...middle, 'z'].sort());
    expect(sse.messages.map((m) => Number(m.id))).toEqual(sse.messages.map((_, i) => i + 1));

    // A node that had finished before the kill never called the model again.
    expect(finishedBeforeKill.length).toBeGreaterThanOrEqual(2);
    for (const nodeId of finishedBeforeKill) expect({ nodeId, calls: calls.get(nodeId) }).toEqual({ nodeId, calls: 1 });
    // Some node was cut by the kill and ran again on the survivor: its second attempt. (Whether the
    // cut node had sent its model call yet is up to the host's timing, so the calls are not counted.)
    const restarted = survivor
      .output()
      .split('\n')
      .filter((line) => line.includes('flow node started') && line.includes(executionId) && line.includes('"attempt":2'));
    expect(restarted.length).toBeGreaterThan(0);

    const view = await request('GET', `${base}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken });
    expect(view.body.execution.status).toBe('completed');
    for (const node of view.body.execution.nodes) expect(node.status).toBe('completed');
    for (const nodeId of finishedBeforeKill)
      expect(view.body.execution.nodes.find((n: { id: string }) => n.id === nodeId).attempts).toBe(1);
  }, 120_000);
});
