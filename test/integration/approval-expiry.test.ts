import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalResolved } from '../../src/schemas/socket-events';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';
import { askForDelete, restartableStores, seed, TASK_ID, useParkingApp, type Final } from '../support/parked-turns';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { eventually } from '../support/wait';

/** Every `approval_resolved` a device hears for one request. */
function resolutionsOf(device: DeviceSimulator, approvalId: string): ApprovalResolved[] {
  const heard: ApprovalResolved[] = [];
  device.socket.on('approval_resolved', (payload: ApprovalResolved) => {
    if (payload.approvalId === approvalId) heard.push(payload);
  });
  return heard;
}

const deletes = (device: DeviceSimulator) => device.calls.filter((call) => call.action === 'delete');

/**
 * An approval's expiry is the deadline of its waitpoint: the `waitpoint-deadline` job completes it
 * with `{timedOut: true}`, which marks the request `timeout` in the same transaction, tells every
 * surface, and continues the waiting turn (the model hears the tool did not run). Whole app, real
 * Redis/BullMQ, PostgreSQL and Socket.IO devices.
 */
describe('an approval expiring as its waitpoint deadline', () => {
  const fx = useParkingApp({ HITL_TIMEOUT_MS: '1500' });
  const { devices } = fx;

  const userWithDevice = () => userWithDeviceOn(fx.t.url, devices, { name: 'Expiry', seed });
  const runOf = (messageId: string) => fx.t.app.repos.runs.find('chat', messageId);

  test('given a waiting turn, its deadline times the approval out, every surface hears it once, and the turn ends without the tool', async () => {
    const { user, device } = await userWithDevice();
    const turn = await askForDelete(device);
    const heard = resolutionsOf(device, turn.approval.approvalId);
    await eventually(
      () => runOf(turn.messageId),
      (run) => run?.status === 'waiting',
    );
    const [waitpoint] = await fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId);
    expect(waitpoint).toMatchObject({ kind: 'approval', status: 'pending', ref: turn.approval.approvalId });
    expect(waitpoint.completeAfter?.toISOString()).toBe(turn.approval.expiresAt);
    // The expiry is the waitpoint's delayed job; no separate timeout job exists.
    expect(await fx.queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`)).toBeTruthy();
    expect(await fx.queues.job('assistant', `hitl-timeout-${turn.approval.approvalId}`)).toBeFalsy();

    const final = await nextDeviceEvent<Final>(device, 'final', (f) => f.sessionId === turn.sessionId, 15_000);
    expect(final.response).toEqual(expect.any(String));
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'succeeded' });
    const view = await request('GET', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}`, { token: user.accessToken });
    expect(view.body).toMatchObject({ status: 'timeout' });
    const [completed] = await fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId);
    expect(completed).toMatchObject({
      status: 'completed',
      output: { approvalId: turn.approval.approvalId, status: 'timeout', timedOut: true },
    });
    expect(completed.releasedAt).toBeInstanceOf(Date);
    expect(heard).toEqual([expect.objectContaining({ status: 'timeout', decidedBy: null })]);
    expect(deletes(device)).toEqual([]);

    // A decision after it is 409 `expired` and resumes nothing.
    const late = await request('PUT', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('expired');
    expect(deletes(device)).toEqual([]);
  }, 30_000);

  test('given a turn cancelled while it waits, its deadline later leaves the request cancelled and the run cancelled', async () => {
    const { user, device } = await userWithDevice();
    const turn = await askForDelete(device);
    await eventually(
      () => runOf(turn.messageId),
      (run) => run?.status === 'waiting',
    );
    const cancelled = await request('POST', `${fx.t.api}/chat/sessions/${turn.sessionId}/cancel`, { token: user.accessToken });
    expect(cancelled.status).toBe(202);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'cancelled' });

    // The deadline still fires: it completes the waitpoint, keeps the cancel's rejection and continues nothing.
    const [completed] = await eventually(
      () => fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId),
      ([row]) => row?.status === 'completed',
      10_000,
    );
    expect(completed.output).toEqual({ approvalId: turn.approval.approvalId, status: 'rejected' });
    expect(completed.releasedAt).toBeNull();
    const row = await fx.t.app.repos.hitl.find(turn.approval.approvalId);
    expect(row).toMatchObject({ status: 'rejected', decisionReason: 'cancelled' });
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'cancelled' });
    expect(deletes(device)).toEqual([]);
  }, 30_000);
});

