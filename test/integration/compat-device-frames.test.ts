import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, type TestUser } from '../support/http';
import { WsDevice } from '../support/ws-device';

/**
 * Frames of the desktop app the device protocol was first written for, sent as that app writes
 * them (its frame table: `{"type": "ping"}`, `chat_request {message, context}`), and the
 * agent-builder's socket `chat_request {config: {provider, model}}`.
 */
describe('device frames of the Adiuva and agent-builder apps', () => {
  let t: TestApp;
  const open: Array<{ close(): void }> = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { LLM_FALLBACK_MODELS: 'scripted-large', DEVICE_RPC_TIMEOUT_MS: '3000' } });
  });

  afterAll(async () => {
    open.forEach((device) => device.close());
    await t.stop();
  });

  const wsDevice = async (user?: TestUser) => {
    const owner = user ?? (await registerUser(t.api, 'Adiuva'));
    const device = await WsDevice.hello(t.url, owner.accessToken, `laptop-${randomUUID().slice(0, 6)}`);
    open.push(device);
    return { user: owner, device };
  };

  test("the app's ping is answered with pong, before device_hello too, and never counts as a bad frame", async () => {
    const user = await registerUser(t.api, 'Pinger');
    const device = await WsDevice.connect(t.url, user.accessToken);
    open.push(device);
    device.send(JSON.stringify({ type: 'ping' }));
    await device.next('pong');
    device.send({ type: 'device_hello', device_id: `laptop-${randomUUID().slice(0, 6)}`, agent_ids: [] });
    // Nine bad frames, a ping, nine more: the ping breaks the row, so ten in a row never happen.
    for (let i = 0; i < 9; i += 1) device.send({ type: 'nonsense' });
    device.send({ type: 'ping' });
    for (let i = 0; i < 9; i += 1) device.send({ type: 'nonsense' });
    device.send({ type: 'ping' });
    await eventuallyCount(device, 'pong', 3);
    expect(device.all('error').filter((frame) => frame.code === 'unknown_type')).toHaveLength(18);
    expect(
      device.frames.some((frame) => frame.type === 'error' && /ping/.test(String(frame.message)) && frame.code !== 'unknown_type'),
    ).toBe(false);
    expect(device.open).toBe(true);
    // A heartbeat carries nothing the server reads: one with a field of its own is answered too.
    device.send({ type: 'ping', sent_at: 1 });
    await eventuallyCount(device, 'pong', 4);
  });

  test('chat_request {config: {provider, model}} answers with that model; an unknown one is error unknown_model', async () => {
    const { device } = await wsDevice();
    t.llm.push({ text: 'Answered by the large model.' });
    device.send({
      type: 'chat_request',
      message: 'Which model are you?',
      context: {},
      config: { provider: 'scripted', model: 'scripted-large' },
    });
    const final = await device.next('final');
    expect(final.response).toBe('Answered by the large model.');
    expect(t.llm.chatRequests().at(-1)!.model).toBe('scripted-large');

    const sent = device.frames.length;
    device.send({ type: 'chat_request', message: 'And now?', config: { provider: 'scripted', model: 'no-such-model' } });
    const error = await device.next('error', () => true, { from: sent });
    expect(error).toMatchObject({ code: 'unknown_model' });
    device.send({ type: 'chat_request', message: 'And now?', config: { provider: 'scripted' } });
    const invalid = await device.next('error', (frame) => frame.code === 'validation_failed', { from: sent });
    expect(invalid.message).toMatch(/config/);
  });

  test("Socket.IO chat_request {config} (the agent-builder's socket) is accepted and answered with that model", async () => {
    const user = await registerUser(t.api, 'Builder');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `builder-${randomUUID().slice(0, 6)}`,
      reconnection: false,
    });
    open.push(device);
    t.llm.push({ text: 'Socket answer.' });
    const final = new Promise<{ response: string }>((resolve) => device.socket.once('final', resolve as never));
    const ack = (await device.socket
      .timeout(5_000)
      .emitWithAck('chat_request', { message: 'Hello!', config: { provider: 'scripted', model: 'scripted-large' } })) as {
      sessionId?: string;
      error?: unknown;
    };
    expect(ack.sessionId).toEqual(expect.any(String));
    expect((await final).response).toBe('Socket answer.');
    expect(t.llm.chatRequests().at(-1)!.model).toBe('scripted-large');
  });
});

/** Resolves once `count` frames of `type` have arrived. */
async function eventuallyCount(device: WsDevice, type: string, count: number): Promise<void> {
  await device.next(type, () => device.all(type).length >= count);
}
