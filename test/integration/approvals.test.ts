import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { DeviceSimulator } from '@switchboard/client/testing';
import { createLogger } from '../../src/lib/logger';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl } from '../support/database';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, toolResultTexts } from '../support/scripted-llm';
import { nextDeviceEvent } from '../support/device-events';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = {
  tasks: [
    { id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' },
    { id: 'task-keep', title: 'Keep me', status: 'todo', priority: 'high' },
  ],
};

const toolResults = toolResultTexts;

const next = nextDeviceEvent;

/** Sends `message` from the device; resolves with the turn's session and its first approval request. */
async function askForDelete(device: DeviceSimulator, message = `Delete task ${TASK_ID}`) {
  const approval = next<ApprovalRequested>(device, 'approval_requested');
  const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message })) as { sessionId: string };
  expect(ack.sessionId).toEqual(expect.any(String));
  const requested = await approval;
  expect(requested.sessionId).toBe(ack.sessionId);
  return {
    sessionId: ack.sessionId,
    approval: requested,
    final: next<{ sessionId: string; response: string }>(device, 'final', (f) => f.sessionId === ack.sessionId, 15_000),
  };
}

const deleteCalls = (device: DeviceSimulator) => device.calls.filter((call) => call.action === 'delete');

describe('approvals of dangerous tool calls', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { DEVICE_RPC_TIMEOUT_MS: '2000', HITL_TIMEOUT_MS: '60000' } });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const userWithDevice = (app: { url: string } = t) => userWithDeviceOn(app.url, devices, { name: 'Approver', seed });

  const decide = (user: TestUser, id: string, decision: 'approve' | 'reject') =>
    request('PUT', `${t.api}/hitl/requests/${id}/${decision}`, { token: user.accessToken });

  test('the demo model\'s "Delete task <id>" asks for approval; the delete reaches the device only after approval', async () => {
    const { user, device } = await userWithDevice();

    const turn = await askForDelete(device);

    expect(turn.approval).toMatchObject({
      toolName: 'delete_task',
      parameters: { task_id: TASK_ID },
      reason: expect.stringContaining('delete'),
    });
    expect(Date.parse(turn.approval.expiresAt)).toBeGreaterThan(Date.now());
    const pending = await request('GET', `${t.api}/hitl/requests/${turn.approval.approvalId}`, { token: user.accessToken });
    expect(pending.status).toBe(200);
    expect(pending.body).toMatchObject({ id: turn.approval.approvalId, status: 'pending', toolName: 'delete_task', decidedAt: null });
    expect(deleteCalls(device)).toEqual([]);
    expect(device.store.rows('tasks').map((row) => row.id)).toContain(TASK_ID);

    const approved = await decide(user, turn.approval.approvalId, 'approve');
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decidedBy: user.id });

    const final = await turn.final;
    expect(deleteCalls(device)).toEqual([expect.objectContaining({ table: 'tasks', data: { id: TASK_ID } })]);
    expect(device.store.rows('tasks').map((row) => row.id)).not.toContain(TASK_ID);
    expect(final.response).toMatch(/delet/i);

    const history = await request('GET', `${t.api}/chat/sessions/${turn.sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'tool', 'assistant']);
    expect(history.body.messages[1].content).toBe(`Task ${TASK_ID} deleted.`);

    const metrics = await fetch(`${t.url}/metrics`).then((res) => res.text());
    expect(metrics).toMatch(/switchboard_approvals_total\{outcome="approved",tool="delete_task"\} [1-9]/);
  });

  test('a rejection: nothing is deleted and the model is told, then answers', async () => {
    const { user, device } = await userWithDevice();
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
    const turn = await askForDelete(device, 'Please remove my old report task');
    const before = t.llm.chatRequests().length;
    t.llm.push({ text: 'OK, I did not delete it.' });

    const rejected = await decide(user, turn.approval.approvalId, 'reject');
    expect(rejected.status).toBe(200);
    expect(rejected.body.status).toBe('rejected');

    const final = await turn.final;
    expect(final.response).toBe('OK, I did not delete it.');
    expect(deleteCalls(device)).toEqual([]);
    const [resumed] = t.llm.chatRequests().slice(before);
    expect(toolResults(resumed)).toEqual([expect.stringMatching(/^Error: the user rejected delete_task/)]);
  });

  test("the device's tool_approval event approves; a second decision is 409; an outsider gets 404", async () => {
    const { user, device } = await userWithDevice();
    const outsider = await registerUser(t.api, 'Outsider');
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] }, { text: 'Deleted it.' });
    const turn = await askForDelete(device, 'Remove the old report task');
    const id = turn.approval.approvalId;

    for (const path of [`/hitl/requests/${id}`, `/hitl/requests/${id}/approve`, `/hitl/requests/${id}/reject`]) {
      const res = await request(path.endsWith(id) ? 'GET' : 'PUT', `${t.api}${path}`, { token: outsider.accessToken });
      expect(res.status).toBe(404);
    }
    expect((await request('GET', `${t.api}/hitl/requests/not-a-uuid`, { token: user.accessToken })).status).toBe(404);

    const ack = await device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: id, approved: true });
    expect(ack).toEqual({ ok: true, status: 'approved' });
    expect((await turn.final).response).toBe('Deleted it.');
    expect(deleteCalls(device)).toHaveLength(1);

    const again = await decide(user, id, 'reject');
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_decided');
    const twice = await device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: id, approved: true });
    expect(twice).toEqual({ error: expect.objectContaining({ code: 'already_decided' }) });
    expect(await device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: 'x', approved: 'yes' })).toEqual({
      error: expect.objectContaining({ code: 'validation_failed' }),
    });
  });
});

describe('approval timeout', () => {
  test('an undecided request times out; the tool never runs and the model is told', async () => {
    const t = await startTestApp({ env: { HITL_TIMEOUT_MS: '500' } });
    try {
      const user = await registerUser(t.api, 'Slow');
      const device = await DeviceSimulator.connect({
        url: t.url,
        accessToken: user.accessToken,
        deviceId: 'laptop-slow',
        seed,
        reconnection: false,
      });
      try {
        t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] }, { text: 'It was not deleted: no approval came.' });
        const turn = await askForDelete(device);
        const final = await turn.final;
        expect(final.response).toBe('It was not deleted: no approval came.');
        expect(deleteCalls(device)).toEqual([]);
        const row = await request('GET', `${t.api}/hitl/requests/${turn.approval.approvalId}`, { token: user.accessToken });
        expect(row.body).toMatchObject({ status: 'timeout', decidedBy: null, decidedAt: expect.any(String) });
        expect(toolResults(t.llm.chatRequests().at(-1)!)).toEqual([
          expect.stringMatching(/^Error: delete_task was NOT run: the user did not approve it in time/),
        ]);
        expect(
          (await request('PUT', `${t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken })).status,
        ).toBe(409);
      } finally {
        device.close();
      }
    } finally {
      await t.stop();
    }
  });
});

