import { randomUUID } from 'node:crypto';
import { DeviceSimulator, MemoryStore } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { DeviceRegistry } from '../../src/devices/device-registry';
import type { ToolCall } from '../../src/schemas/device-protocol';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady } from '../../src/lib/redis';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { addMember, createCanvas, registerUser, request } from '../support/http';
import { startRedisCluster, startRedisSplit, type LocalRedisServers } from '../support/redis-cluster';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';
import { readSse, type SseMessage } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

const seed = {
  projects: [{ id: 'p-launch', name: 'Product launch', status: 'active' }],
  tasks: [
    { title: 'Write launch brief', status: 'todo', priority: 'high', projectId: 'p-launch' },
    { title: 'Send March invoices', status: 'todo', priority: 'low' },
  ],
};
const launchTurn = {
  toolCalls: [
    { name: 'create_heading', args: { text: 'Launch plan', level: 1 } },
    { name: 'create_todo', args: { text: 'book venue', checked: false } },
    { name: 'create_text', args: { text: 'We launch in May.' } },
  ],
};
const ended = (m: SseMessage) => ['complete', 'error', 'cancelled'].includes(m.event ?? '');

const topologies: Array<[string, () => Promise<{ servers: LocalRedisServers; env: Record<string, string> }>]> = [
  [
    'a three-master Redis Cluster',
    async () => {
      const servers = await startRedisCluster(3);
      return { servers, env: { REDIS_CLUSTER_NODES: servers.nodes } };
    },
  ],
  [
    'three Redis servers, one per concern',
    async () => {
      const servers = await startRedisSplit();
      return { servers, env: servers.env };
    },
  ],
];

/**
 * Two API nodes of one deployment in this process (node A also runs the workers), sharing one
 * PostgreSQL database and one Redis topology: rooms, devices and cancels must cross nodes through
 * Redis alone.
 */
