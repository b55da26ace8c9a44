import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import type { RedisConnections } from '../../src/lib/redis';
import { QueueRegistry } from '../../src/producers/registry';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl } from '../support/database';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { testRedisConnections } from '../support/redis';
import { startScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

/**
 * An agentflow node parked on approvals waits on waitpoints of its execution's run: the run stays
 * `running` (other nodes may run), each approval is a waitpoint whose deadline is its expiry, and
 * its completion continues the node through the run kernel (the flow kind queues the node's resume
 * job). Whole app: real Redis/BullMQ, PostgreSQL, a Socket.IO device, the scripted model.
 */
describe('an agentflow node waiting on its approvals', () => {
  let t: TestApp;
  let redis: RedisConnections;
  let queues: QueueRegistry;
  let ada: TestUser;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { HITL_TIMEOUT_MS: '60000' } });
    redis = testRedisConnections();
    await redis.ready();
    queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
    ada = await registerUser(t.api, 'Ada');
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queues?.close();
    await redis?.quit();
    await t?.stop();
  });

  /** Runs a one-node flow whose model asks for a delete: the node parks on its approval. */
  async function parkedNode() {
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({ url: t.url, accessToken: ada.accessToken, deviceId, seed, reconnection: false });
    devices.push(device);
    const created = await request('POST', `${t.api}/flows`, {
      token: ada.accessToken,
      body: {
        type: 'agentflow',
        name: 'Waits',
        definition: { nodes: [{ id: 'a', prompt: 'Delete it', tools: ['delete_task'] }], output: 'a', deviceId },
      },
    });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
    const asked = nextDeviceEvent<{ approvalId: string; sessionId: string; expiresAt: string }>(device, 'approval_requested');
    const stream = readSse(`${t.api}/flows/${created.body.flow.id}/execute/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    }).then((result) => result.messages);
    const approval = await asked;
    const executionId = approval.sessionId;
    const [waitpoint] = await eventually(
      () => t.app.repos.waitpoints.ofRun('flow', executionId),
      (rows) => rows.length === 1,
    );
    return { device, flowId: created.body.flow.id as string, executionId, approval, waitpoint, stream };
  }
  const deletes = (device: DeviceSimulator) => device.calls.filter((call) => call.action === 'delete');
  const resumeJob = (executionId: string, approvalId: string) => queues.job('flows', `flow-${executionId}-a-resume-${approvalId}`);

  test('given a parked node, its approval is a waitpoint of the running execution, and the decision continues the node through the kernel', async () => {
    const { device, executionId, approval, waitpoint, stream } = await parkedNode();
    expect(waitpoint).toMatchObject({ kind: 'approval', status: 'pending', ref: approval.approvalId, userId: ada.id });
    expect(waitpoint.completeAfter?.toISOString()).toBe(approval.expiresAt);
    await expect(t.app.repos.runs.find('flow', executionId)).resolves.toMatchObject({ status: 'running' });

    // Someone else's decision is 404 and completes nothing.
    const outsider = await registerUser(t.api, 'Outsider');
    const refused = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: outsider.accessToken });
    expect(refused.status).toBe(404);
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({ status: 'pending' });

    t.llm.push({ text: 'Deleted.' });
    const approved = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: ada.accessToken });
    expect(approved.status).toBe(200);
    const messages = await stream;
    expect(messages.at(-1)?.event).toBe('execution_completed');
    expect(deletes(device)).toHaveLength(1);
    const completed = await t.app.repos.waitpoints.find(waitpoint.id);
    expect(completed).toMatchObject({ status: 'completed', output: { approvalId: approval.approvalId, status: 'approved' } });
    expect(completed?.releasedAt).toBeInstanceOf(Date);
    // The kernel's continuation queued the node's resume; the assistant's resume job was not used.
    expect(await resumeJob(executionId, approval.approvalId)).toBeTruthy();
    expect(await queues.job('assistant', `hitl-resume-${approval.approvalId}`)).toBeFalsy();

    const again = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: ada.accessToken });
    expect(again.status).toBe(409);
    expect(deletes(device)).toHaveLength(1);
  }, 30_000);

  test('given a parked node, its deadline times the approval out and the node fails with approval_expired', async () => {
    const { device, executionId, approval, waitpoint, stream } = await parkedNode();
    const resolved = nextDeviceEvent<{ approvalId: string; status: string }>(device, 'approval_resolved');
    await (await queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`))!.promote();

    const messages = await stream;
    expect(messages.find((m) => m.event === 'node_failed')?.data.error.code).toBe('approval_expired');
    expect(await resolved).toMatchObject({ approvalId: approval.approvalId, status: 'timeout' });
    await expect(t.app.repos.hitl.find(approval.approvalId)).resolves.toMatchObject({ status: 'timeout' });
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({
      status: 'completed',
      output: { approvalId: approval.approvalId, status: 'timeout', timedOut: true },
    });
    expect(await resumeJob(executionId, approval.approvalId)).toBeTruthy();
    expect(deletes(device)).toEqual([]);
  }, 30_000);

  test('given an execution cancelled while its node waits, its deadline later continues nothing', async () => {
    const { device, flowId, executionId, approval, waitpoint, stream } = await parkedNode();
    const cancel = await request('POST', `${t.api}/flows/${flowId}/executions/${executionId}/cancel`, { token: ada.accessToken });
    expect(cancel.status).toBe(202);
    expect((await stream).at(-1)?.event).toBe('cancelled');
    await expect(t.app.repos.runs.find('flow', executionId)).resolves.toMatchObject({ status: 'cancelled' });

    await (await queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`))!.promote();
    const completed = await eventually(
      () => t.app.repos.waitpoints.find(waitpoint.id),
      (row) => row?.status === 'completed',
    );
    expect(completed).toMatchObject({ output: { approvalId: approval.approvalId, status: 'rejected' }, releasedAt: null });
    await expect(t.app.repos.hitl.find(approval.approvalId)).resolves.toMatchObject({ status: 'rejected', decisionReason: 'cancelled' });
    expect(await resumeJob(executionId, approval.approvalId)).toBeFalsy();
    expect(deletes(device)).toEqual([]);
  }, 30_000);
});

describe('an agentflow node waiting across a restart', () => {
  test('given an app stopped while a node waits on its approval, the decision on a new app continues the node', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const llm = await startScriptedLLM();
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const start = (): Promise<RunningSwitchboard> => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { REAPER_GRACE_MS: '0', HITL_TIMEOUT_MS: '60000' } });
      return startSwitchboard(config, {
        logger: createLogger({ level: config.log.level }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    };
    let app = await start();
    let device: DeviceSimulator | undefined;
    try {
      const api = `${app.url}/api/v1`;
      const user = await registerUser(api, 'Restart');
      const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
      const connect = (url: string) => DeviceSimulator.connect({ url, accessToken: user.accessToken, deviceId, seed, reconnection: false });
      device = await connect(app.url!);
      const created = await request('POST', `${api}/flows`, {
        token: user.accessToken,
        body: {
          type: 'agentflow',
          name: 'Restart',
          definition: { nodes: [{ id: 'a', prompt: 'Delete it', tools: ['delete_task'] }], output: 'a', deviceId },
        },
      });
      const flowId = created.body.flow.id as string;
      llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
      const asked = nextDeviceEvent<{ approvalId: string; sessionId: string }>(device, 'approval_requested');
      const queued = await request('POST', `${api}/flows/${flowId}/execute`, { token: user.accessToken, body: { input: {} } });
      expect(queued.status).toBe(202);
      const approval = await asked;
      const executionId = queued.body.executionId as string;
      expect(approval.sessionId).toBe(executionId);
      const first = app;
      await eventually(
        () => first.repos.waitpoints.ofRun('flow', executionId),
        (rows) => rows.length === 1 && rows[0].status === 'pending',
      );
      device.close();
      await app.stop();

      app = await start();
      device = await connect(app.url!);
      const restarted = app;
      // The new process's recovery (no grace) resumes the execution and leaves the parked node parked.
      await expect(restarted.repos.runs.find('flow', executionId)).resolves.toMatchObject({ status: 'running' });
      llm.push({ text: 'Deleted the old report.' });
      const approved = await request('PUT', `${app.url}/api/v1/hitl/requests/${approval.approvalId}/approve`, { token: user.accessToken });
      expect(approved.status).toBe(200);
      const ended = await eventually(
        () => request('GET', `${app.url}/api/v1/flows/${flowId}/executions/${executionId}`, { token: user.accessToken }),
        (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
        20_000,
      );
      expect(ended.body.execution.status).toBe('completed');
      await expect(restarted.repos.waitpoints.ofRun('flow', executionId)).resolves.toEqual([
        expect.objectContaining({ status: 'completed', releasedAt: expect.any(Date) }),
      ]);
      expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);
    } finally {
      device?.close();
      await app.stop();
      await llm.close();
      await database.drop();
    }
  }, 60_000);
});