describe('approvals across a restart', () => {
  test('stopped after approval_requested, a new app on the same database and Redis prefix completes the approved turn', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const llm = await startScriptedLLM();
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const start = (): Promise<RunningSwitchboard> => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url });
      return startSwitchboard(config, {
        logger: createLogger({ level: config.log.level }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    };
    let app = await start();
    let device: DeviceSimulator | undefined;
    try {
      const user = await registerUser(`${app.url}/api/v1`, 'Restart');
      device = await DeviceSimulator.connect({
        url: app.url!,
        accessToken: user.accessToken,
        deviceId: 'laptop-restart',
        seed,
        reconnection: false,
      });
      llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
      const turn = await askForDelete(device);
      turn.final.catch(() => undefined);
      device.close();
      await app.stop();

      app = await start();
      device = await DeviceSimulator.connect({
        url: app.url!,
        accessToken: user.accessToken,
        deviceId: 'laptop-restart',
        seed,
        reconnection: false,
      });
      const final = next<{ sessionId: string; response: string }>(device, 'final', (f) => f.sessionId === turn.sessionId, 15_000);
      llm.push({ text: 'Deleted the old report after your approval.' });
      const approved = await request('PUT', `${app.url}/api/v1/hitl/requests/${turn.approval.approvalId}/approve`, {
        token: user.accessToken,
      });
      expect(approved.status).toBe(200);

      expect((await final).response).toBe('Deleted the old report after your approval.');
      expect(deleteCalls(device)).toEqual([expect.objectContaining({ table: 'tasks', data: { id: TASK_ID } })]);
    } finally {
      device?.close();
      await app.stop();
      await llm.close();
      await database.drop();
    }
  });
});
