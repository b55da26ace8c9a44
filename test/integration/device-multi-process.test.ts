import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { signAccessToken } from '../../src/auth/tokens';
import { DeviceRpcError } from '../../src/devices/device-rpc';
import { DeviceSimulator } from '@switchboard/client/testing';
import { testRedisTarget } from '../support/database';
import { DEVICE_TEST_TOKENS, deleteKeys, startDeviceNode, waitForCluster, type DeviceNode } from '../support/device-fixture';
import { WsDevice } from '../support/ws-device';

const ROOT = path.resolve(__dirname, '../..');

interface ApiProcess {
  child: ChildProcess;
  url: string;
  nodeId: string;
  exited: Promise<number | null>;
}

/** Starts test/support/device-node-process.ts and resolves with the URL it prints. */
function spawnApiNode(env: Record<string, string>): Promise<ApiProcess> {
  // node --import tsx, not the tsx CLI: the CLI runs the script in a grandchild that SIGKILL would miss.
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/device-node-process.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`device node did not start:\n${output}`))), 30_000);
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    child.stdout.on('data', (data: Buffer) => {
      output += data.toString();
      const line = output.split('\n').find((candidate) => candidate.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      resolve({ child, exited, ...(JSON.parse(line) as { url: string; nodeId: string }) });
    });
    void exited.then((code) => (clearTimeout(timer), reject(new Error(`device node exited with ${code}:\n${output}`))));
  });
}

/**
 * The device's socket is held by an api node running as its own OS process; the calls come from
 * this process's worker-style node (Socket.IO without HTTP) over the shared Redis.
 */
