import { randomUUID } from 'node:crypto';
import { connectDevice, type DeviceWsConnection } from '@switchboard/client';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';
import { eventually } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

/** The frames of a chat turn on the plain WebSocket. */
const TURN_FRAMES = ['text_chunk', 'final', 'error', 'cancelled'];
const turnFrames = (device: WsDevice): Frame[] => device.frames.filter((frame) => TURN_FRAMES.includes(frame.type));

/**
 * A device's socket receives the frames of the chat turns it started itself; those of a turn
 * started over HTTP for the device only when it asked for every turn's in `device_hello`. The
 * Adiuva app sends `chat_request` and takes the next `final` as its answer: a stray one from
 * another turn would be read as its own.
 */
describe("a device's socket gets its own turns' frames, others' only when it asks", () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];
  const sockets: WsDevice[] = [];
  const sdkDevices: DeviceWsConnection[] = [];

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    sdkDevices.forEach((device) => device.close());
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const online = (user: TestUser, deviceId: string) =>
    eventually(
      () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
      (res) => res.body.devices?.some((device: { deviceId: string }) => device.deviceId === deviceId),
    );

  /** A turn started over HTTP for the device; the answer is back when it returns. */
  async function httpTurn(user: TestUser, deviceId: string, text: string): Promise<{ sessionId: string; response: string }> {
    t.llm.push({ text });
    const res = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Summarise my week', deviceId } });
    expect(res.status).toBe(200);
    expect(res.body.response).toBe(text);
    return res.body;
  }

  async function wsDevice(user: TestUser, hello: Record<string, unknown> = {}): Promise<{ device: WsDevice; deviceId: string }> {
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await WsDevice.connect(t.url, user.accessToken);
    sockets.push(device);
    device.send({ type: 'device_hello', device_id: deviceId, agent_ids: [], ...hello });
    await online(user, deviceId);
    return { device, deviceId };
  }

  test("plain WebSocket: after an HTTP turn for the device, its own chat_request's frames are exactly its own (no stray final)", async () => {
    const user = await registerUser(t.api, 'Adiuva');
    const { device, deviceId } = await wsDevice(user);
    const http = await httpTurn(user, deviceId, 'Your week had three meetings.');

    // Sent right after the HTTP answer, as the app does; its own answer is the next `final`.
    t.llm.push({ text: 'You have two todo tasks.' });
    device.send({ type: 'chat_request', message: 'How many todo tasks do I have?' });
    const final = await device.next('final');

    expect(final).toEqual({ type: 'final', response: 'You have two todo tasks.', session_id: expect.any(String) });
    expect(final.session_id).not.toBe(http.sessionId);
    // What arrived for the HTTP turn was written before this turn's frames (one publisher, one subscriber): none did.
    const frames = turnFrames(device);
    expect(frames.filter((frame) => frame.session_id !== final.session_id)).toEqual([]);
    expect(device.all('final')).toHaveLength(1);
    expect(
      device
        .all('text_chunk')
        .map((frame) => frame.text)
        .join(''),
    ).toBe('You have two todo tasks.');
  });

  test('plain WebSocket: device_hello {all_turns: true} gets the text_chunk and final frames of a turn started over HTTP', async () => {
    const user = await registerUser(t.api, 'Watcher');
    const { device, deviceId } = await wsDevice(user, { all_turns: true });

    const http = await httpTurn(user, deviceId, 'Started from the web.');

    const final = await device.next('final', (frame) => frame.session_id === http.sessionId);
    expect(final.response).toBe('Started from the web.');
    const chunks = turnFrames(device).filter((frame) => frame.type === 'text_chunk' && frame.session_id === http.sessionId);
    expect(chunks.map((frame) => frame.text).join('')).toBe('Started from the web.');

    // Its own turns still come too.
    t.llm.push({ text: 'And this one is mine.' });
    device.send({ type: 'chat_request', message: 'Anything else?' });
    expect((await device.next('final', (frame) => frame.session_id !== http.sessionId)).response).toBe('And this one is mine.');
  });

  test("a later device_hello without all_turns goes back to its own turns; another user's all_turns device hears nothing", async () => {
    const user = await registerUser(t.api, 'Switcher');
    const { device, deviceId } = await wsDevice(user, { all_turns: true });
    // Another user's device of the same id that asks for every turn's frames.
    const stranger = await registerUser(t.api, 'Stranger');
    const spy = await WsDevice.connect(t.url, stranger.accessToken);
    sockets.push(spy);
    spy.send({ type: 'device_hello', device_id: deviceId, agent_ids: [], all_turns: true });
    await online(stranger, deviceId);

    device.send({ type: 'device_hello', device_id: deviceId, agent_ids: [] });
    // The second hello is handled before the device's next frame (frames are handled in order).
    t.llm.push({ text: 'Only mine.' });
    device.send({ type: 'chat_request', message: 'Mine?' });
    const own = await device.next('final');
    const http = await httpTurn(user, deviceId, 'Not for the device.');
    t.llm.push({ text: 'Mine again.' });
    device.send({ type: 'chat_request', message: 'Mine again?' });
    await device.next('final', (frame) => frame.session_id !== own.session_id);

    expect(turnFrames(device).filter((frame) => frame.session_id === http.sessionId)).toEqual([]);
    expect(turnFrames(spy)).toEqual([]);
  });

  test('a bad all_turns is refused with validation_failed and the device says nothing else until a good hello', async () => {
    const user = await registerUser(t.api, 'Typo');
    const device = await WsDevice.connect(t.url, user.accessToken);
    sockets.push(device);

    device.send({ type: 'device_hello', device_id: 'laptop-typo', agent_ids: [], all_turns: 'yes' });

    expect(await device.next('error')).toMatchObject({ code: 'validation_failed', message: expect.stringContaining('allTurns') });
    device.send({ type: 'chat_request', message: 'Hello?' });
    expect(await device.next('error', (frame) => frame.code !== 'validation_failed')).toMatchObject({ code: 'hello_required' });
  });

  test('Socket.IO /device: the same rule; allTurns in device_hello asks for the others', async () => {
    const { user, device } = await userWithDevice(t.url, devices, { name: 'Sio' });
    const deviceId = device.deviceId;
    const finals: Array<{ sessionId: string; response: string }> = [];
    const chunks: Array<{ sessionId: string; text: string }> = [];
    device.socket.on('final', (payload) => void finals.push(payload));
    device.socket.on('text_chunk', (payload) => void chunks.push(payload));
    await online(user, deviceId);

    const http = await httpTurn(user, deviceId, 'From the web again.');
    t.llm.push({ text: 'From the device.' });
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Hi' })) as { sessionId: string };
    await eventually(
      async () => finals,
      (list) => list.some((final) => final.sessionId === ack.sessionId),
    );
    expect(finals).toEqual([{ sessionId: ack.sessionId, response: 'From the device.' }]);
    expect(chunks.every((chunk) => chunk.sessionId === ack.sessionId)).toBe(true);

    const hello = await device.socket.timeout(5_000).emitWithAck('device_hello', { deviceId, agentIds: [], allTurns: true });
    expect(hello).toEqual({ ok: true });
    const watched = await httpTurn(user, deviceId, 'Watched from the web.');
    await eventually(
      async () => finals,
      (list) => list.some((final) => final.sessionId === watched.sessionId),
    );
    expect(finals.find((final) => final.sessionId === watched.sessionId)?.response).toBe('Watched from the web.');
    expect(finals.some((final) => final.sessionId === http.sessionId)).toBe(false);

    const bad = await device.socket.timeout(5_000).emitWithAck('device_hello', { deviceId, agentIds: [], allTurns: 'yes' } as never);
    expect(bad).toMatchObject({ ok: false, error: { code: 'validation_failed' } });
  });

  test("the SDK's device asks for every turn's frames with allTurns, and for its own only without it", async () => {
    const user = await registerUser(`${t.url}/api/v1`, 'Sdk');
    const connect = async (allTurns?: boolean) => {
      const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
      const device = await connectDevice({
        url: t.url,
        token: user.accessToken,
        deviceId,
        transport: 'ws',
        allTurns,
        reconnection: false,
      });
      sdkDevices.push(device);
      const finals: Frame[] = [];
      device.on('final', (frame) => void finals.push(frame));
      await online(user, deviceId);
      return { device, deviceId, finals };
    };
    const sessionOf = (frame: Frame) => frame.session_id ?? frame.sessionId;
    const watching = await connect(true);
    const own = await connect();

    const watched = await httpTurn(user, watching.deviceId, 'Seen by the watching device.');
    await eventually(
      async () => watching.finals,
      (list) => list.some((final) => sessionOf(final) === watched.sessionId),
    );

    // The second device's own request after an HTTP turn for it: the only final it hears is its own.
    await httpTurn(user, own.deviceId, 'Not for the device.');
    t.llm.push({ text: 'For the device.' });
    own.device.chat({ message: 'Hi' });
    await eventually(
      async () => own.finals,
      (list) => list.length > 0,
    );
    expect(own.finals.map((final) => final.response)).toEqual(['For the device.']);
  });
});
