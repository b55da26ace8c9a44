import { io as connectClient } from 'socket.io-client';
import { signAccessToken } from '../../src/auth/tokens';
import { DeviceRegistry } from '../../src/devices/device-registry';
import { DeviceRpcError, type DeviceRpcMetrics } from '../../src/devices/device-rpc';
import type { DeviceOnline } from '../../src/devices/device-signals';
import { DeviceSimulator } from '@switchboard/client/testing';
import { createRedis, redisReady } from '../../src/lib/redis';
import { testRedisTarget } from '../support/database';
import { within } from '../support/wait';
import { DEVICE_TEST_TOKENS, startDeviceFixture, startDeviceNode, waitForCluster, type DeviceFixture } from '../support/device-fixture';

const tasksSeed = [
  { title: 'Write launch brief', status: 'todo', priority: 'high', projectId: 'p-launch' },
  { title: 'Book venue', status: 'in_progress', priority: 'medium', projectId: 'p-launch' },
  { title: 'Send invoices', status: 'todo', priority: 'low', projectId: 'p-admin' },
];

/** Waits for an async condition (state held in Redis) with a deadline generous for a loaded machine. */
async function eventually(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The DeviceRpcError a promise rejects with, and how long that took. */
async function failure(promise: Promise<unknown>): Promise<{ error: DeviceRpcError; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof DeviceRpcError)) throw error;
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected the call to fail');
}

