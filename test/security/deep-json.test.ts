import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { MAX_JSON_DEPTH } from '../../src/lib/json-depth';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { connectCanvas } from '../support/sockets';
import { within } from '../support/wait';
import { WsDevice } from '../support/ws-device';

/**
 * JSON nested far deeper than any client writes is refused where it is parsed — request bodies on
 * every path, plain WebSocket frames, Socket.IO payloads — before anything walks it: a 400 in the
 * error shape (an `error` frame, an error ack) that writes nothing, never a 500 or a crash.
 */
const DEPTH = 100_000;
const deepArray = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
/** Snake_case keys, so an edge that renames them would walk it. */
const deepObject = '{"a_b":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH);
/** A body of a known shape with the deep value in one field. */
const inField = (deep: string, fields: Record<string, unknown>) => `${JSON.stringify(fields).slice(0, -1)},"extra_data":${deep}}`;

describe('deeply nested JSON', () => {
  let t: TestApp;
  let user: TestUser;
  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
    user = await registerUser(t.api, 'Deep');
  }, 60_000);
  afterAll(() => t.stop());

  const post = (url: string, rawBody: string) => request('POST', url, { token: user.accessToken, rawBody });
  const expectTooDeep = (res: { status: number; body: any }) => {
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      code: 'validation_failed',
      message: expect.stringContaining(`${MAX_JSON_DEPTH} levels`),
      details: expect.any(Array),
    });
  };
  const bodies = (fields: Record<string, unknown>) => [deepArray, deepObject, inField(deepArray, fields), inField(deepObject, fields)];

  test('a legacy path (a chat turn) refuses it with 400 and starts no session; the server still answers', async () => {
    for (const body of bodies({ message: 'hi' })) expectTooDeep(await post(`${t.url}/api/agent-builder/chatflow/chat`, body));

    const sessions = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
    expect(sessions.status).toBe(200);
    expect(sessions.body.sessions).toEqual([]);
  });

  test('a snake_case /agents path refuses it with 400 and creates no agent', async () => {
    const name = `Deep ${randomUUID().slice(0, 6)}`;
    for (const body of bodies({ name, device_id: 'laptop' })) expectTooDeep(await post(`${t.api}/agents/local`, body));

    const agents = await request('GET', `${t.api}/agents/local`, { token: user.accessToken });
    expect(agents.status).toBe(200);
    expect(agents.body.agents.filter((agent: { name: string }) => agent.name === name)).toEqual([]);
  });

  test('a native path refuses it with 400 and creates no flow', async () => {
    const name = `Deep ${randomUUID().slice(0, 6)}`;
    for (const body of bodies({ type: 'agentflow', name })) expectTooDeep(await post(`${t.api}/flows`, body));

    const flows = await request('GET', `${t.api}/flows`, { token: user.accessToken });
    expect(flows.status).toBe(200);
    expect(JSON.stringify(flows.body)).not.toContain(name);
    expect((await request('GET', `${t.url}/healthz`)).status).toBe(200);
  });

  test('JSON at the bound passes the check (and meets the route’s own validation)', async () => {
    // The body's own object is one level.
    const atBound = '['.repeat(MAX_JSON_DEPTH - 1) + ']'.repeat(MAX_JSON_DEPTH - 1);
    const res = await post(`${t.api}/flows`, inField(atBound, { type: 'agentflow' }));
    expect(res.status).toBe(400);
    expect(res.body.error.message).not.toContain('levels deep');
  });

  test('a plain WebSocket device frame gets an `error` frame, and the connection stays up', async () => {
    const device = await WsDevice.connect(t.url, user.accessToken);
    try {
      for (const frame of [deepArray, inField(deepObject, { type: 'device_hello', device_id: 'deep-laptop' })]) {
        const from = device.frames.length;
        device.send(frame);
        const error = await device.next('error', () => true, { from });
        expect(error).toMatchObject({ code: 'validation_failed', message: expect.stringContaining(`${MAX_JSON_DEPTH} levels`) });
      }
      const from = device.frames.length;
      device.send({ type: 'ping' });
      await device.next('pong', () => true, { from });
      expect(device.open).toBe(true);
    } finally {
      device.ws.close();
    }
  });

  test('the agent chat WebSocket answers a deep message (within its 64 KB limit) with an `error` message, and stays open', async () => {
    const client = await WsDevice.connect(t.url, user.accessToken, 10_000, '/api/v1/ws');
    try {
      const deep = '['.repeat(30_000) + ']'.repeat(30_000);
      client.send(deep);
      const error = await client.next('error');
      expect(error.data).toEqual({ code: 'validation_failed', message: expect.stringContaining(`${MAX_JSON_DEPTH} levels`) });
      expect(client.open).toBe(true);
    } finally {
      client.ws.close();
    }
  });

  test('a Socket.IO event with such a payload gets an error ack, and the socket stays connected', async () => {
    const socket = await connectCanvas(t.url, user.accessToken);
    try {
      // The client library's encoder would itself overflow on this value: the packet is written as text.
      const engine = socket.io.engine;
      const acks = new Map<number, (packet: string) => void>();
      engine.on('message', (data) => {
        const match = /^3\/canvas,(\d+)/.exec(String(data));
        if (match) acks.get(Number(match[1]))?.(String(data));
      });
      for (const [id, payload] of [
        [901, deepArray],
        [902, deepObject],
      ] as const) {
        const acked = new Promise<string>((resolve) => acks.set(id, resolve));
        engine.send(`2/canvas,${id}["canvas:sync",${payload}]`);
        const ack = JSON.parse((await within(acked, 10_000, `ack ${id}`)).replace(/^3\/canvas,\d+/, '')) as unknown[];
        expect(ack[0]).toMatchObject({
          ok: false,
          error: { code: 'validation_failed', message: expect.stringContaining(`${MAX_JSON_DEPTH} levels`) },
        });
      }
      expect(socket.connected).toBe(true);
      const fine = await socket.timeout(5_000).emitWithAck('canvas:join', randomUUID());
      expect(fine).toMatchObject({ ok: false });
      expect(socket.connected).toBe(true);
    } finally {
      socket.close();
    }
  });
});
