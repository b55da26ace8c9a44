import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { demoResponder } from '../../src/demo-model/responder';
import { createLogger } from '../../src/lib/logger';
import type { RedisConnections } from '../../src/lib/redis';
import { QueueRegistry } from '../../src/producers/registry';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { testRedisConnections } from '../support/redis';
import { startScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

const agentBody = (deviceId: string) => ({
  name: 'Notes',
  deviceId,
  directoryPaths: ['/Users/ana/Notes'],
  dataTypes: ['tasks'],
  promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
  fileExtensions: ['.txt'],
});

type RunView = Record<string, any>;
const ended = (run: RunView | undefined) => run !== undefined && run.completedAt !== null;

/** A device that serves the agent's folder, recording which runs read it. */
function connectDevice(url: string, user: TestUser, deviceId: string, reads: string[]) {
  return DeviceSimulator.connect({
    url,
    accessToken: user.accessToken,
    deviceId,
    reconnection: false,
    readAgentFiles: async (req) => {
      reads.push(req.runId);
      return { files: [{ path: '/Users/ana/Notes/a.txt', name: 'a.txt', content: 'TODO: Send the quote\n' }] };
    },
  });
}

/** A local agent whose device is offline, and its run, which waits for the device. */
async function offlineRun(api: string, name: string) {
  const user = await registerUser(api, name);
  const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
  const created = await request('POST', `${api}/agents/local`, { token: user.accessToken, body: agentBody(deviceId) });
  expect(created.status).toBe(201);
  const started = await request('POST', `${api}/agents/${created.body.id}/run`, { token: user.accessToken });
  expect(started.status).toBe(202);
  return { user, deviceId, agentId: created.body.id as string, runId: started.body.runId as string };
}

/**
 * A background agent run whose device is offline is a `waiting` run with a `device` waitpoint: no
 * worker holds it, a `device_hello` of its device completes the waitpoint and the run kernel
 * continues it (the agent kind queues the resume on that device); past its deadline it ends
 * `timed_out`. Whole app: real Redis/BullMQ, PostgreSQL, Socket.IO devices, the demo model.
 */
describe('an agent run waiting for its device', () => {
  let t: TestApp;
  let redis: RedisConnections;
  let queues: QueueRegistry;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { AGENT_DEVICE_WAIT_MS: '600000', SWITCHBOARD_ROLES: 'api,worker' } });
    redis = testRedisConnections();
    await redis.ready();
    queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
  }, 120_000);

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queues?.close();
    await redis?.quit();
    await t?.stop();
  });

  const runOf = async (user: TestUser, runId: string): Promise<RunView | undefined> =>
    ((await request('GET', `${t.api}/agents/runs`, { token: user.accessToken })).body.runs as RunView[]).find((run) => run.id === runId);
  const waiting = (runId: string) =>
    eventually(
      () => t.app.repos.runs.find('agent', runId),
      (run) => run?.status === 'waiting',
      20_000,
    );

  test('given an offline device, the run waits on a device waitpoint holding no job, and the device coming online runs it once', async () => {
    const { user, deviceId, runId } = await offlineRun(t.api, 'Offline');
    await waiting(runId);
    expect(await runOf(user, runId)).toMatchObject({ status: 'waiting_device' });
    const [waitpoint] = await t.app.repos.waitpoints.ofRun('agent', runId);
    expect(waitpoint).toMatchObject({ kind: 'device', status: 'pending', ref: deviceId, userId: user.id });
    expect(waitpoint.completeAfter!.getTime()).toBeGreaterThan(Date.now() + 500_000);
    // The job that parked it ends just after the park: no job of the queue stays active.
    await eventually(
      async () => (await queues.counts('agent-runs')).active,
      (active) => active === 0,
      10_000,
    );

    // Another user's device of the same name completes nothing.
    const stranger = await registerUser(t.api, 'Stranger');
    const strangerReads: string[] = [];
    devices.push(await connectDevice(t.url, stranger, deviceId, strangerReads));
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({ status: 'pending' });

    const reads: string[] = [];
    const device = await connectDevice(t.url, user, deviceId, reads);
    devices.push(device);
    const done = await eventually(() => runOf(user, runId), ended, 20_000);
    expect(done).toMatchObject({ status: 'success', deviceId, itemsCreated: 1 });
    await expect(t.app.repos.runs.find('agent', runId)).resolves.toMatchObject({ status: 'succeeded' });
    const completed = await t.app.repos.waitpoints.find(waitpoint.id);
    expect(completed).toMatchObject({ status: 'completed', output: { deviceId } });
    expect(completed!.releasedAt).toBeInstanceOf(Date);

    // A second hello (the device reconnects) runs nothing again.
    device.close();
    devices.push(await connectDevice(t.url, user, deviceId, reads));
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({ status: 'completed' });
    expect(reads).toEqual([runId]);
    expect(strangerReads).toEqual([]);
  }, 60_000);

  test('given no device before its deadline, the run ends `timed_out` and the device coming later runs nothing', async () => {
    const { user, deviceId, runId } = await offlineRun(t.api, 'Deadline');
    await waiting(runId);
    const [waitpoint] = await t.app.repos.waitpoints.ofRun('agent', runId);
    await (await queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`))!.promote();

    const run = await eventually(() => runOf(user, runId), ended, 10_000);
    expect(run).toMatchObject({ status: 'error' });
    await expect(t.app.repos.runs.find('agent', runId)).resolves.toMatchObject({ status: 'timed_out' });
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({ status: 'completed', output: { timedOut: true } });

    const reads: string[] = [];
    devices.push(await connectDevice(t.url, user, deviceId, reads));
    const other = await request('POST', `${t.api}/agents/${run!.agentId}/run`, { token: user.accessToken });
    await eventually(() => runOf(user, other.body.runId), ended, 20_000);
    expect(reads).toEqual([other.body.runId]);
  }, 60_000);

  test('given a waiting run, cancel ends it at once and its device coming online continues nothing', async () => {
    const { user, deviceId, runId } = await offlineRun(t.api, 'Cancel');
    await waiting(runId);
    const cancelled = await request('POST', `${t.api}/agents/runs/${runId}/cancel`, { token: user.accessToken });
    expect(cancelled.status).toBe(202);
    await expect(t.app.repos.runs.find('agent', runId)).resolves.toMatchObject({ status: 'cancelled' });
    expect(await runOf(user, runId)).toMatchObject({ status: 'cancelled' });

    const reads: string[] = [];
    devices.push(await connectDevice(t.url, user, deviceId, reads));
    const [waitpoint] = await t.app.repos.waitpoints.ofRun('agent', runId);
    // Its deadline, when it comes, continues nothing either.
    await (await queues.job('assistant', `waitpoint-deadline-${waitpoint.id}`))!.promote();
    await eventually(
      () => t.app.repos.waitpoints.find(waitpoint.id),
      (row) => row?.status === 'completed',
    );
    await expect(t.app.repos.waitpoints.find(waitpoint.id)).resolves.toMatchObject({ releasedAt: null });
    await expect(t.app.repos.runs.find('agent', runId)).resolves.toMatchObject({ status: 'cancelled' });
    expect(reads).toEqual([]);
  }, 60_000);
});

describe('an agent run waiting for its device across a restart', () => {
  test('given an app stopped while a run waits, the device coming online to a new app runs it', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const llm = await startScriptedLLM(demoResponder);
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
      const { user, deviceId, runId } = await offlineRun(`${app.url}/api/v1`, 'Restart');
      const first = app;
      await eventually(
        () => first.repos.runs.find('agent', runId),
        (run) => run?.status === 'waiting',
        20_000,
      );
      await app.stop();

      app = await start();
      const restarted = app;
      // The new process's recovery (no grace) leaves the waiting run alone.
      await expect(restarted.repos.runs.find('agent', runId)).resolves.toMatchObject({ status: 'waiting' });
      const reads: string[] = [];
      device = await connectDevice(app.url!, user, deviceId, reads);
      await eventually(
        () => restarted.repos.runs.find('agent', runId),
        (run) => run?.status === 'succeeded',
        20_000,
      );
      await expect(restarted.repos.agents.getRun(runId)).resolves.toMatchObject({ status: 'success', deviceId });
      expect(reads).toEqual([runId]);
    } finally {
      device?.close();
      await app.stop();
      await llm.close();
      await database.drop();
    }
  }, 90_000);
});