describe('/device namespace and device RPC', () => {
  let t: DeviceFixture;
  const samples: Parameters<DeviceRpcMetrics['onRpc']>[0][] = [];

  beforeAll(async () => {
    t = await startDeviceFixture({ rpcTimeoutMs: 2_000, metrics: { onRpc: (sample) => void samples.push(sample) } });
  });

  afterAll(async () => {
    await t.stop();
  });

  describe('presence', () => {
    test('given a device that says hello, it is online on the api node for its user only, and offline once it disconnects', async () => {
      const [user, other] = await Promise.all([t.newUser(), t.newUser()]);
      const heardOnWorker: DeviceOnline[] = [];
      t.worker.channel.signals.on('online', (signal) => void heardOnWorker.push(signal));

      const device = await t.connect(user, 'laptop-1', { agentIds: ['agent-a', 'agent-b'] });

      expect(t.api.hellos).toContainEqual({ userId: user.id, deviceId: 'laptop-1', agentIds: ['agent-a', 'agent-b'] });
      const online = await t.worker.registry.onlineDevices(user.id);
      expect(online).toEqual([
        {
          deviceId: 'laptop-1',
          nodeId: t.api.registry.nodeId,
          socketId: device.socket.id,
          connectedAt: expect.any(String),
          agentIds: ['agent-a', 'agent-b'],
        },
      ]);
      expect(await t.worker.registry.isOnline(user.id, 'laptop-1')).toMatchObject({ deviceId: 'laptop-1' });
      expect(await t.worker.registry.onlineDevices(other.id)).toEqual([]);
      await eventually(async () => heardOnWorker.some((signal) => signal.userId === user.id));

      device.close();

      await eventually(async () => (await t.worker.registry.onlineDevices(user.id)).length === 0);
      expect(await t.worker.registry.isOnline(user.id, 'laptop-1')).toBeNull();
    });

    test('given a node that stopped heartbeating (crashed), its devices count as offline and their entries are pruned', async () => {
      const user = await t.newUser();
      const redis = createRedis(testRedisTarget('realtime'), 'command');
      const heartbeatKey = `${t.keyPrefix}:devices:node:{${t.api.registry.nodeId}}`;
      try {
        await redisReady(redis);
        const crashed = new DeviceRegistry(redis, t.keyPrefix, { nodeId: 'crashed-node' });
        await crashed.register(user.id, {
          deviceId: 'desktop',
          socketId: 'gone-socket',
          connectedAt: new Date().toISOString(),
          agentIds: [],
        });
        const device = await t.connect(user, 'laptop');

        expect((await t.worker.registry.onlineDevices(user.id)).map((entry) => entry.deviceId)).toEqual(['laptop']);
        expect(await redis.hkeys(`${t.keyPrefix}:devices:user:{${user.id}}`)).toEqual(['laptop']);

        // The api node's heartbeat expiring looks the same from outside.
        await redis.del(heartbeatKey);
        expect(await t.worker.registry.isOnline(user.id, 'laptop')).toBeNull();
        device.close();
      } finally {
        await redis.set(heartbeatKey, String(Date.now()), 'PX', 30_000); // as the api node's next beat would
        redis.disconnect();
      }
    });

    test('given a second connection of the same device, the newest one wins and receives the calls', async () => {
      const user = await t.newUser();
      const first = await t.connect(user, 'desk');
      const firstGone = new Promise<string>((resolve) => first.socket.once('disconnect', resolve));
      // The worker ends calls to the device when it hears that a connection of it went away; the
      // signal for the replaced connection travels through Redis and can come after the call starts
      // on a loaded machine, so the call is made once the worker heard it.
      const firstSocketId = first.socket.id;
      const firstGoneOnWorker = new Promise<void>((resolve) => {
        const stop = t.worker.channel.watchGone(user.id, 'desk', (gone) => {
          if (gone.socketId !== firstSocketId) return;
          stop();
          resolve();
        });
      });
      const second = await t.connect(user, 'desk');

      expect(await firstGone).toBe('io server disconnect');
      await within(firstGoneOnWorker, 30_000, 'the worker heard that the replaced connection went away');
      const reply = await t.worker.rpc.callDevice(user.id, 'desk', { action: 'select', table: 'tasks' });
      expect(reply.rows).toEqual([]);
      expect(second.calls).toHaveLength(1);
      expect(first.calls).toHaveLength(0);
      expect((await t.worker.registry.onlineDevices(user.id)).map((entry) => entry.socketId)).toEqual([second.socket.id]);
    });

    test('given another node that shuts down, devices connected to the api node stay connected', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop');
      const extraWorker = await startDeviceNode({ keyPrefix: t.keyPrefix, http: false });
      await waitForCluster([t.api.io, t.worker.io, extraWorker.io]);
      const disconnects: string[] = [];
      device.socket.on('disconnect', (reason) => void disconnects.push(reason));

      await extraWorker.stop();

      const reply = await t.worker.rpc.callDevice(user.id, 'laptop', { action: 'select', table: 'tasks' });
      expect(reply.rows).toEqual([]);
      expect(disconnects).toEqual([]);
    });
  });

  describe('handshake', () => {
    const connectError = (auth: Record<string, unknown>) =>
      new Promise<string>((resolve, reject) => {
        const socket = connectClient(`${t.url}/device`, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
        socket.once('connect', () => (socket.close(), reject(new Error('connected'))));
        socket.once('connect_error', (error) => (socket.close(), resolve(error.message)));
      });

    test('given a missing, forged or foreign token, or a missing or malformed deviceId, the connection is refused', async () => {
      const user = await t.newUser();
      const forged = await signAccessToken(
        { ...DEVICE_TEST_TOKENS, secret: new TextEncoder().encode('another-secret-another-secret-another') },
        {
          sub: user.id,
          email: 'x@example.test',
          name: 'X',
          tier: 'free',
          role: 'user',
        },
      );

      expect(await connectError({ deviceId: 'laptop' })).toBe('unauthorized');
      expect(await connectError({ token: 'not-a-jwt', deviceId: 'laptop' })).toBe('unauthorized');
      expect(await connectError({ token: forged, deviceId: 'laptop' })).toBe('unauthorized');
      expect(await connectError({ token: user.token })).toBe('invalid_device');
      expect(await connectError({ token: user.token, deviceId: 'has space' })).toBe('invalid_device');
      expect(await connectError({ token: user.token, deviceId: 'x'.repeat(129) })).toBe('invalid_device');
      await expect(DeviceSimulator.connect({ url: t.url, accessToken: 'nope', deviceId: 'laptop', reconnection: false })).rejects.toThrow(
        'unauthorized',
      );
    });

    test('given a hello for another device id or a malformed hello, it is refused through the ack', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop-hello');

      expect(await device.socket.timeout(5_000).emitWithAck('device_hello', { deviceId: 'someone-else', agentIds: [] })).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'invalid_device' }),
      });
      expect(await device.socket.timeout(5_000).emitWithAck('device_hello', { deviceId: 'laptop-hello', agentIds: [42] } as never)).toEqual(
        {
          ok: false,
          error: expect.objectContaining({ code: 'validation_failed' }),
        },
      );
      expect(await device.hello()).toEqual({ ok: true });
    });
  });

  describe('round trips through the simulator', () => {
    test('select, get, insert, update and delete run on the device and return its rows', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop', { seed: { tasks: tasksSeed } });
      const rpc = t.api.rpc;

      const todo = await rpc.callDevice(user.id, 'laptop', {
        action: 'select',
        table: 'tasks',
        filters: { status: 'todo', projectId: null },
      });
      expect(todo.rows.map((row) => row.title)).toEqual(['Write launch brief', 'Send invoices']);
      const limited = await rpc.callDevice(user.id, 'laptop', {
        action: 'select',
        table: 'tasks',
        filters: { orderBy: '-title' },
        limit: 2,
      });
      expect(limited.rows.map((row) => row.title)).toEqual(['Write launch brief', 'Send invoices']);

      const inserted = await rpc.callDevice(user.id, 'laptop', {
        action: 'insert',
        table: 'tasks',
        data: { title: 'Ship beta', priority: 'high', isAiSuggested: 1, isApproved: 0 },
      });
      expect(inserted.row).toEqual(
        expect.objectContaining({
          id: expect.any(String),
          title: 'Ship beta',
          status: 'todo',
          isAiSuggested: 1,
          createdAt: expect.any(Number),
          updatedAt: expect.any(Number),
        }),
      );
      const id = inserted.row.id;
      expect((await rpc.callDevice(user.id, 'laptop', { action: 'get', table: 'tasks', data: { id } })).row).toEqual(inserted.row);

      const updated = await rpc.callDevice(user.id, 'laptop', {
        action: 'update',
        table: 'tasks',
        data: { id, updates: { status: 'done' } },
      });
      expect(updated.row).toMatchObject({ id, title: 'Ship beta', status: 'done' });
      expect(device.store.rows('tasks').find((row) => row.id === id)).toMatchObject({ status: 'done' });

      expect(await rpc.callDevice(user.id, 'laptop', { action: 'delete', table: 'tasks', data: { id } })).toEqual({
        id: expect.any(String),
        deleted: true,
      });
      expect((await rpc.callDevice(user.id, 'laptop', { action: 'get', table: 'tasks', data: { id } })).row).toBeNull();

      expect(device.calls.map((call) => call.action)).toEqual(['select', 'select', 'insert', 'get', 'update', 'delete', 'get']);
      expect(device.calls[2]).toEqual({
        id: expect.any(String),
        action: 'insert',
        table: 'tasks',
        data: { title: 'Ship beta', priority: 'high', isAiSuggested: 1, isApproved: 0 },
      });
      // null filters mean "no filter" and are dropped before sending
      expect(device.calls[0]).toEqual({ id: expect.any(String), action: 'select', table: 'tasks', filters: { status: 'todo' } });
    });

    test('vector_upsert stores embeddings and vector_search returns the nearest first with cosine scores', async () => {
      const user = await t.newUser();
      await t.connect(user, 'laptop');
      const rpc = t.api.rpc;

      for (const [id, vector, content] of [
        ['n-deploy', [1, 0, 0], 'How we deploy'],
        ['n-budget', [0, 1, 0], 'Budget for Q3'],
        ['n-mixed', [0.7, 0.7, 0], 'Deploy budget'],
      ] as const) {
        expect(
          await rpc.callDevice(user.id, 'laptop', { action: 'vector_upsert', data: { id, content, projectId: 'p1' }, vector: [...vector] }),
        ).toMatchObject({ ok: true });
      }

      const found = await rpc.callDevice(user.id, 'laptop', { action: 'vector_search', vector: [0.9, 0.1, 0], limit: 2 });
      expect(found.results.map((hit) => hit.id)).toEqual(['n-deploy', 'n-mixed']);
      expect(found.results[0]).toMatchObject({ content: 'How we deploy', projectId: 'p1' });
      expect(found.results[0].score).toBeCloseTo(0.9 / Math.sqrt(0.82), 6);
    });

    test('a call issued from the worker node reaches the device connected to the api node (cross-node)', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop', { seed: { tasks: tasksSeed } });

      const reply = await t.worker.rpc.callDevice(user.id, 'laptop', { action: 'select', table: 'tasks', filters: { priority: 'high' } });

      expect(reply.rows.map((row) => row.title)).toEqual(['Write launch brief']);
      expect(device.calls).toEqual([expect.objectContaining({ id: reply.id, action: 'select' })]);
    });

    test('twenty concurrent calls from both nodes each get their own answer', async () => {
      const user = await t.newUser();
      await t.connect(user, 'laptop');

      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? t.worker.rpc : t.api.rpc).callDevice(user.id, 'laptop', {
            action: 'insert',
            table: 'notes',
            data: { title: `Note ${i}`, content: `body ${i}` },
          }),
        ),
      );

      expect(replies.map((reply) => reply.row.title)).toEqual(Array.from({ length: 20 }, (_, i) => `Note ${i}`));
      expect(new Set(replies.map((reply) => reply.row.id)).size).toBe(20);
    });
  });

  describe('failures', () => {
    test('given no device online, the call fails at once as offline', async () => {
      const user = await t.newUser();

      const { error, ms } = await failure(
        t.worker.rpc.callDevice(user.id, 'laptop', { action: 'select', table: 'tasks' }, { timeoutMs: 3_000 }),
      );

      expect(error).toMatchObject({ code: 'offline', message: 'Device laptop is not connected' });
      expect(ms).toBeLessThan(1_000);
    });

    test('given a device that does not answer, the call times out with a message the model can read', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop');
      device.responder = () => undefined;

      const { error, ms } = await failure(
        t.worker.rpc.callDevice(user.id, 'laptop', { action: 'select', table: 'tasks' }, { timeoutMs: 300 }),
      );

      expect(error).toMatchObject({ code: 'timeout', message: 'Device laptop did not answer within 0.3 s' });
      expect(ms).toBeGreaterThanOrEqual(290);
      expect(ms).toBeLessThan(2_000);
      expect(device.calls).toHaveLength(1);
    });

    test.each([
      ['the worker node', 'worker'],
      ['the api node', 'api'],
    ] as const)('given a device that disconnects mid-call, a call from %s fails at once, well before the timeout', async (_, node) => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop');
      device.responder = () => undefined;

      const call = failure(t[node].rpc.callDevice(user.id, 'laptop', { action: 'select', table: 'tasks' }, { timeoutMs: 3_000 }));
      await device.waitForCall();
      device.close();
      const { error, ms } = await call;

      expect(error).toMatchObject({ code: 'disconnected', message: 'Device laptop disconnected before answering' });
      expect(ms).toBeLessThan(1_000);
    });

    test('given malformed acks (wrong id, wrong shape, missing row) or a device error, the call fails with a clear error', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop');
      const select = () => failure(t.worker.rpc.callDevice(user.id, 'laptop', { action: 'select', table: 'tasks' }));

      device.responder = () => ({ id: 'someone-elses-call', rows: [] });
      expect((await select()).error).toMatchObject({ code: 'invalid_reply', message: expect.stringContaining('expected id') });

      device.responder = (call) => ({ id: call.id, rows: 'not a list' });
      expect((await select()).error).toMatchObject({
        code: 'invalid_reply',
        message: expect.stringMatching(/^Device laptop sent an invalid reply to select on tasks: rows/),
      });

      device.responder = () => 'just a string';
      expect((await select()).error.code).toBe('invalid_reply');

      device.responder = (call) => ({ id: call.id, ok: true });
      const insert = await failure(t.worker.rpc.callDevice(user.id, 'laptop', { action: 'insert', table: 'tasks', data: { title: 'x' } }));
      expect(insert.error).toMatchObject({ code: 'invalid_reply', message: expect.stringContaining('row') });

      device.responder = (call) => ({ id: call.id, error: 'SQLITE_FULL: database or disk is full' });
      expect((await select()).error).toMatchObject({
        code: 'device_error',
        message: 'Device laptop could not run select on tasks: SQLITE_FULL: database or disk is full',
      });
    });

    test('given invalid tool calls, they are rejected before anything is sent', async () => {
      const user = await t.newUser();
      const device = await t.connect(user, 'laptop');
      const call = (input: unknown, deviceId = 'laptop') => failure(t.api.rpc.callDevice(user.id, deviceId, input as never));

      expect((await call({ action: 'drop', table: 'tasks' })).error).toMatchObject({
        code: 'invalid_call',
        message: expect.stringContaining('action must be one of'),
      });
      expect((await call({ action: 'select', table: 'users' })).error.message).toContain('table must be one of');
      expect((await call({ action: 'insert', table: 'tasks', data: { id: 'mine', title: 'x' } })).error.message).toContain(
        'data.id: id is set by the device',
      );
      expect((await call({ action: 'insert', table: 'notes', data: { title: 'x', createdAt: 1 } })).error.message).toContain(
        'createdAt is set by the device',
      );
      expect((await call({ action: 'insert', table: 'tasks', data: { title: 'x', status: 'someday' } })).error.message).toContain(
        'data.status',
      );
      expect((await call({ action: 'insert', table: 'tasks', data: { title: 'x', due_date: 1 } })).error.message).toContain('due_date');
      expect((await call({ action: 'update', table: 'tasks', data: { id: 't1', updates: {} } })).error.message).toContain(
        'at least one field',
      );
      expect((await call({ action: 'vector_search', vector: [] })).error.code).toBe('invalid_call');
      expect((await call({ action: 'select', table: 'tasks' }, 'bad device id')).error.code).toBe('invalid_call');

      expect(device.calls).toHaveLength(0);
      expect(device.invalidCalls).toHaveLength(0);
    });
  });

  describe('isolation between users', () => {
    test('given two users with a device of the same name, each call reaches only its own user’s device', async () => {
      const [alice, bob, carol] = await Promise.all([t.newUser('Alice'), t.newUser('Bob'), t.newUser('Carol')]);
      const aliceDevice = await t.connect(alice, 'shared-laptop', { seed: { notes: [{ title: 'Alice private note', content: 'a' }] } });
      const bobDevice = await t.connect(bob, 'shared-laptop', { seed: { notes: [{ title: 'Bob private note', content: 'b' }] } });

      const [forAlice, forBob] = await Promise.all([
        t.worker.rpc.callDevice(alice.id, 'shared-laptop', { action: 'select', table: 'notes' }),
        t.api.rpc.callDevice(bob.id, 'shared-laptop', { action: 'select', table: 'notes' }),
      ]);

      expect(forAlice.rows.map((row) => row.title)).toEqual(['Alice private note']);
      expect(forBob.rows.map((row) => row.title)).toEqual(['Bob private note']);
      expect(aliceDevice.calls.map((call) => call.id)).toEqual([forAlice.id]);
      expect(bobDevice.calls.map((call) => call.id)).toEqual([forBob.id]);
      expect((await failure(t.worker.rpc.callDevice(carol.id, 'shared-laptop', { action: 'select', table: 'notes' }))).error.code).toBe(
        'offline',
      );
      expect(await t.worker.registry.onlineDevices(carol.id)).toEqual([]);
      // Both stay connected: one user's connection does not replace the other's.
      expect(aliceDevice.socket.connected && bobDevice.socket.connected).toBe(true);
    });
  });

  test('every call is reported to the metrics callback with its action, outcome and duration', () => {
    const outcomes = new Set(samples.map((sample) => sample.outcome));
    expect([...outcomes].sort()).toEqual(['device_error', 'disconnected', 'invalid_reply', 'offline', 'ok', 'timeout']);
    expect(samples.every((sample) => sample.seconds >= 0 && sample.seconds < 15)).toBe(true);
    expect(samples.find((sample) => sample.outcome === 'timeout')).toMatchObject({ action: 'select' });
  });
});
