import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { WsDevice } from '../support/ws-device';

/**
 * An API key may ask for work but never approve it: approvals are decided by a signed-in person (a
 * session token, or a device connection opened with one). A decision made with a key, on any
 * transport, is refused with `person_required`; the request stays pending and the tool never runs,
 * while the same decision from a session goes through.
 */

const TASK_ID = '5d0c6a2e-8b1f-4c3d-9e7a-2f4b6c8d0e1a';
const seed = { tasks: [{ id: TASK_ID, title: 'Release checklist', status: 'todo', priority: 'high' }] };

describe('approvals need a signed-in person', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000' } });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  /** A user, a write key of theirs "for automation", and a device opened with `token` (the key by default). */
  async function userWithKeyDevice(name: string, deviceToken: 'key' | 'session' = 'key') {
    const user = await registerUser(t.api, name);
    const created = await request('POST', `${t.api}/api-keys`, {
      token: user.accessToken,
      body: { name: 'automation', scopes: ['write'] },
    });
    expect(created.status).toBe(201);
    const key: string = created.body.secret;
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: deviceToken === 'key' ? key : user.accessToken,
      deviceId: `box-${randomUUID().slice(0, 6)}`,
      seed,
      reconnection: false,
    });
    devices.push(device);
    return { user, key, device };
  }

  /** The device asks for the delete; resolves with the approval request it is sent. */
  async function askForDelete(device: DeviceSimulator) {
    const requested = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` })) as {
      sessionId: string;
    };
    const approval = await requested;
    expect(approval).toMatchObject({ sessionId: ack.sessionId, toolName: 'delete_task' });
    return approval;
  }

  const statusOf = async (user: TestUser, approvalId: string) =>
    (await request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: user.accessToken })).body.status as string;
  const deletes = (device: DeviceSimulator) => device.calls.filter((call) => call.action === 'delete');

  test('HTTP: approve and reject with the key are 403 person_required; the session approves and the tool runs', async () => {
    const { user, key, device } = await userWithKeyDevice('KeyHttp');
    const approval = await askForDelete(device);

    for (const decision of ['approve', 'reject']) {
      for (const headers of [{ authorization: `Bearer ${key}` }, { 'x-api-key': key }] as Array<Record<string, string>>) {
        const res = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/${decision}`, { headers });
        expect(res.status).toBe(403);
        expect(res.body.error).toMatchObject({ code: 'person_required', message: expect.stringContaining('signed-in person') });
      }
    }
    // The key still reads the request; it just cannot decide it.
    const read = await request('GET', `${t.api}/hitl/requests/${approval.approvalId}`, { token: key });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ status: 'pending', decidedBy: null });
    expect(deletes(device)).toEqual([]);

    const resolved = nextDeviceEvent<{ approvalId: string; status: string }>(device, 'approval_resolved');
    const approved = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: user.accessToken });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decidedBy: user.id });
    expect(await resolved).toMatchObject({ approvalId: approval.approvalId, status: 'approved' });
    // A key-authenticated device serves the tool once a person approved it.
    await nextDeviceEvent(device, 'final');
    expect(deletes(device)).toEqual([expect.objectContaining({ table: 'tasks', data: { id: TASK_ID } })]);
  });

  test('Socket.IO /device opened with a key: tool_approval is refused person_required; a session device decides', async () => {
    const { user, device } = await userWithKeyDevice('KeySocket');
    const approval = await askForDelete(device);

    const refused = await device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: approval.approvalId, approved: true });
    expect(refused).toEqual({ error: { code: 'person_required', message: expect.stringContaining('signed-in person') } });
    expect(await statusOf(user, approval.approvalId)).toBe('pending');
    expect(deletes(device)).toEqual([]);

    const personal = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `phone-${randomUUID().slice(0, 6)}`,
      reconnection: false,
    });
    devices.push(personal);
    const ack = await personal.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: approval.approvalId, approved: false });
    expect(ack).toEqual({ ok: true, status: 'rejected' });
    await nextDeviceEvent(device, 'final');
    expect(deletes(device)).toEqual([]);
  });

  test('a key socket that refreshes its auth with a session token is still not a person', async () => {
    const { user, device } = await userWithKeyDevice('KeyRefresh');
    const approval = await askForDelete(device);
    const refreshed = await device.socket.timeout(5_000).emitWithAck('auth:refresh', { token: user.accessToken });
    expect(refreshed).toMatchObject({ ok: true });
    const refused = await device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: approval.approvalId, approved: true });
    expect(refused).toMatchObject({ error: { code: 'person_required' } });
    expect(await statusOf(user, approval.approvalId)).toBe('pending');
  });

  test('AI SDK edge: an approval answered in the next request with the key is 403 person_required', async () => {
    const { user, key, device } = await userWithKeyDevice('KeyAiSdk');
    const approval = await askForDelete(device);
    const answered = {
      role: 'assistant',
      parts: [
        {
          type: 'tool-delete_task',
          toolCallId: approval.approvalId,
          state: 'approval-responded',
          input: { task_id: TASK_ID },
          approval: { id: approval.approvalId, approved: true },
        },
      ],
    };
    const res = await request('POST', `${t.api}/chat/stream`, {
      token: key,
      headers: { 'x-vercel-ai-ui-message-stream': 'v1' },
      body: { id: `chat-${randomUUID()}`, messages: [answered] },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('person_required');
    expect(await statusOf(user, approval.approvalId)).toBe('pending');
    expect(deletes(device)).toEqual([]);
  });

  test('the plain WebSocket device and IDE endpoints open only with a session token: a key is 401 at the upgrade', async () => {
    const { key } = await userWithKeyDevice('KeyWs');
    for (const path of ['/api/v1/ws/device', '/api/v1/ws']) {
      await expect(WsDevice.connect(t.url, key, 10_000, path)).rejects.toThrow('status 401');
    }
  });
});
