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
 * kill -9 of a worker process in the middle of a foreach: the other worker takes the cut item jobs
 * through the lease and runs them again; the execution completes once, its output holds each
 * element's answer exactly once and in order, and every item that had finished before the kill
 * called the model exactly once (counted at the model server).
 */
describe('a worker killed in the middle of a foreach', () => {
  const cluster = useCluster('foreachcrash', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info' });
  let llm: ScriptedLLM;
  const calls = new Map<string, number>();

  beforeAll(async () => {
    llm = await startScriptedLLM(async (req) => {
      const tag = tagOf(req);
      calls.set(tag, (calls.get(tag) ?? 0) + 1);
      // The first item answers quickly, the others take a while: the kill lands while some run.
      await sleep(tag === 'item-0' ? 200 : 1_500);
      return { text: `out(${tag})` };
    });
  });
  afterAll(() => llm.close());

  test('the execution completes once and no item output is duplicated or lost', async () => {
    const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const workerA = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const workerB = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Crash');
    const list = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const created = await request('POST', `${base}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Foreach crash',
        definition: {
          nodes: [
            { id: 'each', type: 'foreach', items: 'input.list', prompt: '[item-{{index}}] work on {{item}}', concurrency: 4 },
            { id: 'z', prompt: '[z] join {{nodes.each.output}}', dependsOn: ['each'] },
          ],
          output: 'each',
        },
      },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id;

    let killed: SwitchboardProcess | undefined;
    let killedAt = 0;
    const doneBeforeKill: number[] = [];
    const sse = await readSse(`${base}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: { list } },
      timeoutMs: 90_000,
      onMessage: (message) => {
        if (message.event !== 'item_completed' || killed) return;
        doneBeforeKill.push(message.data.index);
        // Kill a worker that started an item still running.
        const executionId = message.data.executionId;
        const running = (w: SwitchboardProcess) =>
          w
            .output()
            .split('\n')
            .some(
              (line) =>
                line.includes('flow item started') &&
                line.includes(executionId) &&
                list.some((_, index) => !doneBeforeKill.includes(index) && line.includes(`"item":${index},`)),
            );
        killed = [workerA, workerB].find(running);
        killed?.child.kill('SIGKILL');
        if (killed) killedAt = Date.now();
      },
    });

    expect(killed).toBeDefined();
    const survivor = killed === workerA ? workerB : workerA;
    expect(loggedAt(survivor, ['flow item started'], killedAt)! - killedAt).toBeLessThan(LEASE_RECOVERY_MS);
    const executionId = sse.headers.get('x-execution-id')!;
    await untilPrinted(survivor, executionId);

    // Completed once, with each element's answer once and in order.
    expect(sse.messages.filter((m) => m.event === 'execution_completed')).toHaveLength(1);
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    const expected = list.map((_, index) => `out(item-${index})`);
    expect(sse.messages.at(-1)!.data.output).toEqual(expected);
    expect(sse.messages.filter((m) => m.event === 'node_completed' && m.data.nodeId === 'each')).toHaveLength(1);
    const items = sse.messages.filter((m) => m.event === 'item_completed').map((m) => m.data.index);
    expect([...items].sort((a, b) => a - b)).toEqual(list.map((_, index) => index));
    expect(sse.messages.map((m) => Number(m.id))).toEqual(sse.messages.map((_, i) => i + 1));

    // An item that finished before the kill never called the model again; some cut item ran again.
    expect(doneBeforeKill.length).toBeGreaterThanOrEqual(1);
    for (const index of doneBeforeKill) expect({ index, calls: calls.get(`item-${index}`) }).toEqual({ index, calls: 1 });
    // An item the killed worker had started (its model call may not have been sent yet) was started again by the survivor.
    const startedBy = (w: SwitchboardProcess) =>
      list
        .map((_, index) => index)
        .filter((index) =>
          w
            .output()
            .split('\n')
            .some((line) => line.includes('flow item started') && line.includes(executionId) && line.includes(`"item":${index},`)),
        );
    const cut = startedBy(killed!).filter((index) => !doneBeforeKill.includes(index));
    expect(cut.length).toBeGreaterThanOrEqual(1);
    expect(startedBy(survivor).some((index) => cut.includes(index))).toBe(true);
    expect(calls.get('z')).toBe(1);

    const view = await request('GET', `${base}/flows/${flowId}/executions/${executionId}`, { token: user.accessToken });
    expect(view.body.execution.status).toBe('completed');
    expect(view.body.execution.output).toEqual(expected);
  }, 150_000);
});
