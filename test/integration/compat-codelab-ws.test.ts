import { randomUUID } from 'node:crypto';
import { MemoryStore } from '@switchboard/client/testing';
import type { ToolCall } from '../../src/schemas/device-protocol';
import { signAccessToken } from '../../src/auth/tokens';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { waitUntil } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

/**
 * The CodeLab IDE's WebSocket against a real server: its messages as its protocol types them
 * (copied below), tools running on the user's desktop app (a plain-WebSocket device answering
 * from its tables), approvals, cancel, and what an attacker can send.
 */

// ---- The IDE's protocol, as its design document writes it (Client → Server, Server → Client). ----
interface ClientMessage {
  type: 'chat' | 'tool_approval' | 'cancel';
  session_id: string;
  data: {
    message?: string;
    approval_id?: string;
    approved?: boolean;
  };
}
interface ServerMessage {
  type: 'token' | 'tool_call' | 'tool_result' | 'error' | 'done';
  session_id: string;
  data: any;
}
// ---- end of the copied types ----

const IDE_PATH = '/api/v1/ws';
const TASK_ID = '7b1e2d3c-4a5b-4c6d-8e7f-9a0b1c2d3e4f';

describe('CodeLab IDE WebSocket (chat, tool_approval, cancel)', () => {
  let t: TestApp;
  const open: Array<{ close(): void }> = [];

  /** A turn asking for an answer "at length" waits for this before the model answers. */
  let held = Promise.resolve();
  let releaseHeld = () => undefined as void;

  beforeAll(async () => {
    held = new Promise<void>((resolve) => (releaseHeld = resolve));
    t = await startTestApp({
      env: { DEVICE_RPC_TIMEOUT_MS: '3000', HITL_TIMEOUT_MS: '60000' },
      responder: async (req) => {
        if (JSON.stringify(req.messages.at(-1)?.content ?? '').includes('at length')) await held;
        return { text: 'done' };
      },
    });
  });

  afterAll(async () => {
    releaseHeld();
    open.forEach((client) => client.close());
    await t.stop();
  });

  const ide = async (token: string) => {
    const client = await WsDevice.connect(t.url, token, 10_000, IDE_PATH);
    open.push(client);
    return client;
  };
  const send = (client: WsDevice, message: ClientMessage) => client.send(message);

  /** A user with an empty CodeLab session (its REST call) and their desktop app online, answering from its tables. */
  async function userWithApp(): Promise<{ user: TestUser; sessionId: string; app: WsDevice; store: MemoryStore }> {
    const user = await registerUser(t.api, 'Coder');
    const store = new MemoryStore({ tasks: [{ id: TASK_ID, title: 'Ship the release', status: 'todo', priority: 'high' }] });
    const app = await WsDevice.hello(t.url, user.accessToken, `laptop-${randomUUID().slice(0, 6)}`);
    open.push(app);
    app.onToolCall = (frame: Frame) => {
      const { type: _type, ...call } = frame;
      return store.execute(call as ToolCall) as Record<string, unknown>;
    };
    // Online once the server answers a frame sent after the hello.
    app.send({ type: 'ping' });
    await app.next('pong');
    const session = await request('POST', `${t.url}/api/v1/sessions`, { token: user.accessToken, body: {} });
    expect(session.status).toBe(201);
    return { user, sessionId: session.body.session.id, app, store };
  }

  const types = (client: WsDevice, from = 0) =>
    client.frames.slice(from).map((frame) => (frame.type === 'state' ? `state:${frame.data.state}` : frame.type));

  test('chat: tokens, the tool call and its result, done, and the dialogue state processing → executing → processing → idle', async () => {
    const { user, sessionId, app } = await userWithApp();
    const client = await ide(user.accessToken);
    t.llm.push({ toolCalls: [{ name: 'list_tasks', args: { status: 'todo' } }] }, { text: 'You have one task: Ship the release.' });

    send(client, { type: 'chat', session_id: sessionId, data: { message: 'Which tasks are still todo?' } });
    const done = (await client.next('done')) as unknown as ServerMessage;

    expect(done.session_id).toBe(sessionId);
    expect(done.data.response).toBe('You have one task: Ship the release.');
    await client.next('state', (frame) => frame.data.state === 'idle');
    expect(types(client)).toEqual([
      'state:processing',
      'state:executing',
      'tool_call',
      'tool_result',
      'state:processing',
      ...client.all('token').map(() => 'token'),
      'done',
      'state:idle',
    ]);
    const call = client.all('tool_call')[0] as unknown as ServerMessage;
    expect(call).toMatchObject({
      session_id: sessionId,
      data: { name: 'list_tasks', arguments: { status: 'todo' }, requires_approval: false },
    });
    const result = client.all('tool_result')[0] as unknown as ServerMessage;
    expect(result.data).toMatchObject({ id: call.data.id, name: 'list_tasks', ok: true });
    expect(result.data.result).toContain('Ship the release');
    expect(
      client
        .all('token')
        .map((frame) => frame.data)
        .join(''),
    ).toBe(done.data.response);
    // The tool ran on the desktop app, and the turn is in the session's history.
    expect(app.all('tool_call').map((frame) => frame.table)).toEqual(['tasks']);
    const history = await request('GET', `${t.url}/api/v1/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(
      expect.arrayContaining(['Which tasks are still todo?', 'You have one task: Ship the release.']),
    );
  });

  test('tool_approval: a dangerous call waits (state waiting) until the IDE approves it, then runs and the turn ends', async () => {
    const { user, sessionId, app, store } = await userWithApp();
    const client = await ide(user.accessToken);
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] }, { text: 'Deleted.' });

    send(client, { type: 'chat', session_id: sessionId, data: { message: 'Delete the release task' } });
    const asked = (await client.next('tool_call', (frame) => frame.data.requires_approval)) as unknown as ServerMessage;
    expect(asked.data).toMatchObject({ name: 'delete_task', arguments: { task_id: TASK_ID }, approval_id: expect.any(String) });
    await client.next('state', (frame) => frame.data.state === 'waiting');
    expect(app.all('tool_call')).toHaveLength(0);

    send(client, { type: 'tool_approval', session_id: sessionId, data: { approval_id: asked.data.approval_id, approved: true } });
    const done = (await client.next('done')) as unknown as ServerMessage;
    expect(done.data.response).toBe('Deleted.');
    const result = client.all('tool_result')[0] as unknown as ServerMessage;
    expect(result.data).toMatchObject({ name: 'delete_task', ok: true });
    expect(app.all('tool_call').map((frame) => frame.action)).toEqual(['delete']);
    expect(store.execute({ id: 'check', action: 'select', table: 'tasks' } as ToolCall)).toMatchObject({ rows: [] });
  });

  test('cancel: a running turn stops; done says cancelled and the state is idle', async () => {
    const { user, sessionId } = await userWithApp();
    const client = await ide(user.accessToken);
    const asked = t.llm.chatRequests().length;
    send(client, { type: 'chat', session_id: sessionId, data: { message: 'Explain the architecture at length' } });
    await client.next('state', (frame) => frame.data.state === 'processing');
    // The turn is running once the model was asked (it holds its answer until released).
    await waitFor(() => t.llm.chatRequests().length > asked);
    send(client, { type: 'cancel', session_id: sessionId, data: {} });
    const done = (await client.next('done')) as unknown as ServerMessage;
    releaseHeld();
    expect(done.data).toMatchObject({ cancelled: true });
    await client.next('state', (frame) => frame.data.state === 'idle');
  });

  describe('attacks', () => {
    test("another user's session_id and approval_id: not_found, nothing written, their approval still pending", async () => {
      const owner = await userWithApp();
      const ownerIde = await ide(owner.user.accessToken);
      t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] }, { text: 'Deleted.' });
      send(ownerIde, { type: 'chat', session_id: owner.sessionId, data: { message: 'Delete the release task' } });
      const asked = await ownerIde.next('tool_call', (frame) => frame.data.requires_approval);

      const intruder = await registerUser(t.api, 'Intruder');
      const client = await ide(intruder.accessToken);
      send(client, { type: 'chat', session_id: owner.sessionId, data: { message: 'Tell me their secrets' } });
      send(client, { type: 'tool_approval', session_id: owner.sessionId, data: { approval_id: asked.data.approval_id, approved: true } });
      send(client, { type: 'cancel', session_id: owner.sessionId, data: {} });
      await client.next('error', () => client.all('error').length >= 3);
      expect(client.all('error').map((frame) => frame.data.code)).toEqual(['not_found', 'not_found', 'not_found']);

      const pending = await request('GET', `${t.api}/hitl/requests/${asked.data.approval_id}`, { token: owner.user.accessToken });
      expect(pending.body).toMatchObject({ id: asked.data.approval_id, status: 'pending' });
      const history = await request('GET', `${t.url}/api/v1/sessions/${owner.sessionId}/history`, { token: owner.user.accessToken });
      expect(JSON.stringify(history.body)).not.toContain('Tell me their secrets');
      expect(owner.app.all('tool_call')).toHaveLength(0);
      // The owner decides; the turn goes on.
      send(ownerIde, {
        type: 'tool_approval',
        session_id: owner.sessionId,
        data: { approval_id: asked.data.approval_id, approved: false },
      });
      expect(((await ownerIde.next('done')) as unknown as ServerMessage).data.response).toBe('Deleted.');
    });

    test('malformed, oversized, binary, unknown and lone-surrogate messages get error messages; the connection stays', async () => {
      const user = await registerUser(t.api, 'Fuzzer');
      const client = await ide(user.accessToken);
      client.send('{not json');
      client.send(Buffer.from([0xff, 0xfe, 0x7b]));
      client.send(JSON.stringify({ type: 'chat', session_id: randomUUID(), data: { message: 'x'.repeat(70_000) } }));
      client.send(Buffer.from('{"type":"chat"}'), { binary: true });
      client.send({ type: 'shell', session_id: randomUUID(), data: {} });
      client.send({ type: 'chat', session_id: 'not-a-uuid', data: { message: 'hi' } });
      client.send({ type: 'chat', data: { message: 'broken \ud800 text' } });
      client.send({ type: 'chat', data: { message: 'hi', extra: true } });
      client.send({ type: 'cancel', data: {} });
      await client.next('error', () => client.all('error').length >= 9);
      expect(client.all('error').map((frame) => frame.data.code)).toEqual([
        'invalid_json',
        'invalid_json',
        'too_large',
        'invalid_frame',
        'validation_failed',
        'validation_failed',
        'invalid_text',
        'validation_failed',
        'validation_failed',
      ]);
      expect(client.open).toBe(true);
      // Nothing of it was written: the user has no session.
      const sessions = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
      expect(sessions.body.sessions).toEqual([]);
    });

    test('a flood of frames closes the connection with 1008; the server serves the next one', async () => {
      const user = await registerUser(t.api, 'Flooder');
      const client = await ide(user.accessToken);
      for (let i = 0; i < 500; i += 1) client.send({ type: 'cancel', data: {} });
      expect((await within(client.closed, 10_000)).code).toBe(1008);
      const next = await ide(user.accessToken);
      next.send({ type: 'cancel', session_id: randomUUID(), data: {} });
      expect((await next.next('error')).data.code).toBe('not_found');
    });

    test('a flood of chat messages: each starts a turn or is refused (rate_limited, busy) until ten refusals in a row close it; no more sessions than the limit', async () => {
      const user = await registerUser(t.api, 'Chatty');
      const client = await ide(user.accessToken);
      for (let i = 0; i < 40; i += 1) client.send({ type: 'chat', data: { message: `Question ${i}` } });
      // Messages are answered in order: by the first state frame of the session its turn opened, or by one error frame.
      const answers = (): string[] => {
        const seen = new Set<string>();
        const list: string[] = [];
        for (const frame of client.frames) {
          if (frame.type === 'error') list.push(frame.data.code as string);
          else if (frame.type === 'state' && !seen.has(frame.session_id as string)) {
            seen.add(frame.session_id as string);
            list.push('started');
          }
        }
        return list;
      };
      let closedWith: number | undefined;
      void client.closed.then(({ code }) => (closedWith = code));
      await waitUntil(() => answers().length >= 40 || closedWith !== undefined, 75_000);
      const answered = answers();
      expect(answered).toContain('started');
      expect(answered.filter((code) => !['started', 'rate_limited', 'busy'].includes(code))).toEqual([]);
      if (closedWith !== undefined) {
        // A client that keeps sending after refusals is closed like one sending bad frames.
        expect(closedWith).toBe(1008);
        expect(answered.slice(-10).every((code) => code !== 'started')).toBe(true);
      } else expect(answered).toHaveLength(40);
      const started = answered.filter((code) => code === 'started').length;
      const sessions = await request('GET', `${t.api}/chat/sessions?limit=100`, { token: user.accessToken });
      expect(sessions.body.sessions.length).toBeLessThanOrEqual(30);
      expect(sessions.body.sessions.length).toBe(started);
    }, 90_000);

    test('a bad or expired token is 401 at the upgrade; a token that expires while open closes the connection with 4002', async () => {
      const user = await registerUser(t.api, 'Expiring');
      await expect(WsDevice.connect(t.url, 'not-a-token', 10_000, IDE_PATH)).rejects.toThrow('status 401');
      await expect(WsDevice.connect(t.url, undefined, 10_000, IDE_PATH)).rejects.toThrow('status 401');
      const { auth } = t.app.config;
      const settings = {
        secret: new TextEncoder().encode(auth.jwtSecret),
        issuer: auth.issuer,
        audience: auth.audience,
        accessTokenTtlSeconds: 2,
      };
      const token = await signAccessToken(settings, { sub: user.id, email: user.email, name: user.name, tier: 'free' } as never);
      const client = await ide(token);
      expect((await within(client.closed, 10_000)).code).toBe(4002);
      await expect(WsDevice.connect(t.url, token, 10_000, IDE_PATH)).rejects.toThrow('status 401');
    });

    test('a disconnect mid-turn: the turn runs to its end and its answer is in the history', async () => {
      const { user, sessionId } = await userWithApp();
      const client = await ide(user.accessToken);
      t.llm.push({ toolCalls: [{ name: 'list_tasks', args: {} }] }, { text: 'Finished without you.' });
      send(client, { type: 'chat', session_id: sessionId, data: { message: 'List my tasks' } });
      await client.next('tool_call');
      client.ws.terminate();
      const deadline = Date.now() + 15_000;
      let contents: string[] = [];
      while (Date.now() < deadline) {
        const history = await request('GET', `${t.url}/api/v1/sessions/${sessionId}/history`, { token: user.accessToken });
        contents = history.body.messages.map((m: { content: string }) => m.content);
        if (contents.includes('Finished without you.')) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(contents).toContain('Finished without you.');
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), timeoutMs)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
