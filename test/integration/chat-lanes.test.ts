import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { DeviceSimulator } from '@switchboard/client/testing';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { rowsOf } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { eventually } from '../support/wait';
import { WsDevice, type Frame } from '../support/ws-device';

const LONG_ANSWER = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

/**
 * The scripted model. "story": a long answer, streamed slowly. "what did you say": tells whether
 * the conversation it was given holds the whole story (the turn before it, answered).
 */
function responder(request: ChatRequest): ChatTurn {
  const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
  const asked = lastUser ? messageText(lastUser) : '';
  if (/story/i.test(asked)) return { text: LONG_ANSWER };
  if (/what did you say/i.test(asked)) {
    const story = request.messages.some((m) => m.role === 'assistant' && messageText(m).includes('word59'));
    return { text: story ? 'I told you a story.' : 'I have said nothing yet.' };
  }
  return { text: 'All done.' };
}

const ended = (m: SseMessage) => ['final', 'error', 'cancelled'].includes(m.event ?? '');

/**
 * One session, one lane: a second message sent while a turn of its session runs waits for it
 * (`enqueue`), is refused (`reject`), stops it keeping its words (`interrupt`) or stops and
 * forgets it (`rollback`); per request or per session, on HTTP, SSE, the devices' sockets and the IDE socket.
 */
