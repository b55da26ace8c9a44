import { DeviceSimulator } from '@switchboard/client/testing';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';
import { askForDelete, restartableStores, seed, TASK_ID, useParkingApp, type Final } from '../support/parked-turns';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { eventually } from '../support/wait';

/**
 * A chat turn parked on an approval is a `waiting` run with one approval waitpoint: no worker job
 * holds it, its decision completes the waitpoint and the run kernel queues the resume. The whole
 * app runs (real Redis, PostgreSQL, Socket.IO devices), with the demo model asking for the delete.
 */
describe('a chat turn waiting on its approval', () => {
  const fx = useParkingApp({ HITL_TIMEOUT_MS: '60000' });
  const { devices } = fx;

  const userWithDevice = () => userWithDeviceOn(fx.t.url, devices, { name: 'Waiter', seed });
  const runOf = (messageId: string) => fx.t.app.repos.runs.find('chat', messageId);
  const waitingRun = (messageId: string) =>
    eventually(
      () => runOf(messageId),
      (run) => run?.status === 'waiting',
    );

  test('given a parked turn, its run waits holding no job while another turn runs, and the approval resumes it to success', async () => {
    const { user, device } = await userWithDevice();
    const turn = await askForDelete(device);
    await waitingRun(turn.messageId);

    const waitpoints = await fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId);
    expect(waitpoints).toEqual([
      expect.objectContaining({ kind: 'approval', status: 'pending', ref: turn.approval.approvalId, userId: user.id }),
    ]);
    // No worker slot waits on the person: the turn's job has finished and nothing is active.
    await eventually(
      () => fx.queues.counts('assistant'),
      (counts) => counts.active === 0,
    );
    expect(await (await fx.queues.job('assistant', turn.messageId))?.getState()).toBe('completed');

    // Meanwhile another user's turn runs to its end.
    const other = await userWithDevice();
    const otherFinal = nextDeviceEvent<Final>(other.device, 'final', undefined, 15_000);
    await other.device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Hello there' });
    await expect(otherFinal).resolves.toMatchObject({ response: expect.any(String) });
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'waiting' });

    // An outsider's decision is 404 and changes nothing.
    const outsider = await registerUser(fx.t.api, 'Outsider');
    const refused = await request('PUT', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: outsider.accessToken });
    expect(refused.status).toBe(404);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'waiting' });

    const final = nextDeviceEvent<Final>(device, 'final', (f) => f.sessionId === turn.sessionId, 15_000);
    const approved = await request('PUT', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken });
    expect(approved.status).toBe(200);
    expect((await final).response).toMatch(/delet/i);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'succeeded' });
    const [completed] = await fx.t.app.repos.waitpoints.ofRun('chat', turn.messageId);
    expect(completed).toMatchObject({ status: 'completed', output: { approvalId: turn.approval.approvalId, status: 'approved' } });
    expect(completed.releasedAt).toBeInstanceOf(Date);

    // Decided twice: 409, and the turn is not resumed again.
    const again = await request('PUT', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}/reject`, { token: user.accessToken });
    expect(again.status).toBe(409);
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);
  });

  test('given a waiting turn, cancel ends it at once; a decision after it is refused and resumes nothing', async () => {
    const { user, device } = await userWithDevice();
    const turn = await askForDelete(device);
    await waitingRun(turn.messageId);

    const cancelled = await request('POST', `${fx.t.api}/chat/sessions/${turn.sessionId}/cancel`, { token: user.accessToken });
    expect(cancelled.status).toBe(202);
    // Ended by the cancel itself, before its answer: no worker was needed.
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'cancelled' });

    const late = await request('PUT', `${fx.t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken });
    expect(late.status).toBe(409);
    const again = await request('POST', `${fx.t.api}/chat/sessions/${turn.sessionId}/cancel`, { token: user.accessToken });
    expect(again.status).toBe(409);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'cancelled' });
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
  });
});

describe('a waiting chat turn across a restart', () => {
  test('given an app stopped while a turn waits, a new app on the same stores leaves it waiting and its approval resumes it', async () => {
    const stores = await restartableStores({ REAPER_GRACE_MS: '0' });
    const { llm, start } = stores;
    let app = await start();
    let device: DeviceSimulator | undefined;
    try {
      const user = await registerUser(`${app.url}/api/v1`, 'Restart');
      const connect = async (url: string) =>
        DeviceSimulator.connect({ url, accessToken: user.accessToken, deviceId: 'laptop-waiting', seed, reconnection: false });
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

      app = await start();
      device = await connect(app.url!);
      const restarted = app;
      // The new process's recovery (no grace) finds the waiting turn and leaves it alone.
      await expect(restarted.repos.runs.find('chat', turn.messageId)).resolves.toMatchObject({ status: 'waiting' });
      llm.push({ text: 'Deleted the old report after your approval.' });
      const approved = await request('PUT', `${app.url}/api/v1/hitl/requests/${turn.approval.approvalId}/approve`, {
        token: user.accessToken,
      });
      expect(approved.status).toBe(200);
      // Read from the stores: the turn's answer and its run, ended by the resume the kernel queued.
      await eventually(
        () => restarted.repos.runs.find('chat', turn.messageId),
        (run) => run?.status === 'succeeded',
      );
      const answer = await restarted.repos.chat.findReply(turn.sessionId, turn.messageId);
      expect(answer).toMatchObject({ content: 'Deleted the old report after your approval.', status: 'completed' });
      expect(device.calls.filter((call) => call.action === 'delete')).toEqual([
        expect.objectContaining({ table: 'tasks', data: { id: TASK_ID } }),
      ]);
    } finally {
      device?.close();
      await app.stop();
      await stores.close();
    }
  });
});
