import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';

/** `GET /hitl/requests`: the caller's own approval requests (the web console's approvals panel). */
describe('listing approval requests', () => {
  let t: TestApp;
  let device: DeviceSimulator;
  let owner: TestUser;
  let other: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000' } });
    [owner, other] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Other')]);
    device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: owner.accessToken,
      deviceId: 'owner-laptop',
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
  });

  afterAll(async () => {
    device?.close();
    await t.stop();
  });

  const list = (user: TestUser, query = '') => request('GET', `${t.api}/hitl/requests${query}`, { token: user.accessToken });

  test('given a pending request, its requester lists it by status, nobody else sees it, and a decision moves it', async () => {
    const requested = new Promise<ApprovalRequested>((resolve) => device.socket.once('approval_requested', resolve));
    await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` });
    const { approvalId } = await requested;

    const pending = await list(owner, '?status=pending');
    expect(pending.status).toBe(200);
    expect(pending.body.requests).toEqual([
      expect.objectContaining({ id: approvalId, toolName: 'delete_task', status: 'pending', parameters: { task_id: TASK_ID } }),
    ]);
    expect(pending.body.requests[0]).not.toHaveProperty('continuation');
    expect((await list(other)).body).toEqual({ requests: [] });

    expect((await request('PUT', `${t.api}/hitl/requests/${approvalId}/reject`, { token: owner.accessToken })).status).toBe(200);
    expect((await list(owner, '?status=pending')).body).toEqual({ requests: [] });
    expect((await list(owner, '?status=rejected')).body.requests.map((r: { id: string }) => r.id)).toEqual([approvalId]);
    expect((await list(owner)).body.requests).toHaveLength(1);
  });

  test.each(['?status=maybe', '?limit=0', '?limit=101', '?limit=ten', '?sort=asc'])(
    'bad query %s answers 400 in the error shape',
    async (query) => {
      const res = await list(owner, query);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) });
    },
  );

  test('without a token the list answers 401', async () => {
    expect((await request('GET', `${t.api}/hitl/requests`)).status).toBe(401);
  });
});