describe('device RPC across processes', () => {
  const keyPrefix = `devmp-${randomUUID().slice(0, 8)}`;
  const children: ChildProcess[] = [];
  const simulators: DeviceSimulator[] = [];
  let worker: DeviceNode;
  const nodes: DeviceNode[] = [];

  beforeAll(async () => {
    worker = await startDeviceNode({ keyPrefix, http: false, rpcTimeoutMs: 5_000 });
  });

  afterAll(async () => {
    simulators.forEach((simulator) => simulator.close());
    children.forEach((child) => child.exitCode === null && child.kill('SIGKILL'));
    await Promise.all([worker, ...nodes].map((node) => node.stop()));
    await deleteKeys(keyPrefix);
  });

  const start = async (heartbeatTtlMs: number) => {
    const api = await spawnApiNode({
      DEVICE_NODE_REDIS: JSON.stringify(testRedisTarget('realtime')),
      DEVICE_NODE_KEY_PREFIX: keyPrefix,
      DEVICE_NODE_HEARTBEAT_TTL_MS: String(heartbeatTtlMs),
    });
    children.push(api.child);
    return api;
  };

  const device = async (url: string, deviceId: string) => {
    const userId = randomUUID();
    const token = await signAccessToken(DEVICE_TEST_TOKENS, {
      sub: userId,
      email: `${userId}@example.test`,
      name: 'Remote',
      tier: 'free',
      role: 'user',
    });
    const simulator = await DeviceSimulator.connect({
      url,
      accessToken: token,
      deviceId,
      reconnection: false,
      seed: { tasks: [{ title: 'Write launch brief', priority: 'high' }] },
    });
    simulators.push(simulator);
    return { userId, simulator };
  };

  test('a call from this process reaches a device on the api process; stopping that process gracefully ends a pending call at once', async () => {
    const api = await start(30_000);
    const { userId, simulator } = await device(api.url, 'laptop');
    await waitForCluster([worker.io], 2);

    const reply = await worker.rpc.callDevice(userId, 'laptop', { action: 'select', table: 'tasks' });

    expect(reply.rows.map((row) => row.title)).toEqual(['Write launch brief']);
    expect(await worker.registry.onlineDevices(userId)).toEqual([expect.objectContaining({ deviceId: 'laptop', nodeId: api.nodeId })]);

    simulator.responder = () => undefined;
    const started = Date.now();
    // A long timeout: ending "at once" is told apart from timing out even on a loaded machine.
    const pending = worker.rpc
      .callDevice(userId, 'laptop', { action: 'select', table: 'tasks' }, { timeoutMs: 30_000 })
      .catch((error: unknown) => error);
    await simulator.waitForCall((call) => call.id !== reply.id);
    api.child.kill('SIGTERM');

    const error = (await pending) as DeviceRpcError;
    expect(error).toBeInstanceOf(DeviceRpcError);
    expect(error.code).toBe('disconnected');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await api.exited).toBe(0);
    expect(await worker.registry.onlineDevices(userId)).toEqual([]);
  }, 120_000);

  test('when an api process crashes, its devices count as offline once its heartbeat expires, its pending calls time out, and calls to devices on other nodes still work at once', async () => {
    const survivor = await startDeviceNode({ keyPrefix, http: true });
    nodes.push(survivor);
    // Short enough to expire within the test, long enough that a live but starved process's renewal
    // (a third of it apart) is not late on a loaded machine.
    const api = await start(2_000);
    const { userId, simulator } = await device(api.url, 'desktop');
    const other = await device(survivor.url!, 'tablet');
    await waitForCluster([worker.io, survivor.io], 3);
    expect(await worker.registry.isOnline(userId, 'desktop')).toMatchObject({ nodeId: api.nodeId });

    simulator.responder = () => undefined;
    const pending = worker.rpc
      .callDevice(userId, 'desktop', { action: 'select', table: 'tasks' }, { timeoutMs: 1_000 })
      .catch((error: unknown) => error);
    await simulator.waitForCall();
    api.child.kill('SIGKILL');
    await api.exited;

    expect(((await pending) as DeviceRpcError).code).toBe('timeout');
    // The streams adapter counts nodes by their Redis subscriptions, which die with the process, so
    // calls to devices elsewhere do not wait for an answer from the dead node.
    const started = Date.now();
    // Waiting for the dead node would end this call as a timeout (30 s); it answers well before.
    const reply = await worker.rpc.callDevice(other.userId, 'tablet', { action: 'select', table: 'tasks' }, { timeoutMs: 30_000 });
    expect(reply.rows).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    const deadline = Date.now() + 30_000;
    while ((await worker.registry.isOnline(userId, 'desktop')) !== null) {
      if (Date.now() > deadline) throw new Error('the crashed node still lists the device');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }, 120_000);

  test('a call from this process reaches a plain-WebSocket device held by the api process (through Redis); its graceful stop ends a pending call at once', async () => {
    const api = await start(30_000);
    const userId = randomUUID();
    const token = await signAccessToken(DEVICE_TEST_TOKENS, {
      sub: userId,
      email: `${userId}@example.test`,
      name: 'Raw',
      tier: 'free',
      role: 'user',
    });
    const ws = await WsDevice.hello(api.url, token, 'raw-laptop');
    const rows = [{ id: 't-1', title: 'Write launch brief', createdAt: 1, updatedAt: 1 }];
    ws.onToolCall = (call) => ({ id: call.id, rows });
    const deadline = Date.now() + 30_000;
    while ((await worker.registry.isOnline(userId, 'raw-laptop')) === null) {
      if (Date.now() > deadline) throw new Error('the WebSocket device never came online');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }

    const reply = await worker.rpc.callDevice(userId, 'raw-laptop', { action: 'select', table: 'tasks' });
    expect(reply.rows).toEqual(rows);
    expect(ws.all('tool_call')).toEqual([expect.objectContaining({ type: 'tool_call', id: reply.id, action: 'select', table: 'tasks' })]);
    expect(await worker.registry.isOnline(userId, 'raw-laptop')).toMatchObject({
      nodeId: api.nodeId,
      socketId: expect.stringMatching(/^ws-/),
    });

    ws.onToolCall = () => undefined;
    const pending = worker.rpc
      .callDevice(userId, 'raw-laptop', { action: 'select', table: 'tasks' }, { timeoutMs: 5_000 })
      .catch((error: unknown) => error);
    await ws.next('tool_call', (call) => call.id !== reply.id);
    api.child.kill('SIGTERM');

    const error = (await pending) as DeviceRpcError;
    expect(error).toBeInstanceOf(DeviceRpcError);
    expect(error.code).toBe('disconnected');
    expect((await ws.closed).code).toBe(1001);
    expect(await api.exited).toBe(0);
    expect(await worker.registry.isOnline(userId, 'raw-laptop')).toBeNull();
  }, 120_000);
});
