import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { answerFromStore, DeviceSimulator, MemoryStore } from '@switchboard/client/testing';
import type { ToolCall } from '@switchboard/client';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { WsDevice } from '../support/ws-device';
import { toolResultTexts } from '../support/scripted-llm';

/**
 * Several tool calls in one model turn (the demo model asks for one per `;`-separated request):
 * they run on the device at the same time, each dangerous one is approved on its own, and the
 * results go back to the model in the order of the calls, whatever order they finish in.
 */

const TASK_A = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const TASK_B = '7c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f';
const seed = {
  tasks: [
    { id: TASK_A, title: 'Old report', status: 'done', priority: 'low' },
    { id: TASK_B, title: 'Stale draft', status: 'done', priority: 'low' },
    { id: 'task-keep', title: 'Keep me', status: 'todo', priority: 'high' },
  ],
};

/** The tool results of a model request, in the order the model reads them. */
const toolResults = toolResultTexts;
/** The last model request that carried tool results. */
const lastWithResults = (t: TestApp) =>
  t.llm
    .chatRequests()
    .filter((req) => req.messages.some((m) => m.role === 'tool'))
    .at(-1)!;

/** A promise and its resolver. */
function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Rejects after `ms` with `what`: a wait on an event that must come. */
const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);

describe('parallel tool calls in one model turn', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];
  const wsDevices: WsDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { DEVICE_RPC_TIMEOUT_MS: '20000', HITL_TIMEOUT_MS: '60000' } });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    wsDevices.forEach((device) => device.close());
    await t.stop();
  });

  const userWithDevice = () => userWithDeviceOn(t.url, devices, { name: 'Parallel', seed });

  const ask = async (device: DeviceSimulator, message: string) => {
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message })) as { sessionId: string };
    return ack.sessionId;
  };
  const finalOf = (device: DeviceSimulator, timeoutMs = 20_000) =>
    nextDeviceEvent<{ sessionId: string; response: string }>(device, 'final', () => true, timeoutMs);
  const decide = (user: TestUser, id: string, decision: 'approve' | 'reject') =>
    request('PUT', `${t.api}/hitl/requests/${id}/${decision}`, { token: user.accessToken });

  test('two device calls overlap on the device; the model reads their results in call order, not finish order', async () => {
    const { device } = await userWithDevice();
    const log: string[] = [];
    const arrived: Record<string, { promise: Promise<void>; resolve: () => void }> = { todo: signal(), done: signal() };
    const secondAnswered = signal();
    const status = (call: ToolCall) => String(('filters' in call ? call.filters : undefined)?.status);
    device.responder = async (call, store) => {
      const mine = status(call);
      log.push(`received ${mine}`);
      arrived[mine].resolve();
      // Each call is answered only once the other reached the device (the two are dispatched at
      // once, so either may arrive first): run one after the other, the second would never come
      // and this wait would time out. The first call (todo) is answered last.
      await within(arrived[mine === 'todo' ? 'done' : 'todo'].promise, 10_000, 'both calls reached the device while both were open');
      if (mine === 'todo') await secondAnswered.promise;
      log.push(`answered ${mine}`);
      const reply = answerFromStore(call, store);
      if (status(call) === 'done') queueMicrotask(() => secondAnswered.resolve());
      return reply;
    };
    const final = finalOf(device);

    await ask(device, 'How many todo tasks do I have; how many done tasks do I have');

    const { response } = await final;
    expect(log.slice(0, 2).sort()).toEqual(['received done', 'received todo']);
    expect(log.slice(2)).toEqual(['answered done', 'answered todo']);
    // The model got the results in the order of its calls: the todo list first, though it finished last.
    const results = toolResults(lastWithResults(t));
    expect(results).toHaveLength(2);
    expect(results[0]).toContain('Keep me');
    expect(results[1]).toContain('Old report');
    expect(response.indexOf('todo task')).toBeLessThan(response.indexOf('done task'));
  });

  test('on the plain WebSocket too: the second tool_call frame arrives before the first is answered', async () => {
    const user = await registerUser(t.api, 'ParallelWs');
    const device = await WsDevice.hello(t.url, user.accessToken, `desk-${randomUUID().slice(0, 6)}`);
    wsDevices.push(device);
    const store = new MemoryStore(seed);
    const order: string[] = [];
    // Whichever call arrives first is answered only once the other arrived: run one after the
    // other, the second would never come and this wait would time out. (The two are dispatched at
    // once, so either may reach the device first.)
    device.onToolCall = async (frame) => {
      const { type: _type, ...call } = frame;
      const status = String(frame.filters?.status);
      order.push(`received ${status}`);
      const other = status === 'todo' ? 'done' : 'todo';
      if (!order.includes(`received ${other}`))
        await device.next('tool_call', (next) => next.filters?.status === other, { timeoutMs: 10_000 });
      order.push(`answered ${status}`);
      return store.execute(call as ToolCall) as Record<string, unknown>;
    };

    device.send({ type: 'chat_request', message: 'How many todo tasks do I have; how many done tasks do I have' });

    const final = await device.next('final', () => true, { timeoutMs: 20_000 });
    expect(order.slice(0, 2).sort()).toEqual(['received done', 'received todo']);
    expect(order).toHaveLength(4);
    expect(final.response.indexOf('todo task')).toBeLessThan(final.response.indexOf('done task'));
    expect(device.all('error')).toEqual([]);
  });

  test('a model asking for more calls than a round runs: the first ten run, the rest come back as errors, in order', async () => {
    const { device } = await userWithDevice();
    const statuses = ['todo', 'done', 'in_progress'];
    t.llm.push(
      { toolCalls: Array.from({ length: 12 }, (_, i) => ({ name: 'list_tasks', args: { status: statuses[i % 3] } })) },
      { text: 'Listed.' },
    );
    const final = finalOf(device);

    await ask(device, 'How many tasks do I have in each status?');

    expect((await final).response).toBe('Listed.');
    expect(device.calls.filter((call) => call.action === 'select')).toHaveLength(10);
    const results = toolResults(lastWithResults(t));
    expect(results).toHaveLength(12);
    expect(results.slice(0, 10).every((result) => !result.startsWith('Error:'))).toBe(true);
    expect(results.slice(10)).toEqual([
      expect.stringMatching(/^Error: list_tasks was NOT run: at most 10 tool calls/),
      expect.stringMatching(/^Error: list_tasks was NOT run: at most 10 tool calls/),
    ]);
  });

  test('two dangerous calls: one approval request each; one approved, one rejected; results in call order', async () => {
    const { user, device } = await userWithDevice();
    const requested: ApprovalRequested[] = [];
    const both = signal();
    device.socket.on('approval_requested', (payload: ApprovalRequested) => {
      requested.push(payload);
      if (requested.length === 2) both.resolve();
    });
    const sessionId = await ask(device, `Delete task ${TASK_A}; delete task ${TASK_B}`);
    await within(both.promise, 10_000, 'two approval requests');
    expect(requested.map((r) => [r.toolName, r.parameters])).toEqual([
      ['delete_task', { task_id: TASK_A }],
      ['delete_task', { task_id: TASK_B }],
    ]);
    expect(new Set(requested.map((r) => r.approvalId)).size).toBe(2);
    expect(requested.every((r) => r.sessionId === sessionId)).toBe(true);
    const [first, second] = requested;
    const final = finalOf(device);

    // The second is decided first: the turn waits for the other decision, nothing runs yet.
    expect((await decide(user, second.approvalId, 'reject')).status).toBe(200);
    const stillPending = await request('GET', `${t.api}/hitl/requests/${first.approvalId}`, { token: user.accessToken });
    expect(stillPending.body.status).toBe('pending');
    // The reaper does not take the decided one for a lost resume: its turn waits for the other decision.
    const unresumed = () => t.app.repos.hitl.listUnresumed(new Date(Date.now() + 60_000), new Date(0), 1_000);
    expect((await unresumed()).map((row) => row.id)).not.toContain(second.approvalId);
    expect((await decide(user, first.approvalId, 'approve')).status).toBe(200);

    const { response } = await final;
    const deletes = device.calls.filter((call) => call.action === 'delete');
    expect(deletes).toEqual([expect.objectContaining({ table: 'tasks', data: { id: TASK_A } })]);
    expect(device.store.rows('tasks').map((row) => row.id)).toEqual(expect.arrayContaining([TASK_B, 'task-keep']));
    expect(device.store.rows('tasks').map((row) => row.id)).not.toContain(TASK_A);
    expect(toolResults(lastWithResults(t))).toEqual([
      `Task ${TASK_A} deleted.`,
      expect.stringMatching(/^Error: the user rejected delete_task/),
    ]);
    expect(response).toContain(`Task ${TASK_A} deleted.`);
    const ids = (await unresumed()).map((row) => row.id);
    expect(ids).not.toContain(first.approvalId);
    expect(ids).not.toContain(second.approvalId);

    const history = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'tool', 'tool', 'assistant']);
    expect(history.body.messages[1].content).toBe(`Task ${TASK_A} deleted.`);
    // Both requests were resumed once; a late decision is refused.
    expect((await decide(user, second.approvalId, 'approve')).status).toBe(409);
  });

  test('a safe call of the round runs at once; the dangerous one waits; both results reach the model in call order', async () => {
    const { user, device } = await userWithDevice();
    const asked = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
    await ask(device, `How many todo tasks do I have; delete task ${TASK_A}`);
    const approval = await asked;
    // The read already reached the device while the delete waits for its decision.
    await device.waitForCall((call) => call.action === 'select', 10_000);
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
    const final = finalOf(device);

    expect((await decide(user, approval.approvalId, 'approve')).status).toBe(200);

    await final;
    expect(device.calls.map((call) => call.action)).toEqual(['select', 'delete']);
    const results = toolResults(lastWithResults(t));
    expect(results).toHaveLength(2);
    expect(results[0]).toContain('Keep me');
    expect(results[1]).toBe(`Task ${TASK_A} deleted.`);
  });

  test('a cancel while both calls of a round are in flight ends the turn at once; their late answers are ignored', async () => {
    const { user, device } = await userWithDevice();
    const held: Array<() => void> = [];
    const bothHeld = signal();
    device.responder = (call, store) =>
      new Promise((resolve) => {
        held.push(() => resolve(answerFromStore(call, store)));
        if (held.length === 2) bothHeld.resolve();
      });
    const cancelled = nextDeviceEvent<{ sessionId: string }>(device, 'cancelled', () => true, 10_000);
    const sessionId = await ask(device, 'How many todo tasks do I have; how many done tasks do I have');
    await within(bothHeld.promise, 10_000, 'both calls in flight on the device');

    const cancel = await request('POST', `${t.api}/chat/sessions/${sessionId}/cancel`, { token: user.accessToken });
    expect(cancel.status).toBe(202);

    // Well before the 20 s device timeout: the calls in flight were abandoned.
    expect((await cancelled).sessionId).toBe(sessionId);
    held.forEach((answer) => answer());
    const history = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.at(-1)).toMatchObject({ role: 'assistant', status: 'cancelled' });
  });

  describe('in an agentflow node', () => {
    const runFlow = async (user: TestUser, device: DeviceSimulator, decisions: ['approve' | 'reject', 'approve' | 'reject']) => {
      const created = await request('POST', `${t.api}/flows`, {
        token: user.accessToken,
        body: {
          type: 'agentflow',
          name: 'Two deletes',
          definition: {
            nodes: [{ id: 'a', prompt: 'Delete both old tasks', tools: ['delete_task'] }],
            output: 'a',
            deviceId: device.deviceId,
          },
        },
      });
      expect(created.status).toBe(201);
      t.llm.push({
        toolCalls: [
          { name: 'delete_task', args: { task_id: TASK_A } },
          { name: 'delete_task', args: { task_id: TASK_B } },
        ],
      });
      const requested: ApprovalRequested[] = [];
      const both = signal();
      device.socket.on('approval_requested', (payload: ApprovalRequested) => {
        requested.push(payload);
        if (requested.length === 2) both.resolve();
      });
      const stream = readSse(`${t.api}/flows/${created.body.flow.id}/execute/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { input: {} },
        timeoutMs: 30_000,
      });
      await within(both.promise, 10_000, 'two approval requests for the node');
      expect(requested.map((r) => r.parameters)).toEqual([{ task_id: TASK_A }, { task_id: TASK_B }]);
      expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
      const before = t.llm.chatRequests().length;
      if (!decisions.includes('reject')) t.llm.push({ text: 'Both deleted.' });
      // Decided last to first: the node goes on after the last decision only.
      expect((await decide(user, requested[1].approvalId, decisions[1])).status).toBe(200);
      expect((await decide(user, requested[0].approvalId, decisions[0])).status).toBe(200);
      return { messages: (await stream).messages, requested, before };
    };

    test('two dangerous calls of a node: two requests; both approved, both run and the model reads them in call order', async () => {
      const { user, device } = await userWithDevice();
      const { messages, requested, before } = await runFlow(user, device, ['approve', 'approve']);

      expect(messages.at(-1)?.event).toBe('execution_completed');
      expect(messages.filter((m) => m.event === 'approval_requested').map((m) => m.data.approvalId)).toEqual(
        requested.map((r) => r.approvalId),
      );
      const called = messages.filter((m) => m.event === 'tool_called').map((m) => m.data);
      expect(called).toHaveLength(2);
      expect(called.every((call) => call.ok)).toBe(true);
      expect(
        device.calls
          .filter((call) => call.action === 'delete')
          .map((call) => (call as { data: { id: string } }).data.id)
          .sort(),
      ).toEqual([TASK_A, TASK_B].sort());
      const [resumed] = t.llm.chatRequests().slice(before);
      expect(toolResults(resumed)).toEqual([`Task ${TASK_A} deleted.`, `Task ${TASK_B} deleted.`]);
    });

    test('one approved and one rejected: the approved call runs, the rejected never reaches the device, the node fails approval_rejected', async () => {
      const { user, device } = await userWithDevice();
      const { messages } = await runFlow(user, device, ['approve', 'reject']);

      expect(messages.find((m) => m.event === 'node_failed')?.data).toMatchObject({ nodeId: 'a', error: { code: 'approval_rejected' } });
      expect(messages.at(-1)?.event).toBe('execution_failed');
      expect(device.calls.filter((call) => call.action === 'delete')).toEqual([expect.objectContaining({ data: { id: TASK_A } })]);
    });
  });
});
