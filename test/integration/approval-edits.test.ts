import { and, eq } from 'drizzle-orm';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { systemAudit } from '../../src/models/schema';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { request } from '../support/http';
import { toolResultTexts } from '../support/scripted-llm';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { eventually } from '../support/wait';

/**
 * Approvals beyond yes and no: the approver may run the call with their own arguments (checked
 * against the tool's schema before anything is decided; the audit records the edit, the model is
 * told), or reject it with a reply the model reads as the tool's result, and the turn — a chat
 * turn or an agentflow node — goes on. Whole app, a Socket.IO device, the scripted model.
 */

const ASKED = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const OTHER = 'task-other';
const seed = {
  tasks: [
    { id: ASKED, title: 'Report', status: 'done', priority: 'low' },
    { id: OTHER, title: 'Old draft', status: 'done', priority: 'low' },
  ],
};

describe('approvals with edited arguments or a reply', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { HITL_TIMEOUT_MS: '60000' } });
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const owner = () => userWithDeviceOn(t.url, devices, { name: 'Approver', seed });
  const decide = (token: string, id: string, decision: 'approve' | 'reject', body?: unknown) =>
    request('PUT', `${t.api}/hitl/requests/${id}/${decision}`, { token, body });
  const deletes = (device: DeviceSimulator) => device.calls.filter((call) => call.action === 'delete');

  /** A chat turn from the device whose model asks to delete ASKED: it parks on its approval. */
  async function parkedTurn(device: DeviceSimulator) {
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: ASKED } }] }, { text: 'Done.' });
    const asked = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Clean up the report' })) as {
      sessionId: string;
    };
    const approval = await asked;
    const final = nextDeviceEvent<{ sessionId: string; response: string }>(device, 'final', (f) => f.sessionId === ack.sessionId, 15_000);
    return { approval, final, requestsBefore: t.llm.chatRequests().length };
  }
  const lastToolResult = () => toolResultTexts(t.llm.chatRequests().at(-1)!).at(-1)!;

  test('approved with edited arguments: a bad edit is a 400 and decides nothing; a good one runs the call with them, is audited, and the model is told', async () => {
    const { user, device } = await owner();
    const { approval, final } = await parkedTurn(device);

    const wrongType = await decide(user.accessToken, approval.approvalId, 'approve', { arguments: { task_id: 42 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.details).toEqual([expect.objectContaining({ path: 'arguments.task_id' })]);
    const withReply = await decide(user.accessToken, approval.approvalId, 'approve', { message: 'no' });
    expect(withReply.status).toBe(400);
    // An API key decides nothing, with or without arguments.
    const key = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'bot', scopes: ['read', 'write'] } });
    const byKey = await decide(key.body.secret, approval.approvalId, 'approve', { arguments: { task_id: OTHER } });
    expect(byKey.status).toBe(403);
    expect(byKey.body.error.code).toBe('person_required');
    const still = await request('GET', `${t.api}/hitl/requests/${approval.approvalId}`, { token: user.accessToken });
    expect(still.body).toMatchObject({ status: 'pending', editedArguments: null });
    expect(deletes(device)).toEqual([]);

    const approved = await decide(user.accessToken, approval.approvalId, 'approve', { arguments: { task_id: OTHER } });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', parameters: { task_id: ASKED }, editedArguments: { task_id: OTHER } });
    expect((await final).response).toBe('Done.');
    expect(deletes(device)).toEqual([expect.objectContaining({ table: 'tasks', data: { id: OTHER } })]);
    const told = lastToolResult();
    expect(told).toContain('the user edited the arguments');
    expect(told).toContain(`Task ${OTHER} deleted.`);

    const [audit] = await t.app.repos.db
      .select()
      .from(systemAudit)
      .where(and(eq(systemAudit.targetId, approval.approvalId), eq(systemAudit.action, 'hitl.approved')));
    expect(audit).toMatchObject({
      actorId: user.id,
      details: expect.objectContaining({ editedArguments: { task_id: OTHER }, originalArguments: { task_id: ASKED } }),
    });
  }, 30_000);

  test('rejected with a reply from the device: the model reads the reply as the result and the turn goes on', async () => {
    const { device } = await owner();
    const { approval, final } = await parkedTurn(device);
    const mixed = await device.socket
      .timeout(5_000)
      .emitWithAck('tool_approval', { approvalId: approval.approvalId, approved: true, message: 'not that one' });
    expect(mixed).toMatchObject({ error: { code: 'validation_failed' } });

    const ack = await device.socket
      .timeout(5_000)
      .emitWithAck('tool_approval', { approvalId: approval.approvalId, approved: false, message: 'Keep the report, archive it instead.' });
    expect(ack).toEqual({ ok: true, status: 'rejected' });
    expect((await final).response).toBe('Done.');
    expect(deletes(device)).toEqual([]);
    expect(lastToolResult()).toContain('Keep the report, archive it instead.');
    const row = await t.app.repos.hitl.find(approval.approvalId);
    expect(row).toMatchObject({ status: 'rejected', reply: 'Keep the report, archive it instead.' });
  }, 30_000);

  test('an agentflow node goes on after a rejection with a reply, and runs an edited call', async () => {
    const { user, device } = await owner();
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Tidy',
        definition: { nodes: [{ id: 'a', prompt: 'Tidy up', tools: ['delete_task'] }], output: 'a', deviceId: device.deviceId },
      },
    });
    const flowId = created.body.flow.id as string;
    const run = async (decision: 'approve' | 'reject', body: unknown, answer?: string) => {
      t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: ASKED } }] }, ...(answer ? [{ text: answer }] : []));
      const asked = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
      const started = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
      const approval = await asked;
      expect((await decide(user.accessToken, approval.approvalId, decision, body)).status).toBe(200);
      return eventually(
        () => request('GET', `${t.api}/flows/${flowId}/executions/${started.body.executionId}`, { token: user.accessToken }),
        (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
        20_000,
      );
    };

    const replied = await run('reject', { message: 'Do not delete anything today.' }, 'Nothing deleted, as asked.');
    expect(replied.body.execution).toMatchObject({ status: 'completed', output: 'Nothing deleted, as asked.' });
    expect(lastToolResult()).toContain('Do not delete anything today.');
    expect(deletes(device)).toEqual([]);

    // A plain rejection still fails the node, as before.
    const plain = await run('reject', undefined);
    expect(plain.body.execution.status).toBe('failed');
    expect(plain.body.execution.nodes[0].error.code).toBe('approval_rejected');

    const edited = await run('approve', { arguments: { task_id: OTHER } }, 'Deleted the old draft.');
    expect(edited.body.execution).toMatchObject({ status: 'completed', output: 'Deleted the old draft.' });
    expect(deletes(device)).toEqual([expect.objectContaining({ data: { id: OTHER } })]);
  }, 60_000);
});
