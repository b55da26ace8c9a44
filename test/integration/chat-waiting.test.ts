import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import type { RedisConnections } from '../../src/lib/redis';
import { QueueRegistry } from '../../src/producers/registry';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl } from '../support/database';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';
import { testRedisConnections } from '../support/redis';
import { startScriptedLLM } from '../support/scripted-llm';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { eventually } from '../support/wait';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

interface Final {
  sessionId: string;
  response: string;
}

/** Asks for the delete from the device: the turn parks on its approval. */
async function askForDelete(device: DeviceSimulator) {
  const approval = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
  const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` })) as {
    sessionId: string;
    messageId: string;
  };
  const requested = await approval;
  return { ...ack, approval: requested };
}

/**
 * A chat turn parked on an approval is a `waiting` run with one approval waitpoint: no worker job
 * holds it, its decision completes the waitpoint and the run kernel queues the resume. The whole
 * app runs (real Redis, PostgreSQL, Socket.IO devices), with the demo model asking for the delete.
 */
describe('a chat turn waiting on its approval', () => {
  let t: TestApp;
  let redis: RedisConnections;
  let queues: QueueRegistry;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000' } });
    redis = testRedisConnections();
    await redis.ready();
    queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queues?.close();
    await redis?.quit();
    await t?.stop();
  });

  const userWithDevice = () => userWithDeviceOn(t.url, devices, { name: 'Waiter', seed });
  const runOf = (messageId: string) => t.app.repos.runs.find('chat', messageId);
  const waitingRun = (messageId: string) =>
    eventually(
      () => runOf(messageId),
      (run) => run?.status === 'waiting',
    );

  test('given a parked turn, its run waits holding no job while another turn runs, and the approval resumes it to success', async () => {
    const { user, device } = await userWithDevice();
    const turn = await askForDelete(device);
    await waitingRun(turn.messageId);

    const waitpoints = await t.app.repos.waitpoints.ofRun('chat', turn.messageId);
    expect(waitpoints).toEqual([
      expect.objectContaining({ kind: 'approval', status: 'pending', ref: turn.approval.approvalId, userId: user.id }),
    ]);
    // No worker slot waits on the person: the turn's job has finished and nothing is active.
    await eventually(
      () => queues.counts('assistant'),
      (counts) => counts.active === 0,
    );
    expect(await (await queues.job('assistant', turn.messageId))?.getState()).toBe('completed');

    // Meanwhile another user's turn runs to its end.
    const other = await userWithDevice();
    const otherFinal = nextDeviceEvent<Final>(other.device, 'final', undefined, 15_000);
    await other.device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Hello there' });
    await expect(otherFinal).resolves.toMatchObject({ response: expect.any(String) });
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'waiting' });

    // An outsider's decision is 404 and changes nothing.
    const outsider = await registerUser(t.api, 'Outsider');
    const refused = await request('PUT', `${t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: outsider.accessToken });
    expect(refused.status).toBe(404);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'waiting' });

    const final = nextDeviceEvent<Final>(device, 'final', (f) => f.sessionId === turn.sessionId, 15_000);
    const approved = await request('PUT', `${t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken });
    expect(approved.status).toBe(200);
    expect((await final).response).toMatch(/delet/i);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'succeeded' });
    const [completed] = await t.app.repos.waitpoints.ofRun('chat', turn.messageId);
    expect(completed).toMatchObject({ status: 'completed', output: { approvalId: turn.approval.approvalId, status: 'approved' } });
    expect(completed.releasedAt).toBeInstanceOf(Date);

    // Decided twice: 409, and the turn is not resumed again.
    const again = await request('PUT', `${t.api}/hitl/requests/${turn.approval.approvalId}/reject`, { token: user.accessToken });
    expect(again.status).toBe(409);
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);
  });

  test('given a waiting turn, cancel ends it at once; a decision after it is refused and resumes nothing', async () => {
    const { user, device } = await userWithDevice();
    const turn = await askForDelete(device);
    await waitingRun(turn.messageId);

    const cancelled = await request('POST', `${t.api}/chat/sessions/${turn.sessionId}/cancel`, { token: user.accessToken });
    expect(cancelled.status).toBe(202);
    // Ended by the cancel itself, before its answer: no worker was needed.
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'cancelled' });

    const late = await request('PUT', `${t.api}/hitl/requests/${turn.approval.approvalId}/approve`, { token: user.accessToken });
    expect(late.status).toBe(409);
    const again = await request('POST', `${t.api}/chat/sessions/${turn.sessionId}/cancel`, { token: user.accessToken });
    expect(again.status).toBe(409);
    await expect(runOf(turn.messageId)).resolves.toMatchObject({ status: 'cancelled' });
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
  });
});

describe('a waiting chat turn across a restart', () => {
  test('given an app stopped while a turn waits, a new app on the same stores leaves it waiting and its approval resumes it', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const llm = await startScriptedLLM();
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const start = (): Promise<RunningSwitchboard> => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { REAPER_GRACE_MS: '0' } });
      return startSwitchboard(config, {
        logger: createLogger({ level: config.log.level }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    };
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
      await llm.close();
      await database.drop();
    }
  });
});
