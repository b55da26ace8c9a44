import { io, type Socket } from 'socket.io-client';
import { MemoryStore } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model/responder';
import type { AgentFile, AgentFrameAck, ToolCall } from '../../src/schemas/device-protocol';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually, within } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

/**
 * A device may send a run's `agent_data` frames and its `agent_complete` back to back without
 * waiting for an ack in between (nothing in the protocol asks it to wait). The server stores them
 * in the order they came, so the run reads every file before it sees the end: several runs at
 * once, several data frames each, on Socket.IO and on the plain WebSocket.
 */

const FILES_PER_RUN = 6;
const RUNS = 3;

const filesOf = (label: string): AgentFile[] =>
  Array.from({ length: FILES_PER_RUN }, (_, i) => ({
    path: `/Users/ana/Notes/${label}-${i}.txt`,
    name: `${label}-${i}.txt`,
    content: `Notes ${label} ${i}\nTODO: Follow up ${label} item ${i}\n`,
    metadata: {},
  }));

describe('agent frames are stored in the order the device sent them', () => {
  let t: TestApp;
  const sockets: Socket[] = [];
  const wsDevices: WsDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { SWITCHBOARD_ROLES: 'api,worker', AGENT_RUN_TIMEOUT_MS: '15000' } });
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
    for (const device of wsDevices.splice(0)) device.close();
  });
  afterAll(async () => {
    await t.stop();
  });

  const createAgent = async (user: TestUser, deviceId: string): Promise<string> => {
    const res = await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Notes',
        deviceId,
        directoryPaths: ['/Users/ana/Notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
        fileExtensions: ['.txt'],
      },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const finishedRun = async (user: TestUser, agentId: string) => {
    const runs = () =>
      request('GET', `${t.api}/agents/runs?agentId=${agentId}`, { token: user.accessToken }).then(
        (res) => res.body.runs as Array<Record<string, any>>,
      );
    const [run] = await eventually(runs, (list) => list.length > 0 && list.every((r) => r.completedAt !== null), 30_000);
    return run;
  };

  /**
   * A Socket.IO device that fires one `agent_data` per file and then `agent_complete`, all in the
   * same tick, never waiting for an ack; it answers tool calls from its own in-memory tables.
   */
  const eagerSocketDevice = async (user: TestUser, deviceId: string, label: string) => {
    const store = new MemoryStore();
    const acks: AgentFrameAck[] = [];
    const socket = io(`${t.url}/device`, {
      auth: { token: user.accessToken, deviceId },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    sockets.push(socket);
    socket.on('tool_call', (call: ToolCall, ack: (reply: unknown) => void) => ack(store.execute(call)));
    const runStarted = new Promise<string>((resolve) =>
      socket.on('agent_run', (run: { runId: string }) => {
        for (const file of filesOf(label))
          socket.emit('agent_data', { runId: run.runId, files: [file] }, (ack: AgentFrameAck) => acks.push(ack));
        socket.emit('agent_complete', { runId: run.runId, filesRead: FILES_PER_RUN, errors: [] }, (ack: AgentFrameAck) => acks.push(ack));
        resolve(run.runId);
      }),
    );
    await within(
      new Promise((resolve, reject) => (socket.once('connect', () => resolve(undefined)), socket.once('connect_error', reject))),
      10_000,
      'device connect',
    );
    const hello = (await socket.timeout(10_000).emitWithAck('device_hello', { deviceId, agentIds: [] })) as { ok: boolean };
    expect(hello.ok).toBe(true);
    return { store, acks, runStarted };
  };

  test('Socket.IO: data frames and complete fired back to back reach the run whole, in several runs at once', async () => {
    const setups = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const user = await registerUser(t.api, `Eager${i}`);
        const deviceId = `eager-${i}`;
        const agentId = await createAgent(user, deviceId);
        const device = await eagerSocketDevice(user, deviceId, `s${i}`);
        return { user, agentId, device, label: `s${i}` };
      }),
    );

    await Promise.all(setups.map(({ user, agentId }) => request('POST', `${t.api}/agents/${agentId}/run`, { token: user.accessToken })));
    await within(Promise.all(setups.map(({ device }) => device.runStarted)), 15_000, 'agent_run on every device');

    for (const { user, agentId, device, label } of setups) {
      const run = await finishedRun(user, agentId);
      expect(run).toMatchObject({ status: 'success', itemsProcessed: FILES_PER_RUN, itemsCreated: FILES_PER_RUN, errors: [] });
      expect(device.acks).toHaveLength(FILES_PER_RUN + 1);
      expect(device.acks.every((ack) => ack.ok)).toBe(true);
      expect(
        device.store
          .rows('tasks')
          .map((task) => task.title)
          .sort(),
      ).toEqual(Array.from({ length: FILES_PER_RUN }, (_, i) => `Follow up ${label} item ${i}`).sort());
    }
  });

  test('plain WebSocket: data frames and complete sent back to back reach the run whole, in several runs at once', async () => {
    const setups = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const user = await registerUser(t.api, `EagerWs${i}`);
        const deviceId = `eager-ws-${i}`;
        const agentId = await createAgent(user, deviceId);
        const store = new MemoryStore();
        const device = await WsDevice.hello(t.url, user.accessToken, deviceId);
        wsDevices.push(device);
        device.onToolCall = (frame: Frame) => {
          const { type: _type, ...call } = frame;
          return store.execute(call as ToolCall) as Record<string, unknown>;
        };
        return { user, agentId, device, store, label: `w${i}` };
      }),
    );

    await Promise.all(setups.map(({ user, agentId }) => request('POST', `${t.api}/agents/${agentId}/run`, { token: user.accessToken })));
    await Promise.all(
      setups.map(async ({ device, label }) => {
        const run = await device.next('agent_run');
        for (const file of filesOf(label)) device.send({ type: 'agent_data', run_id: run.run_id, files: [file] });
        device.send({ type: 'agent_complete', run_id: run.run_id, files_read: FILES_PER_RUN, errors: [] });
      }),
    );

    for (const { user, agentId, device, store, label } of setups) {
      const run = await finishedRun(user, agentId);
      expect(run).toMatchObject({ status: 'success', itemsProcessed: FILES_PER_RUN, itemsCreated: FILES_PER_RUN, errors: [] });
      expect(device.all('error')).toEqual([]);
      expect(
        store
          .rows('tasks')
          .map((task) => task.title)
          .sort(),
      ).toEqual(Array.from({ length: FILES_PER_RUN }, (_, i) => `Follow up ${label} item ${i}`).sort());
    }
  });
});
