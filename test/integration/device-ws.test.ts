import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { connectDevice, type DeviceWsFrame } from '@switchboard/client';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { DeviceRegistry } from '../../src/devices/device-registry';
import { DeviceSimulator, MemoryStore } from '@switchboard/client/testing';
import type { ToolCall } from '../../src/schemas/device-protocol';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady } from '../../src/lib/redis';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisTarget, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { connectCanvas } from '../support/sockets';
import { eventually } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

/**
 * The desktop app's own protocol over a plain WebSocket, across TWO API nodes
 * on one database and Redis: node A runs the API and the workers, node B only the API. Devices
 * connect to node B, so every tool call, text chunk, approval and agent run from A's workers
 * reaches them through Redis.
 */
const TASK_ID = '4d5e6f70-8192-4a3b-8c4d-5e6f708192a3';
const seedRows = () => ({
  tasks: [
    { id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' },
    { title: 'Write launch brief', status: 'todo', priority: 'high' },
    { title: 'Book venue', status: 'todo', priority: 'medium' },
  ],
});

/** Answers tool calls from an in-memory copy of the app's tables, as the Electron app does with Drizzle. */
function answerFrom(store: MemoryStore) {
  return (frame: Frame) => {
    const { type: _type, ...call } = frame;
    return store.execute(call as ToolCall) as Record<string, unknown>;
  };
}

describe('plain WebSocket devices across two API nodes', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let nodeA: RunningSwitchboard;
  let nodeB: RunningSwitchboard;
  let registry: DeviceRegistry;
  let redis: ReturnType<typeof createRedis>;
  const keyPrefix = `ws-${randomUUID().slice(0, 8)}`;
  const open: Array<{ close(): void }> = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(demoResponder);
    const env = {
      DEVICE_RPC_TIMEOUT_MS: '3000',
      HITL_TIMEOUT_MS: '60000',
      AGENT_RUN_TIMEOUT_MS: '8000',
      DEVICE_WS_PING_INTERVAL_MS: '300',
      DEVICE_WS_PONG_TIMEOUT_MS: '2000',
      MAX_SOCKETS_PER_USER: '4',
    };
    const start = (roles: string) => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { ...env, SWITCHBOARD_ROLES: roles } });
      return startSwitchboard(config, {
        logger: createLogger({ level: config.log.level }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    };
    nodeA = await start('api,worker');
    nodeB = await start('api');
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    registry = new DeviceRegistry(redis, keyPrefix);
  }, 60_000);

  afterAll(async () => {
    open.forEach((device) => device.close());
    await Promise.allSettled([nodeA?.stop(), nodeB?.stop()]);
    redis?.disconnect();
    await llm?.close();
    await database?.drop();
  });

  const api = (node: RunningSwitchboard) => `${node.url}/api/v1`;

  /** A WebSocket device on `node` that said hello and is registered (online for every node). */
  async function wsDevice(
    user: TestUser,
    deviceId: string,
    node = nodeB,
    store = new MemoryStore(seedRows()),
  ): Promise<{ device: WsDevice; store: MemoryStore }> {
    const before = (await registry.isOnline(user.id, deviceId))?.socketId;
    const device = await WsDevice.hello(node.url!, user.accessToken, deviceId);
    open.push(device);
    device.onToolCall = answerFrom(store);
    await eventually(
      () => registry.isOnline(user.id, deviceId),
      (presence) => !!presence?.socketId.startsWith('ws-') && presence.socketId !== before,
    );
    return { device, store };
  }

  test('a bad or missing token is refused at the upgrade with HTTP 401', async () => {
    await expect(WsDevice.connect(nodeB.url!, undefined)).rejects.toThrow('status 401');
    await expect(WsDevice.connect(nodeB.url!, 'not-a-jwt')).rejects.toThrow('status 401');
  });

  test('WebSockets count toward MAX_SOCKETS_PER_USER with Socket.IO sockets, on every node: over the cap the upgrade is 429', async () => {
    const user = await registerUser(api(nodeA), 'Many');
    const first = await wsDevice(user, 'cap-1', nodeB);
    await wsDevice(user, 'cap-2', nodeA);
    const simulator = await DeviceSimulator.connect({
      url: nodeA.url!,
      accessToken: user.accessToken,
      deviceId: 'cap-3',
      reconnection: false,
    });
    open.push(simulator);
    const browser = await connectCanvas(nodeB.url!, user.accessToken);
    open.push(browser);

    await expect(WsDevice.connect(nodeB.url!, user.accessToken)).rejects.toThrow('status 429');
    await expect(connectCanvas(nodeA.url!, user.accessToken)).rejects.toThrow('too_many_sockets');

    first.device.close();
    const again = await eventually(
      () => WsDevice.connect(nodeA.url!, user.accessToken).catch((error: Error) => error),
      (result) => result instanceof WsDevice,
    );
    open.push(again as WsDevice);
  });

  test('malformed upgrades with a valid token (no Sec-WebSocket-Key) get 400 and hold no place under MAX_SOCKETS_PER_USER', async () => {
    const user = await registerUser(api(nodeA), 'Malformed');
    /** An upgrade ws itself refuses (it answers 400 and never hands us a socket). */
    const malformed = () =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${nodeB.url!}/api/v1/ws/device?token=${encodeURIComponent(user.accessToken)}`);
        const req = http.request(url, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } });
        req.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0)));
        req.on('upgrade', () => reject(new Error('upgraded without a key')));
        req.on('error', reject);
        req.end();
      });

    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push(await malformed());

    expect(statuses).toEqual([400, 400, 400, 400, 400, 400]);
    // Six refused upgrades over a cap of 4: a real device still gets in once their sockets closed.
    const device = await eventually(
      () => WsDevice.connect(nodeB.url!, user.accessToken).catch((error: Error) => error),
      (result) => result instanceof WsDevice,
    );
    open.push(device as WsDevice);
  });

  test('until device_hello only pong is accepted; after it the device is online for its user only', async () => {
    const [user, other] = await Promise.all([registerUser(api(nodeA), 'Hello'), registerUser(api(nodeA), 'Other')]);
    const device = await WsDevice.connect(nodeB.url!, user.accessToken);
    open.push(device);
    device.onToolCall = answerFrom(new MemoryStore(seedRows()));
    device.send({ type: 'pong' });
    device.send({ type: 'chat_request', message: 'hi' });
    expect(await device.next('error')).toMatchObject({ code: 'hello_required', message: expect.any(String) });
    expect(await registry.isOnline(user.id, 'desk-1')).toBeNull();

    device.send({ type: 'device_hello', device_id: 'desk-1', agent_ids: ['agent-x'] });
    const presence = await eventually(
      () => registry.isOnline(user.id, 'desk-1'),
      (p) => p !== null,
    );
    expect(presence).toMatchObject({ deviceId: 'desk-1', agentIds: ['agent-x'], socketId: expect.stringMatching(/^ws-/) });
    expect(await registry.isOnline(other.id, 'desk-1')).toBeNull();
    // The other node's API sees the device too: a chat for it is accepted, not 409 device_offline.
    const chat = await request('POST', `${api(nodeA)}/chat`, {
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: 'desk-1' },
    });
    expect(chat.status).toBe(200);

    device.close();
    await eventually(
      () => registry.isOnline(user.id, 'desk-1'),
      (p) => p === null,
    );
  });

  test('chat_request on node B: the worker on node A runs the tool on the WebSocket through Redis; text_chunk frames concatenate to final', async () => {
    const user = await registerUser(api(nodeA), 'Chat');
    const { device } = await wsDevice(user, 'laptop-chat');

    device.send({ type: 'chat_request', message: 'How many todo tasks do I have?' });

    const final = await device.next('final');
    const call = device.all('tool_call')[0];
    expect(call).toEqual(
      expect.objectContaining({ type: 'tool_call', id: expect.any(String), action: 'select', table: 'tasks', filters: { status: 'todo' } }),
    );
    expect(final).toEqual({ type: 'final', response: expect.stringContaining('2'), session_id: expect.any(String) });
    const chunks = device.all('text_chunk');
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((chunk) => chunk.session_id === final.session_id)).toBe(true);
    expect(chunks.map((chunk) => chunk.text).join('')).toBe(final.response);
    expect(device.all('error')).toEqual([]);

    // An HTTP turn on node A for this device reaches the same WebSocket.
    const before = device.all('tool_call').length;
    const res = await request('POST', `${api(nodeA)}/chat`, {
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: 'laptop-chat' },
    });
    expect(res.status).toBe(200);
    expect(device.all('tool_call').length).toBe(before + 1);
  });

  test('a tool call the device never answers times out into an error string; one answered after the timeout is refused as unknown', async () => {
    const user = await registerUser(api(nodeA), 'Slow');
    const { device } = await wsDevice(user, 'laptop-slow');
    device.onToolCall = () => undefined;

    const res = await request('POST', `${api(nodeA)}/chat`, {
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: 'laptop-slow' },
    });

    expect(res.status).toBe(200);
    const [call] = device.all('tool_call');
    const history = await request('GET', `${api(nodeB)}/chat/sessions/${res.body.sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.find((m: { role: string }) => m.role === 'tool').content).toMatch(/did not answer within 3 s/);
    const from = device.frames.length;
    device.send({ type: 'tool_result', id: call.id, rows: [] });
    expect(await device.next('error', () => true, { from })).toMatchObject({ code: 'unknown_call' });
    expect(device.open).toBe(true);
  });

  test("chat_cancel without session_id stops the device's running turn: cancelled frame, the partial answer kept as cancelled; with nothing running it is an error frame", async () => {
    const user = await registerUser(api(nodeA), 'Cancel');
    const { device } = await wsDevice(user, 'laptop-cancel');
    device.onToolCall = () => undefined; // the turn waits on the device

    device.send({ type: 'chat_request', message: 'How many todo tasks do I have?' });
    await device.next('tool_call');
    device.send({ type: 'chat_cancel' });

    const cancelled = await device.next('cancelled');
    expect(cancelled).toEqual({ type: 'cancelled', session_id: expect.any(String) });
    const history = await eventually(
      () => request('GET', `${api(nodeB)}/chat/sessions/${cancelled.session_id}/history`, { token: user.accessToken }),
      (res) => res.body.messages?.some((m: { role: string }) => m.role === 'assistant'),
    );
    expect(history.body.messages.find((m: { role: string }) => m.role === 'assistant')).toMatchObject({ status: 'cancelled' });
    expect(device.all('final')).toEqual([]);

    const from = device.frames.length;
    device.send({ type: 'chat_cancel', session_id: cancelled.session_id });
    expect(await device.next('error', () => true, { from })).toMatchObject({ code: 'not_running' });
  });

  test('approvals: approval_requested arrives as a snake_case frame; tool_approval decides; approval_resolved follows; a second decision is an error frame', async () => {
    const user = await registerUser(api(nodeA), 'Approve');
    const { device, store } = await wsDevice(user, 'laptop-approve');

    device.send({ type: 'chat_request', message: `Delete task ${TASK_ID}` });
    const requested = await device.next('approval_requested');
    expect(requested).toEqual({
      type: 'approval_requested',
      approval_id: expect.any(String),
      session_id: expect.any(String),
      tool_name: 'delete_task',
      parameters: { task_id: TASK_ID },
      reason: expect.any(String),
      expires_at: expect.any(String),
    });
    expect(device.all('tool_call').filter((call) => call.action === 'delete')).toEqual([]);

    device.send({ type: 'tool_approval', approval_id: requested.approval_id, approved: true });
    expect(await device.next('approval_resolved')).toEqual({
      type: 'approval_resolved',
      approval_id: requested.approval_id,
      status: 'approved',
    });
    await device.next('final', (frame) => frame.session_id === requested.session_id);
    expect(device.all('tool_call').filter((call) => call.action === 'delete')).toEqual([
      expect.objectContaining({ table: 'tasks', data: { id: TASK_ID } }),
    ]);
    expect(store.rows('tasks').map((row) => row.id)).not.toContain(TASK_ID);

    const from = device.frames.length;
    device.send({ type: 'tool_approval', approval_id: requested.approval_id, approved: false });
    expect(await device.next('error', () => true, { from })).toMatchObject({ code: 'already_decided' });
    const http = await request('PUT', `${api(nodeB)}/hitl/requests/${requested.approval_id}/reject`, { token: user.accessToken });
    expect(http.status).toBe(409);
  });

  test('agent runs: a run waiting for the device starts on its device_hello; agent_run → agent_data → agent_complete; suggestions are inserted with tool_call', async () => {
    const user = await registerUser(api(nodeA), 'Agent');
    const created = await request('POST', `${api(nodeB)}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Notes',
        deviceId: 'laptop-agent',
        directoryPaths: ['/Users/ana/Notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
        fileExtensions: ['.md'],
      },
    });
    expect(created.status).toBe(201);
    await request('POST', `${api(nodeB)}/agents/${created.body.id}/run`, { token: user.accessToken });
    const runs = () =>
      request('GET', `${api(nodeB)}/agents/runs?agentId=${created.body.id}`, { token: user.accessToken }).then(
        (res) => res.body.runs as Array<Record<string, any>>,
      );
    await eventually(runs, (list) => list[0]?.status === 'waiting_device');

    const store = new MemoryStore();
    const device = await WsDevice.connect(nodeB.url!, user.accessToken);
    open.push(device);
    device.onToolCall = answerFrom(store);
    device.send({ type: 'device_hello', device_id: 'laptop-agent', agent_ids: [created.body.id] });
    const run = await device.next('agent_run');
    expect(run).toMatchObject({
      type: 'agent_run',
      run_id: expect.any(String),
      agent_id: created.body.id,
      config: { paths: ['/Users/ana/Notes'], file_extensions: ['.md'], prompt_template: expect.any(String), data_types: ['tasks'] },
    });
    device.send({
      type: 'agent_data',
      run_id: run.run_id,
      files: [{ path: '/Users/ana/Notes/a.md', name: 'a.md', content: 'TODO: Send the revised quote\n', metadata: {} }],
    });
    device.send({ type: 'agent_complete', run_id: run.run_id, files_read: 1, errors: [] });

    const [done] = await eventually(runs, (list) => list[0]?.completedAt != null);
    expect(done).toMatchObject({ id: run.run_id, status: 'success', itemsCreated: 1, deviceId: 'laptop-agent' });
    expect(store.rows('tasks')).toEqual([expect.objectContaining({ title: 'Send the revised quote', isAiSuggested: 1, isApproved: 0 })]);
    expect(device.all('error')).toEqual([]);
  });

  test('agent runs: a WebSocket that closes mid-run marks the run error "device disconnected"', async () => {
    const user = await registerUser(api(nodeA), 'Drop');
    const { device } = await wsDevice(user, 'laptop-drop');
    const created = await request('POST', `${api(nodeA)}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Notes',
        deviceId: 'laptop-drop',
        directoryPaths: ['/Users/ana/Notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks.',
      },
    });
    await request('POST', `${api(nodeA)}/agents/${created.body.id}/run`, { token: user.accessToken });
    await device.next('agent_run');
    device.close(); // the lid closes while the files are read

    const runs = () =>
      request('GET', `${api(nodeA)}/agents/runs?agentId=${created.body.id}`, { token: user.accessToken }).then(
        (res) => res.body.runs as Array<Record<string, any>>,
      );
    const [run] = await eventually(runs, (list) => list[0]?.completedAt != null);
    expect(run.status).toBe('error');
    expect(run.errors.join('\n')).toMatch(/device disconnected/);
  });

  test('bad frames get error frames and the connection stays; ten in a row close it with 1008', async () => {
    const user = await registerUser(api(nodeA), 'Bad');
    const { device } = await wsDevice(user, 'laptop-bad');
    const bad: Array<[string, object | string | Buffer, string, { binary?: boolean }?]> = [
      ['unknown type', { type: 'rm_rf' }, 'unknown_type'],
      ['no type', { hello: 1 }, 'unknown_type'],
      ['malformed JSON', '{"type": "pong"', 'invalid_json'],
      ['not an object', '[1,2,3]', 'invalid_frame'],
      ['oversized', JSON.stringify({ type: 'chat_request', message: 'x'.repeat(1_100_000) }), 'too_large'],
      ['tool_result for an unknown id', { type: 'tool_result', id: 'never-sent', rows: [] }, 'unknown_call'],
      ['a lone surrogate', '{"type":"chat_request","message":"a\\ud800b"}', 'invalid_text'],
      ['a NUL character', '{"type":"chat_request","message":"a\\u0000b"}', 'invalid_text'],
      ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x74, 0xff, 0xfe, 0x7d]), 'invalid_json'],
      ['a binary frame', Buffer.from('{"type":"pong"}'), 'invalid_frame', { binary: true }],
      ['an unknown field', { type: 'chat_request', message: 'hi', sessionId: 'camel' }, 'validation_failed'],
      ['an invalid field value', { type: 'agent_complete', run_id: 'r', files_read: 'many', errors: [] }, 'validation_failed'],
    ];
    for (const [what, frame, code, options] of bad) {
      const from = device.frames.length;
      device.send(frame, options);
      const error = await device.next('error', () => true, { from });
      expect({ what, code: error.code }).toEqual({ what, code });
      expect(error.message).toEqual(expect.any(String));
      // A good frame in between resets the count: pong is always good.
      device.send({ type: 'pong' });
    }
    expect(device.open).toBe(true);

    // Still served: a chat turn works after all that.
    device.send({ type: 'chat_request', message: 'How many todo tasks do I have?' });
    await device.next('final');

    for (let i = 0; i < 10; i++) device.send({ type: 'nope' });
    expect(await device.closed).toEqual({ code: 1008, reason: expect.any(String) });
    expect(device.all('error').filter((frame) => frame.code === 'unknown_type').length).toBeGreaterThanOrEqual(10);
  });

  test('heartbeat: ping frames keep coming while pong answers; without pong the connection is closed', async () => {
    const user = await registerUser(api(nodeA), 'Beat');
    const { device } = await wsDevice(user, 'laptop-beat');
    await device.next('ping', () => device.all('ping').length >= 3);
    expect(device.open).toBe(true);

    device.autoPong = false;
    const closed = await device.closed;
    expect(closed.code).toBe(4001);
    await eventually(
      () => registry.isOnline(user.id, 'laptop-beat'),
      (p) => p === null,
    );
  });

  test("the SDK's device helper with transport 'ws': tool calls answered from its store, streamed answer, an approval decided from it", async () => {
    const user = await registerUser(api(nodeA), 'Sdk');
    const store = new MemoryStore(seedRows());
    const device = await connectDevice({
      transport: 'ws',
      url: nodeB.url!,
      token: user.accessToken,
      deviceId: 'sdk-ws',
      store,
      reconnection: false,
    });
    open.push(device);
    await eventually(
      () => registry.isOnline(user.id, 'sdk-ws'),
      (p) => p !== null,
    );
    const next = (event: 'final' | 'approval_requested' | 'approval_resolved') =>
      new Promise<DeviceWsFrame>((resolve) => {
        const off = device.on(event, (frame) => (off(), resolve(frame)));
      });

    const final = next('final');
    device.chat({ message: 'How many todo tasks do I have?' });
    expect((await final).response).toEqual(expect.stringContaining('2'));

    const requested = next('approval_requested');
    device.chat({ message: `Delete task ${TASK_ID}` });
    const approval = await requested;
    const resolved = next('approval_resolved');
    const deleted = next('final');
    device.decide(String(approval.approval_id), true);
    expect(await resolved).toEqual({ type: 'approval_resolved', approval_id: approval.approval_id, status: 'approved' });
    await deleted;
    expect(store.rows('tasks').map((row) => row.id)).not.toContain(TASK_ID);
  });

  test('newest connection of a device wins across transports and nodes', async () => {
    const user = await registerUser(api(nodeA), 'Newest');
    const first = await wsDevice(user, 'laptop-new', nodeB);

    // A WebSocket of the same device on the other node replaces it.
    const second = await wsDevice(user, 'laptop-new', nodeA);
    expect((await first.device.closed).code).toBe(4000);

    // A Socket.IO connection of the same device replaces the WebSocket; tool calls then go there.
    const simulator = await DeviceSimulator.connect({
      url: nodeB.url!,
      accessToken: user.accessToken,
      deviceId: 'laptop-new',
      seed: seedRows(),
      reconnection: false,
    });
    open.push(simulator);
    expect((await second.device.closed).code).toBe(4000);
    const res = await request('POST', `${api(nodeA)}/chat`, {
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: 'laptop-new' },
    });
    expect(res.status).toBe(200);
    expect(simulator.calls).toEqual([expect.objectContaining({ action: 'select', table: 'tasks' })]);
    expect(second.device.all('tool_call')).toEqual([]);

    // And a WebSocket replaces the Socket.IO connection.
    const disconnected = new Promise<string>((resolve) => simulator.socket.once('disconnect', (reason) => resolve(reason)));
    const third = await wsDevice(user, 'laptop-new', nodeB);
    expect(await disconnected).toBe('io server disconnect');
    const again = await request('POST', `${api(nodeA)}/chat`, {
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: 'laptop-new' },
    });
    expect(again.status).toBe(200);
    expect(third.device.all('tool_call')).toHaveLength(1);
    expect(simulator.calls).toHaveLength(1);
  });

  // Last: it stops node B.
  test('a node that shuts down closes its device WebSockets with 1001 and the device is offline at once', async () => {
    const user = await registerUser(api(nodeA), 'Shutdown');
    const { device } = await wsDevice(user, 'laptop-bye', nodeB);
    await nodeB.stop();
    expect((await device.closed).code).toBe(1001);
    expect(await registry.isOnline(user.id, 'laptop-bye')).toBeNull();
  });
});