describe('one session, one lane', () => {
  let t: TestApp;
  const open: Array<{ close(): void }> = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 40 });
  }, 120_000);

  afterAll(async () => {
    open.forEach((client) => client.close());
    await t.stop();
  });

  const history = async (user: TestUser, sessionId: string) =>
    (await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken })).body.messages as Array<{
      id: string;
      role: string;
      content: string;
      status: string;
      replyTo: string | null;
    }>;
  const countRows = async (sessionId: string) =>
    rowsOf<{ n: number }>(
      await t.app.repos.db.execute(
        sql`select (select count(*) from chat_messages where session_id = ${sessionId}::uuid)::int
          + (select count(*) from runs where kind = 'chat' and id in (select id from chat_messages where session_id = ${sessionId}::uuid))::int as n`,
      ),
    )[0].n;

  /** Starts the story over SSE and resolves once its first words have streamed (the turn runs). */
  async function storyRunning(user: TestUser) {
    let running!: (sessionId: string) => void;
    const started = new Promise<string>((resolve) => (running = resolve));
    let chunks = 0;
    const sse = readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Tell me a story', tools: 'none' },
      onMessage: (m) => {
        if (m.event === 'text_chunk' && ++chunks === 2) running(m.data.sessionId);
      },
      until: ended,
    });
    return { sessionId: await started, sse };
  }

  test('enqueue (the default): the second message runs after the running turn and reads its answer', async () => {
    const user = await registerUser(t.api, 'Patient');
    const { sessionId, sse } = await storyRunning(user);

    const second = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { sessionId, message: 'What did you say?', tools: 'none' },
    });
    expect(second.status).toBe(200);
    expect(second.body.response).toBe('I told you a story.');

    const first = (await sse).messages.at(-1)!;
    expect(first.event).toBe('final');
    expect(first.data.response).toBe(LONG_ANSWER);

    const messages = await history(user, sessionId);
    const [q1, q2] = messages.filter((m) => m.role === 'user');
    expect(messages.find((m) => m.replyTo === q1.id)).toEqual(expect.objectContaining({ content: LONG_ANSWER, status: 'completed' }));
    expect(messages.find((m) => m.replyTo === q2.id)).toEqual(expect.objectContaining({ content: 'I told you a story.' }));
  });

  test('enqueue: two messages sent at once to one session answer one after the other, in order', async () => {
    const user = await registerUser(t.api, 'Hasty');
    const opened = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Hello', tools: 'none' } });
    const sessionId = opened.body.sessionId as string;
    const [story, question] = await Promise.all([
      request('POST', `${t.api}/chat`, { token: user.accessToken, body: { sessionId, message: 'Tell me a story', tools: 'none' } }),
      new Promise((resolve) => setImmediate(resolve)).then(() =>
        request('POST', `${t.api}/chat`, { token: user.accessToken, body: { sessionId, message: 'What did you say?', tools: 'none' } }),
      ),
    ]);
    expect(story.body.response).toBe(LONG_ANSWER);
    // Whichever of the two was stored second ran second: it reads the first's answer, never an empty conversation.
    const messages = await history(user, sessionId);
    const users = messages.filter((m) => m.role === 'user').map((m) => m.content);
    if (users.indexOf('Tell me a story') < users.indexOf('What did you say?')) expect(question.body.response).toBe('I told you a story.');
    else expect(question.body.response).toBe('I have said nothing yet.');
  });

  test('reject on SSE: 409 turn_in_progress in the error shape, nothing written; the running turn goes on', async () => {
    const user = await registerUser(t.api, 'Refused');
    const { sessionId, sse } = await storyRunning(user);
    const before = await countRows(sessionId);

    const refused = await request('POST', `${t.api}/chat/stream`, {
      token: user.accessToken,
      body: { sessionId, message: 'Interrupting you', tools: 'none', multitask: 'reject' },
    });
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({ error: expect.objectContaining({ code: 'turn_in_progress', message: expect.any(String) }) });
    expect(await countRows(sessionId)).toBe(before);

    expect((await sse).messages.at(-1)!.event).toBe('final');
    // Once the lane is free the same request runs.
    const later = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { sessionId, message: 'What did you say?', tools: 'none', multitask: 'reject' },
    });
    expect(later.body.response).toBe('I told you a story.');
  });

  test('reject: four messages sent at once to an idle session run one; the others are 409 with nothing written', async () => {
    const user = await registerUser(t.api, 'Doubled');
    const opened = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Hello', tools: 'none' } });
    const sessionId = opened.body.sessionId as string;
    const before = await countRows(sessionId);
    const sent = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        request('POST', `${t.api}/chat`, {
          token: user.accessToken,
          body: { sessionId, message: `Send ${n}`, tools: 'none', multitask: 'reject' },
        }),
      ),
    );
    expect(sent.map((reply) => reply.status).sort()).toEqual([200, 409, 409, 409]);
    for (const refused of sent.filter((reply) => reply.status === 409)) expect(refused.body.error.code).toBe('turn_in_progress');
    // One question, its run and its answer.
    expect(await countRows(sessionId)).toBe(before + 3);
  });

  test('reject kept on the session: a request without multitask follows it; only the owner sets it; a bad value is 400', async () => {
    const user = await registerUser(t.api, 'Strict');
    const other = await registerUser(t.api, 'Other');
    const { sessionId, sse } = await storyRunning(user);

    const bad = await request('PUT', `${t.api}/chat/sessions/${sessionId}/multitask`, {
      token: user.accessToken,
      body: { multitask: 'sometimes' },
    });
    expect(bad.status).toBe(400);
    const foreign = await request('PUT', `${t.api}/chat/sessions/${sessionId}/multitask`, {
      token: other.accessToken,
      body: { multitask: 'enqueue' },
    });
    expect(foreign.status).toBe(404);
    const set = await request('PUT', `${t.api}/chat/sessions/${sessionId}/multitask`, {
      token: user.accessToken,
      body: { multitask: 'reject' },
    });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ sessionId, multitask: 'reject' });
    const session = await request('GET', `${t.api}/chat/sessions/${sessionId}`, { token: user.accessToken });
    expect(session.body.session.multitask).toBe('reject');

    const refused = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { sessionId, message: 'And now?', tools: 'none' },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('turn_in_progress');
    // The request's own strategy wins over the session's.
    const queued = request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { sessionId, message: 'What did you say?', tools: 'none', multitask: 'enqueue' },
    });
    expect((await sse).messages.at(-1)!.event).toBe('final');
    expect((await queued).body.response).toBe('I told you a story.');
  });

  test('interrupt: the running turn stops and keeps what it said; the new message runs after it and reads it', async () => {
    const user = await registerUser(t.api, 'Impatient');
    const { sessionId, sse } = await storyRunning(user);

    const second = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { sessionId, message: 'Enough, thanks', tools: 'none', multitask: 'interrupt' },
    });
    expect(second.status).toBe(200);
    expect(second.body.response).toBe('All done.');

    const last = (await sse).messages.at(-1)!;
    expect(last.event).toBe('cancelled');
    const partial = last.data.response as string;
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(LONG_ANSWER.length);

    const messages = await history(user, sessionId);
    const [q1, q2] = messages.filter((m) => m.role === 'user');
    expect(messages.find((m) => m.replyTo === q1.id)).toEqual(expect.objectContaining({ content: partial, status: 'cancelled' }));
    expect(messages.find((m) => m.replyTo === q2.id)).toEqual(expect.objectContaining({ content: 'All done.' }));
    // The new turn's model call was given the interrupted words.
    const call = t.llm.requests.filter((r) => r.kind === 'chat').find((r) => JSON.stringify(r.body).includes('Enough, thanks'));
    expect(JSON.stringify(call!.body)).toContain(JSON.stringify(partial).slice(1, -1));
  });

  test('rollback: the running turn stops and its messages are removed; the new turn never sees them', async () => {
    const user = await registerUser(t.api, 'Rollback');
    const { sessionId, sse } = await storyRunning(user);

    const second = await request('POST', `${t.api}/chat/stream`, {
      token: user.accessToken,
      body: { sessionId, message: 'What did you say? (rolled back)', tools: 'none', multitask: 'rollback' },
    });
    expect(second.status).toBe(200);
    expect(JSON.stringify(second.body)).toContain('I have said nothing yet.');
    expect((await sse).messages.at(-1)!.event).toBe('cancelled');

    const messages = await history(user, sessionId);
    expect(messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'What did you say? (rolled back)'],
      ['assistant', 'I have said nothing yet.'],
    ]);
    const call = t.llm.requests.filter((r) => r.kind === 'chat').find((r) => JSON.stringify(r.body).includes('(rolled back)'));
    expect(JSON.stringify(call!.body)).not.toContain('Tell me a story');
  });

  test("a device's chat_request (Socket.IO /device) with reject is refused in its ack while a turn runs", async () => {
    const user = await registerUser(t.api, 'Desktop');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      reconnection: false,
    });
    open.push(device);
    const { sessionId, sse } = await storyRunning(user);
    const ack = await device.socket
      .timeout(5_000)
      .emitWithAck('chat_request', { message: 'Me too', sessionId, multitask: 'reject' } as never);
    expect(ack).toEqual({ error: expect.objectContaining({ code: 'turn_in_progress' }) });
    expect((await sse).messages.at(-1)!.event).toBe('final');
    // enqueue from the device: acked at once, answered after the story.
    const queued = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'What did you say?', sessionId })) as {
      messageId: string;
    };
    const answered = await eventually(
      () => history(user, sessionId),
      (messages) => messages.some((m) => m.replyTo === queued.messageId),
    );
    expect(answered.find((m) => m.replyTo === queued.messageId)!.content).toBe('I told you a story.');
  });

  test('the IDE socket: a chat with multitask reject is an error frame; one with enqueue is answered after the running turn', async () => {
    const user = await registerUser(t.api, 'Ide');
    const ide = await WsDevice.connect(t.url, user.accessToken, 10_000, '/api/v1/ws');
    open.push(ide);
    const { sessionId, sse } = await storyRunning(user);

    ide.send({ type: 'chat', session_id: sessionId, data: { message: 'Me too', multitask: 'reject' } });
    const refused = await ide.next('error');
    expect(refused).toEqual(
      expect.objectContaining({ session_id: sessionId, data: expect.objectContaining({ code: 'turn_in_progress' }) }),
    );

    ide.send({ type: 'chat', session_id: sessionId, data: { message: 'What did you say?' } });
    const done: Frame = await ide.next('done', () => true, { timeoutMs: 20_000 });
    expect(done.data.response).toBe('I told you a story.');
    expect((await sse).messages.at(-1)!.event).toBe('final');
  });
});
