import { randomUUID } from 'node:crypto';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

/**
 * Chat without a device, a model chosen per request, the session list and a session's
 * record, and the escalation reason. Real server, real scripted model over HTTP, real sockets.
 */
describe('chat without a device, model choice, sessions', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'A plain answer.' }) });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const chat = (user: TestUser, body: Record<string, unknown>) => request('POST', `${t.api}/chat`, { token: user.accessToken, body });
  const get = (user: TestUser, path: string) => request('GET', `${t.api}${path}`, { token: user.accessToken });
  const systemOf = (req: ChatRequest) => String(req.messages.find((m) => m.role === 'system')?.content ?? '');

  async function requestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: ChatRequest[] }> {
    const before = t.llm.chatRequests().length;
    const result = await work();
    return { result, requests: t.llm.chatRequests().slice(before) };
  }

  test('with no device online, a chat is a plain assistant: no tools offered, the prompt says local data is out of reach, history kept', async () => {
    const user = await registerUser(t.api, 'NoDevice');

    const { result: first, requests } = await requestsDuring(() => chat(user, { message: 'What is a good name for a cat?' }));
    const { result: second, requests: later } = await requestsDuring(() =>
      chat(user, { message: 'And for a dog?', sessionId: first.body.sessionId }),
    );

    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      sessionId: expect.any(String),
      response: 'A plain answer.',
      usage: expect.objectContaining({ provider: 'scripted' }),
    });
    expect(requests).toHaveLength(1);
    expect(requests[0].tools ?? []).toEqual([]);
    expect(systemOf(requests[0])).toMatch(/local data cannot be reached/);
    expect(second.status).toBe(200);
    expect(later[0].messages.map((m) => m.content)).toEqual(
      expect.arrayContaining(['What is a good name for a cat?', 'A plain answer.', 'And for a dog?']),
    );
    const session = await get(user, `/chat/sessions/${first.body.sessionId}`);
    expect(session.body.session).toMatchObject({
      id: first.body.sessionId,
      mode: 'none',
      deviceId: null,
      status: 'active',
      flowId: null,
      escalationReason: null,
    });
  });

  test('tools "none" skips the online device; the default uses it; tools "device" without one is 409', async () => {
    const user = await registerUser(t.api, 'Both');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: { tasks: [] },
      reconnection: false,
    });
    devices.push(device);
    const lonely = await registerUser(t.api, 'Lonely');

    const { result: plain, requests: plainRequests } = await requestsDuring(() => chat(user, { message: 'Hello there', tools: 'none' }));
    const { result: withDevice, requests: deviceRequests } = await requestsDuring(() =>
      chat(user, { message: 'How many todo tasks do I have?' }),
    );
    const refused = await chat(lonely, { message: 'Hello', tools: 'device' });

    expect(plain.status).toBe(200);
    expect(plainRequests[0].tools ?? []).toEqual([]);
    expect(withDevice.status).toBe(200);
    expect(deviceRequests[0].tools?.length).toBeGreaterThan(0);
    expect((await get(user, `/chat/sessions/${withDevice.body.sessionId}`)).body.session).toMatchObject({
      mode: 'device',
      deviceId: device.deviceId,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('device_offline');
  });

  test('config {provider, model} picks a configured model; an unknown one is 400 unknown_model and nothing is written', async () => {
    const user = await registerUser(t.api, 'Chooser');

    const { result: chosen, requests } = await requestsDuring(() =>
      chat(user, { message: 'Hi', config: { provider: 'scripted', model: 'scripted-model' } }),
    );
    const unknownProvider = await chat(user, { message: 'Hi', config: { provider: 'openai', model: 'gpt-4o' } });
    const unknownModel = await chat(user, { message: 'Hi', config: { provider: 'scripted', model: 'bigger-model' } });
    const malformed = await chat(user, { message: 'Hi', config: { provider: 'scripted' } });

    expect(chosen.status).toBe(200);
    expect(requests[0].model).toBe('scripted-model');
    for (const res of [unknownProvider, unknownModel]) {
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('unknown_model');
    }
    expect(malformed.status).toBe(400);
    const sessions = await get(user, '/chat/sessions');
    expect(sessions.body.sessions).toHaveLength(1);
  });

  test('the chat stream works without a device', async () => {
    const user = await registerUser(t.api, 'Streamer');
    const res = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Stream me an answer' },
    });
    expect(res.status).toBe(200);
    expect(res.messages.map((message) => message.event)).toEqual(expect.arrayContaining(['text_chunk', 'final']));
    expect(res.messages.find((message) => message.event === 'final')?.data).toMatchObject({ response: 'A plain answer.' });
  });

  test("GET /chat/sessions lists only the caller's sessions, most recent first, page by page", async () => {
    const user = await registerUser(t.api, 'Lister');
    const other = await registerUser(t.api, 'Other');
    const ids: string[] = [];
    for (const message of ['one', 'two', 'three']) ids.push((await chat(user, { message })).body.sessionId);
    await chat(other, { message: 'not yours' });
    // Activity moves a session to the top.
    await chat(user, { message: 'one again', sessionId: ids[0] });

    const first = await get(user, '/chat/sessions?limit=2');
    const second = await get(user, `/chat/sessions?limit=2&cursor=${first.body.nextCursor}`);

    expect(first.status).toBe(200);
    expect(first.body.sessions.map((s: { id: string }) => s.id)).toEqual([ids[0], ids[2]]);
    expect(second.body.sessions.map((s: { id: string }) => s.id)).toEqual([ids[1]]);
    expect(second.body.nextCursor).toBeNull();
    expect((await get(user, '/chat/sessions?cursor=bm90LWEtY3Vyc29y')).body.error.code).toBe('invalid_cursor');
    expect((await get(user, '/chat/sessions?limit=201')).status).toBe(400);
    expect((await get(other, `/chat/sessions/${ids[0]}`)).status).toBe(404);
  });

  test('escalate stores its reason; a reason over 2,000 characters is 400 and changes nothing', async () => {
    const user = await registerUser(t.api, 'Escalator');
    const { sessionId } = (await chat(user, { message: 'It does not work' })).body;
    const escalate = (reason: unknown) =>
      request('POST', `${t.api}/chat/sessions/${sessionId}/escalate`, { token: user.accessToken, body: { reason } });

    const tooLong = await escalate('x'.repeat(2_001));
    expect(tooLong.status).toBe(400);
    expect((await get(user, `/chat/sessions/${sessionId}`)).body.session).toMatchObject({ status: 'active', escalationReason: null });

    const ok = await escalate('Customer needs a refund');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ sessionId, status: 'escalated', documentation: null, psaPushStatus: 'no_psa' });
    expect((await get(user, `/chat/sessions/${sessionId}`)).body.session).toMatchObject({
      status: 'escalated',
      escalationReason: 'Customer needs a refund',
    });
  });
});
