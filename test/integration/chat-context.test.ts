import { randomUUID } from 'node:crypto';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { WsDevice } from '../support/ws-device';

/**
 * A chat request's `context` (where the user is in their app): validated, kept on the session and
 * given to the model on every turn of it. Real server, real scripted model over HTTP, real sockets.
 */
describe('chat context', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];
  const wsDevices: WsDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'Noted.' }) });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    wsDevices.forEach((device) => device.close());
    await t.stop();
  });

  const chat = (user: TestUser, body: Record<string, unknown>) => request('POST', `${t.api}/chat`, { token: user.accessToken, body });
  const get = (user: TestUser, path: string) => request('GET', `${t.api}${path}`, { token: user.accessToken });
  const systemOf = (req: ChatRequest) =>
    req.messages
      .filter((m) => m.role === 'system')
      .map((m) => String(m.content))
      .join('\n');

  /** The model requests made while `work` ran. */
  async function requestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: ChatRequest[] }> {
    const before = t.llm.chatRequests().length;
    const result = await work();
    return { result, requests: t.llm.chatRequests().slice(before) };
  }

  test('given a context on the first request, it is stored on the session and reaches the model on every turn until replaced or cleared', async () => {
    const user = await registerUser(t.api, 'Context');
    const context = { screen: 'project', project: { id: 'p-42', title: 'Apollo launch' }, selectedTaskIds: ['t-7'] };

    const { result: first, requests: firstRequests } = await requestsDuring(() =>
      chat(user, { message: 'What am I looking at?', context }),
    );
    const sessionId = first.body.sessionId as string;
    const { requests: laterRequests } = await requestsDuring(() => chat(user, { message: 'And what next?', sessionId }));
    const replaced = { screen: 'calendar', day: '2031-02-03' };
    const { requests: replacedRequests } = await requestsDuring(() =>
      chat(user, { message: 'Now this one', sessionId, context: replaced }),
    );
    const afterReplace = await get(user, `/chat/sessions/${sessionId}`);
    const { requests: clearedRequests } = await requestsDuring(() => chat(user, { message: 'Forget it', sessionId, context: {} }));
    const afterClear = await get(user, `/chat/sessions/${sessionId}`);

    expect(first.status).toBe(200);
    expect(firstRequests).toHaveLength(1);
    expect(systemOf(firstRequests[0])).toContain('"Apollo launch"');
    expect(systemOf(firstRequests[0])).toContain('"t-7"');
    // A turn without `context` still gets the session's.
    expect(systemOf(laterRequests[0])).toContain('"Apollo launch"');
    expect(systemOf(replacedRequests[0])).toContain('"2031-02-03"');
    expect(systemOf(replacedRequests[0])).not.toContain('Apollo launch');
    expect(afterReplace.body.session.context).toEqual(replaced);
    expect(systemOf(clearedRequests[0])).not.toContain('2031-02-03');
    expect(afterClear.body.session.context).toBeNull();
  });

  test('given a context on the stream route, the session keeps it and the model reads it', async () => {
    const user = await registerUser(t.api, 'Streamer');
    const { result: res, requests } = await requestsDuring(() =>
      readSse(`${t.api}/chat/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { message: 'Summarise this view', context: { view: 'inbox', unread: 3 } },
      }),
    );

    expect(res.status).toBe(200);
    expect(res.messages.map((message) => message.event)).toContain('final');
    expect(systemOf(requests[0])).toContain('"inbox"');
    const sessionId = res.messages.find((message) => message.event === 'final')?.data.sessionId as string;
    expect((await get(user, `/chat/sessions/${sessionId}`)).body.session.context).toEqual({ view: 'inbox', unread: 3 });
  });

  test('given a bad context, the request is 400 and nothing is written or asked of the model', async () => {
    const user = await registerUser(t.api, 'Careless');
    const started = await chat(user, { message: 'Start', context: { screen: 'home' } });
    const sessionId = started.body.sessionId as string;
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 12; i += 1) deep = { deeper: deep };
    const bad: unknown[] = [{ blob: 'x'.repeat(9_000) }, ['not', 'an', 'object'], 'a string', 42, null, deep, { ['k'.repeat(300)]: 1 }];

    const { result: answers, requests } = await requestsDuring(async () => {
      const out = [];
      for (const context of bad) {
        out.push(await chat(user, { message: 'New session', context }));
        out.push(await chat(user, { message: 'Same session', sessionId, context }));
      }
      return out;
    });

    for (const res of answers) {
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
    expect(JSON.stringify(answers[0].body.error.details)).toMatch(/context/);
    expect(requests).toHaveLength(0);
    const sessions = await get(user, '/chat/sessions');
    expect(sessions.body.sessions.map((s: { id: string }) => s.id)).toEqual([sessionId]);
    const history = await get(user, `/chat/sessions/${sessionId}/history`);
    expect(history.body.session.context).toEqual({ screen: 'home' });
    expect(history.body.messages.filter((m: { role: string }) => m.role === 'user')).toHaveLength(1);
  });

  test("given another user's session, a context for it is 404 and the owner's context is untouched", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const intruder = await registerUser(t.api, 'Intruder');
    const started = await chat(owner, { message: 'Mine', context: { secret: 'owner-only' } });
    const sessionId = started.body.sessionId as string;

    const { result: res, requests } = await requestsDuring(() =>
      chat(intruder, { message: 'Let me in', sessionId, context: { secret: 'overwritten' } }),
    );

    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(requests).toHaveLength(0);
    expect((await get(intruder, `/chat/sessions/${sessionId}`)).status).toBe(404);
    expect((await get(owner, `/chat/sessions/${sessionId}`)).body.session.context).toEqual({ secret: 'owner-only' });
  });

  test("given a device's chat_request with a context, the model reads it; an oversized one is refused in the ack", async () => {
    const user = await registerUser(t.api, 'Desktop');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: { tasks: [] },
      reconnection: false,
    });
    devices.push(device);
    const final = new Promise<{ sessionId: string; response: string }>((resolve) => device.socket.once('final', resolve));

    const { result: done, requests } = await requestsDuring(async () => {
      const ack = await device.socket
        .timeout(5_000)
        .emitWithAck('chat_request', { message: 'Hello', context: { openNote: 'Quarterly plan' } });
      expect(ack).toEqual({ sessionId: expect.any(String), messageId: expect.any(String) });
      return final;
    });
    const refused = await device.socket
      .timeout(5_000)
      .emitWithAck('chat_request', { message: 'Hello', context: { blob: 'x'.repeat(9_000) } });

    expect(systemOf(requests[0])).toContain('"Quarterly plan"');
    expect((await get(user, `/chat/sessions/${done.sessionId}`)).body.session.context).toEqual({ openNote: 'Quarterly plan' });
    expect(refused).toEqual({ error: expect.objectContaining({ code: 'validation_failed', message: expect.stringMatching(/context/) }) });
  });

  test("given a desktop app's plain-WebSocket chat_request with a context, the model reads it; an oversized one is an error frame", async () => {
    const user = await registerUser(t.api, 'Plain');
    const device = await WsDevice.hello(t.url, user.accessToken, `desk-${randomUUID().slice(0, 6)}`);
    wsDevices.push(device);

    const { result: final, requests } = await requestsDuring(async () => {
      device.send({ type: 'chat_request', message: 'Hello', context: { open_view: 'weekly review' } });
      return device.next('final');
    });
    const from = device.frames.length;
    device.send({ type: 'chat_request', message: 'Hello', context: { blob: 'x'.repeat(9_000) } });
    const refused = await device.next('error', () => true, { from });

    expect(systemOf(requests[0])).toContain('"weekly review"');
    expect((await get(user, `/chat/sessions/${final.session_id}`)).body.session.context).toEqual({ open_view: 'weekly review' });
    expect(refused).toMatchObject({ code: 'validation_failed', message: expect.stringMatching(/context/) });
  });
});