describe.each(topologies)('two API nodes on %s', (_name, start) => {
  let servers: LocalRedisServers;
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let a: RunningSwitchboard;
  let b: RunningSwitchboard;
  const sockets: CanvasClient[] = [];
  const devices: DeviceSimulator[] = [];
  const wsDevices: WsDevice[] = [];

  beforeAll(async () => {
    const topology = await start();
    servers = topology.servers;
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(demoResponder, { delayMs: 5 });
    const keyPrefix = `nodes-${randomUUID().slice(0, 8)}`;
    const node = (roles: string) =>
      startSwitchboard(
        testConfig({
          keyPrefix,
          databaseUrl: database.url,
          redis: topology.env,
          env: { SWITCHBOARD_ROLES: roles, BROADCAST_CHUNK_DELAY_MS: '5', DEVICE_RPC_TIMEOUT_MS: '5000' },
        }),
        {
          logger: createLogger({ level: 'silent' }),
          endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
        },
      );
    a = await node('api,worker,scheduler');
    b = await node('api');
  }, 120_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    devices.forEach((device) => device.close());
    wsDevices.forEach((device) => device.close());
    await b?.stop();
    await a?.stop();
    await llm?.close();
    await database?.drop();
    await servers?.stop();
  });

  test('a generation asked on node B reaches a member on node A and one on node B, each block once, in order', async () => {
    const user = await registerUser(`${b.url}/api/v1`, 'Fan');
    const canvasId = await createCanvas(`${b.url}/api/v1`, user);
    const onA = await connectCanvas(a.url!, user.accessToken);
    const onB = await connectCanvas(b.url!, user.accessToken);
    sockets.push(onA, onB);
    expect((await join(onA, canvasId)).ok).toBe(true);
    expect((await join(onB, canvasId)).ok).toBe(true);
    const received = [record(onA, 'blocks_bulk_added_chunk'), record(onB, 'blocks_bulk_added_chunk')];
    llm.push(launchTurn, { text: 'Done.' });

    const sse = await readSse(`${b.url}/api/v1/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'A launch plan' },
      until: ended,
      timeoutMs: 30_000,
    });

    expect(sse.messages.at(-1)!.event).toBe('complete');
    const ids = sse.messages.at(-1)!.data.blocks.map((block: { id: string }) => block.id);
    expect(ids).toHaveLength(3);
    for (const chunks of received) {
      await waitUntil(() => chunks.flatMap((chunk) => chunk.blocks).length >= 3, 15_000);
      expect(chunks.flatMap((chunk) => chunk.blocks.map((block) => block.id))).toEqual(ids);
    }
  }, 60_000);

  test("presence spans the nodes: a member joining on node B is listed to one on node A, and B's join lists A's", async () => {
    const owner = await registerUser(`${a.url}/api/v1`, 'OwnerA');
    const guest = await registerUser(`${a.url}/api/v1`, 'GuestB');
    const canvasId = await createCanvas(`${a.url}/api/v1`, owner);
    await addMember(`${a.url}/api/v1`, owner, canvasId, guest, 'viewer');
    const onA = await connectCanvas(a.url!, owner.accessToken);
    const onB = await connectCanvas(b.url!, guest.accessToken);
    sockets.push(onA, onB);
    expect((await join(onA, canvasId)).ok).toBe(true);
    const both = [owner.id, guest.id].sort();
    const heardOnA = waitFor(onA, 'presence', (p) => p.canvasId === canvasId && p.users.length === 2, 15_000);

    const joinedB = await join(onB, canvasId);

    // Node B asked the other nodes (node A holds the owner's socket) who is in the room.
    expect(joinedB.ok && joinedB.presence.map((user) => user.userId).sort()).toEqual(both);
    expect((await heardOnA).users.map((user) => user.userId).sort()).toEqual(both);
  }, 60_000);

  test('a chat asked on node A uses the device connected to node B; once it disconnects, node A answers 409 device_offline', async () => {
    const user = await registerUser(`${a.url}/api/v1`, 'Chat');
    const device = await DeviceSimulator.connect({
      url: b.url!,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed,
      reconnection: false,
    });
    devices.push(device);

    const answer = await request('POST', `${a.url}/api/v1/chat`, {
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: device.deviceId },
    });

    expect(answer.status).toBe(200);
    expect(device.calls).toEqual([expect.objectContaining({ action: 'select', table: 'tasks' })]);
    expect(answer.body.response).toContain('Write launch brief');

    device.close();
    // The disconnect reaches node B's registry a moment later: node A asks until it answers offline.
    const offline = await eventually(
      () =>
        request('POST', `${a.url}/api/v1/chat`, {
          token: user.accessToken,
          body: { message: 'How many todo tasks do I have?', deviceId: device.deviceId },
        }),
      (reply) => reply.status === 409,
    );
    expect(offline.body.error.code).toBe('device_offline');
  }, 60_000);

  test('chats asked on node A use a plain-WebSocket device held by node B: each tool call reaches it once and its answer comes back', async () => {
    const user = await registerUser(`${a.url}/api/v1`, 'Relay');
    const deviceId = `desk-${randomUUID().slice(0, 6)}`;
    const store = new MemoryStore(seed);
    const device = await WsDevice.hello(b.url!, user.accessToken, deviceId);
    wsDevices.push(device);
    device.onToolCall = (frame: Frame) => {
      const { type: _type, ...call } = frame;
      return store.execute(call as ToolCall) as Record<string, unknown>;
    };
    // Served once node B listed it (where the app keeps device presence: the realtime concern).
    const realtime = createRedis(a.config.redis.cluster ?? a.config.redis.urls.realtime!, 'command');
    try {
      await redisReady(realtime);
      const registry = new DeviceRegistry(realtime, a.config.redis.keyPrefix);
      await eventually(
        () => registry.isOnline(user.id, deviceId),
        (presence) => !!presence?.socketId.startsWith('ws-'),
      );
    } finally {
      realtime.disconnect();
    }

    // Several calls: each goes out on the relay's channel of the device, whichever node (of a
    // cluster) the publishing connection is on, and must count node B as holding the device.
    for (let turn = 0; turn < 6; turn += 1) {
      const answer = await request('POST', `${a.url}/api/v1/chat`, {
        token: user.accessToken,
        body: { message: 'How many todo tasks do I have?', deviceId },
      });
      expect(answer.status).toBe(200);
      expect(answer.body.response).toContain('Write launch brief');
    }
    expect(device.all('tool_call')).toHaveLength(6);
    expect(device.all('tool_call').every((call) => call.action === 'select' && call.table === 'tasks')).toBe(true);
  }, 60_000);
});
