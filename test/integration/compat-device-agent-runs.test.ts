import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { connectDevice, type DeviceConnectOptions } from '@switchboard/client';
import { MemoryStore } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model/responder';
import { createRedis, redisReady } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

/**
 * Agent runs on a desktop app speaking its own frames (`device_hello`, `agent_run`, `agent_data`,
 * `agent_complete`): runs of one device go one at a time, the rest wait their turn on the queue;
 * a cancelled run is announced to the device (`agent_cancelled`) so it stops reading files.
 */
describe('agent runs on one device, as the Adiuva app runs them', () => {
  let t: TestApp;
  let redis: ReturnType<typeof createRedis>;
  let queue: Queue;
  const open: Array<{ close(): void }> = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { AGENT_RUN_TIMEOUT_MS: '20000', DEVICE_RPC_TIMEOUT_MS: '3000' } });
    redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    queue = new Queue('agent-runs', { connection: redis, prefix: bullPrefix(t.keyPrefix) });
  });

  afterAll(async () => {
    open.forEach((device) => device.close());
    await queue?.close();
    redis?.disconnect();
    await t.stop();
  });

  const createAgent = async (user: TestUser, deviceId: string, name: string) => {
    const res = await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: {
        name,
        device_id: deviceId,
        directory_paths: [`/Users/ana/${name}`],
        data_types: ['tasks'],
        prompt_template: 'Extract tasks. Lines starting with TODO are tasks.',
        file_extensions: ['.md'],
      },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const runNow = async (user: TestUser, agentId: string) => {
    const res = await request('POST', `${t.api}/agents/${agentId}/run`, { token: user.accessToken });
    expect(res.status).toBe(202);
    return res.body.runId as string;
  };
  const runOf = async (user: TestUser, runId: string) => {
    const res = await request('GET', `${t.api}/agents/runs`, { token: user.accessToken });
    return (res.body.runs as Array<Record<string, any>>).find((run) => run.id === runId);
  };
  /** What the app sends for a run: its files, then that it is done. */
  const readFiles = (device: WsDevice, run: Frame, title: string) => {
    device.send({
      type: 'agent_data',
      run_id: run.run_id,
      files: [{ path: `${run.config.paths[0]}/a.md`, name: 'a.md', content: `TODO: ${title}\n`, metadata: {} }],
    });
    device.send({ type: 'agent_complete', run_id: run.run_id, files_read: 1, errors: [] });
  };
  /** The app online, answering the suggestion inserts. */
  const appFor = async (user: TestUser, deviceId: string, agentIds: string[]) => {
    const device = await WsDevice.hello(t.url, user.accessToken, deviceId, agentIds);
    open.push(device);
    device.onToolCall = (call) => ({ id: call.id, row: { id: randomUUID(), ...call.data } });
    device.send({ type: 'ping' });
    await device.next('pong');
    return device;
  };
  /** The queued job of a run, as the queue holds it. */
  const jobOf = async (runId: string) =>
    (await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized'])).find((job) => job.data.runId === runId);

  test('two runs of one device: the second starts only once the first is complete', async () => {
    const user = await registerUser(t.api, 'Serial');
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const [first, second] = [await createAgent(user, deviceId, 'Inbox'), await createAgent(user, deviceId, 'Projects')];
    const device = await appFor(user, deviceId, [first, second]);

    const runs = [await runNow(user, first), await runNow(user, second)];
    const started = await device.next('agent_run');
    const waiting = runs.find((id) => id !== started.run_id)!;
    // The other run went back to its queue twice while the first one read nothing yet.
    await eventually(
      async () => (await jobOf(waiting))?.data.deviceWaits ?? 0,
      (waits) => waits >= 2,
    );
    expect(device.all('agent_run')).toHaveLength(1);

    readFiles(device, started, 'Send the quote');
    const next = await device.next('agent_run', (frame) => frame.run_id === waiting);
    readFiles(device, next, 'Book the venue');
    for (const runId of runs) {
      const run = await eventually(
        () => runOf(user, runId),
        (found) => found?.completedAt != null,
      );
      expect(run).toMatchObject({ status: 'success', itemsCreated: 1 });
    }
    expect(device.all('error')).toEqual([]);
  });

  test('a cancelled run is announced to the device (agent_cancelled); the run waiting behind it starts', async () => {
    const user = await registerUser(t.api, 'Canceller');
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const [first, second] = [await createAgent(user, deviceId, 'Mail'), await createAgent(user, deviceId, 'Notes')];
    const device = await appFor(user, deviceId, [first, second]);

    const runs = [await runNow(user, first), await runNow(user, second)];
    const started = await device.next('agent_run');
    // The app is still reading files when the user cancels.
    device.send({
      type: 'agent_data',
      run_id: started.run_id,
      files: [{ path: '/a.md', name: 'a.md', content: 'TODO: x\n', metadata: {} }],
    });
    const stranger = await registerUser(t.api, 'Stranger');
    expect((await request('POST', `${t.api}/agents/runs/${started.run_id}/cancel`, { token: stranger.accessToken })).status).toBe(404);
    expect((await request('POST', `${t.api}/agents/runs/${started.run_id}/cancel`, { token: user.accessToken })).status).toBe(202);

    expect(await device.next('agent_cancelled')).toEqual({ type: 'agent_cancelled', run_id: started.run_id });
    const cancelled = await eventually(
      () => runOf(user, started.run_id),
      (found) => found?.completedAt != null,
    );
    expect(cancelled).toMatchObject({ status: 'cancelled' });
    // The device is free: the other run starts and goes through.
    const waiting = runs.find((id) => id !== started.run_id)!;
    const next = await device.next('agent_run', (frame) => frame.run_id === waiting);
    readFiles(device, next, 'Call the client');
    const done = await eventually(
      () => runOf(user, waiting),
      (found) => found?.completedAt != null,
    );
    expect(done).toMatchObject({ status: 'success' });
    // Only the cancelled run was announced.
    expect(device.all('agent_cancelled')).toHaveLength(1);
  });

  test.each(['socket.io', 'ws'] as const)("the SDK's device helper (%s) stops reading a cancelled run's files", async (transport) => {
    const user = await registerUser(t.api, transport === 'ws' ? 'SdkWs' : 'SdkSocket');
    const deviceId = `desk-${randomUUID().slice(0, 6)}`;
    const created = await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: { name: 'Slow folder', deviceId, directoryPaths: ['/slow'], dataTypes: ['tasks'], promptTemplate: 'Extract tasks.' },
    });
    expect(created.status).toBe(201);
    let reading!: (runId: string) => void;
    const started = new Promise<string>((resolve) => (reading = resolve));
    let stopped!: (reason: string) => void;
    const aborted = new Promise<string>((resolve) => (stopped = resolve));
    const connect = connectDevice as (options: DeviceConnectOptions) => Promise<{ close(): void }>;
    const device = await connect({
      url: t.url,
      token: user.accessToken,
      deviceId,
      transport,
      store: new MemoryStore(),
      agentIds: [created.body.id],
      reconnection: false,
      // One file, then a folder that never ends: only a stop ends the reading.
      readAgentFiles: async function* (_config, { runId, signal }) {
        yield { path: '/slow/a.md', name: 'a.md', content: 'TODO: one\n' };
        reading(runId);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        stopped((signal.reason as Error).message);
      },
    });
    open.push(device);
    const runId = (await request('POST', `${t.api}/agents/${created.body.id}/run`, { token: user.accessToken })).body.runId as string;
    expect(await started).toBe(runId);
    expect((await request('POST', `${t.api}/agents/runs/${runId}/cancel`, { token: user.accessToken })).status).toBe(202);
    expect(await aborted).toBe('agent run cancelled');
    const run = await eventually(
      async () => ((await request('GET', `${t.api}/agents/runs`, { token: user.accessToken })).body.runs as Array<Record<string, any>>)[0],
      (found) => found?.completedAt != null,
    );
    expect(run).toMatchObject({ id: runId, status: 'cancelled' });
  });
});