describe('an approval expiry racing its decision', () => {
  const fx = useParkingApp({ HITL_TIMEOUT_MS: '60000' });
  const { devices } = fx;

  test.each([1, 2, 3])(
    'given the deadline job fired as the owner approves (round %i), exactly one of the two settles it',
    async () => {
      const { user, device } = await userWithDeviceOn(fx.t.url, devices, { name: 'Racer', seed });
      const turn = await askForDelete(device);
      const heard = resolutionsOf(device, turn.approval.approvalId);
      await eventually(
        () => fx.t.app.repos.runs.find('chat', turn.messageId),
        (run) => run?.status === 'waiting',
      );
      const [waitpoint] = await fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId);
      const deadline = await fx.queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`);
      const final = nextDeviceEvent<Final>(device, 'final', (f) => f.sessionId === turn.sessionId, 15_000);

      // The deadline arrives now, on the app's worker, while the approval goes through the API.
      const [, approved] = await Promise.all([
        deadline!.promote(),
        request('PUT', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken }),
      ]);
      await final;
      await expect(fx.t.app.repos.runs.find('chat', turn.messageId)).resolves.toMatchObject({ status: 'succeeded' });

      const row = (await fx.t.app.repos.hitl.find(turn.approval.approvalId))!;
      expect(['approved', 'timeout']).toContain(row.status);
      expect(approved.status).toBe(row.status === 'approved' ? 200 : 409);
      const [completed] = await fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId);
      expect(completed.output).toMatchObject({ approvalId: row.id, status: row.status });
      // One end heard, and the tool ran only when the approval won.
      expect(heard).toEqual([expect.objectContaining({ status: row.status })]);
      expect(deletes(device)).toHaveLength(row.status === 'approved' ? 1 : 0);
    },
    30_000,
  );
});

describe('an approval expiring across a restart', () => {
  test('given an app stopped while a turn waits, the new app times the approval out at its deadline and the turn ends', async () => {
    const stores = await restartableStores({ HITL_TIMEOUT_MS: '2000', REAPER_GRACE_MS: '0' });
    const { llm, start } = stores;
    let app = await start();
    let device: DeviceSimulator | undefined;
    try {
      const user = await registerUser(`${app.url}/api/v1`, 'Restart');
      const connect = async (url: string) =>
        DeviceSimulator.connect({ url, accessToken: user.accessToken, deviceId: 'laptop-expiring', seed, reconnection: false });
      device = await connect(app.url!);
      llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
      const turn = await askForDelete(device);
      const first = app;
      await eventually(
        () => first.repos.runs.find('chat', turn.messageId),
        (run) => run?.status === 'waiting',
      );
      device.close();
      await app.stop();

      llm.push({ text: 'The delete was not approved in time, so nothing was deleted.' });
      app = await start();
      device = await connect(app.url!);
      const restarted = app;
      await eventually(
        () => restarted.repos.runs.find('chat', turn.messageId),
        (run) => run?.status === 'succeeded',
        15_000,
      );
      await expect(restarted.repos.hitl.find(turn.approval.approvalId)).resolves.toMatchObject({ status: 'timeout' });
      const answer = await restarted.repos.chat.findReply(turn.sessionId, turn.messageId);
      expect(answer).toMatchObject({ content: 'The delete was not approved in time, so nothing was deleted.', status: 'completed' });
      // The model was told the call did not run.
      expect(JSON.stringify(llm.chatRequests().at(-1))).toMatch(/timeout|time|not run|expired/i);
      expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
    } finally {
      device?.close();
      await app.stop();
      await stores.close();
    }
  }, 40_000);
});
