import { randomUUID } from 'node:crypto';
import { Chat } from '@ai-sdk/react';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { sql } from 'drizzle-orm';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { rowsOf } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { waitUntil } from '../support/wait';
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

/**
 * One session, one lane on the surfaces that speak their own protocol: the AI SDK's UI message
 * stream (`useChat`'s `DefaultChatTransport`, `multitask` in its body) and the desktop apps' plain
 * WebSocket (`chat_request {multitask}`). A refusal is each protocol's own error, nothing written;
 * an interrupted turn keeps its words; a queued one runs after the turn before and reads its answer.
 */
describe('one session, one lane: the AI SDK edge and the WebSocket device protocol', () => {
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

  const transport = (user: TestUser, body: Record<string, unknown> = {}) =>
    new DefaultChatTransport({
      api: `${t.api}/chat/stream`,
      headers: { authorization: `Bearer ${user.accessToken}`, 'x-vercel-ai-ui-message-stream': 'v1' },
      body,
    });
  const textOf = (message: UIMessage | undefined) =>
    (message?.parts ?? [])
      .filter((part) => part.type === 'text')
      .map((part) => (part as { text: string }).text)
      .join('');

  /** A `useChat` client (chat id `id`) asking for the story; resolves once its first words have arrived (the turn runs). */
  async function storyRunning(user: TestUser, id: string) {
    const errors: Error[] = [];
    const chat = new Chat({ id, transport: transport(user), onError: (error) => errors.push(error) });
    const sent = chat.sendMessage({ text: 'Tell me a story' });
    await waitUntil(() => textOf(chat.messages.at(-1)).includes('word1 '), 20_000);
    const sessionId = await waitForSession(user);
    return { chat, sent, errors, sessionId };
  }
  /** The user's one session (the story's). */
  const waitForSession = async (user: TestUser) => {
    const sessions = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
    return (sessions.body.sessions as Array<{ id: string }>)[0].id;
  };

  describe('the AI SDK edge (multitask in the transport body)', () => {
    test('reject: 409 turn_in_progress in the error shape, nothing written; useChat reports it; the story goes on', async () => {
      const user = await registerUser(t.api, 'UiRefused');
      const id = `chat-${randomUUID()}`;
      const story = await storyRunning(user, id);
      const before = await countRows(story.sessionId);

      const refused = await request('POST', `${t.api}/chat/stream`, {
        token: user.accessToken,
        headers: { 'x-vercel-ai-ui-message-stream': 'v1' },
        body: { id, messages: [{ role: 'user', parts: [{ type: 'text', text: 'Interrupting you' }] }], multitask: 'reject' },
      });
      expect(refused.status).toBe(409);
      expect(refused.body).toEqual({ error: expect.objectContaining({ code: 'turn_in_progress', message: expect.any(String) }) });

      // A second tab's useChat on the same chat id: the refusal reaches its onError, nothing streams.
      const errors: Error[] = [];
      const second = new Chat({ id, transport: transport(user, { multitask: 'reject' }), onError: (error) => errors.push(error) });
      await second.sendMessage({ text: 'Me too' });
      expect(second.status).toBe('error');
      expect(errors.map((error) => error.message).join()).toContain('turn_in_progress');
      expect(await countRows(story.sessionId)).toBe(before);

      await story.sent;
      expect(story.errors).toEqual([]);
      expect(textOf(story.chat.messages.at(-1))).toBe(LONG_ANSWER);
      const messages = await history(user, story.sessionId);
      expect(messages.map((m) => [m.role, m.content])).toEqual([
        ['user', 'Tell me a story'],
        ['assistant', LONG_ANSWER],
      ]);
    });

    test('interrupt: the running turn stops keeping its partial answer; the new message runs after it and reads it', async () => {
      const user = await registerUser(t.api, 'UiImpatient');
      const id = `chat-${randomUUID()}`;
      const story = await storyRunning(user, id);

      const errors: Error[] = [];
      const second = new Chat({ id, transport: transport(user, { multitask: 'interrupt' }), onError: (error) => errors.push(error) });
      await second.sendMessage({ text: 'Enough, thanks' });
      expect(errors).toEqual([]);
      expect(textOf(second.messages.at(-1))).toBe('All done.');

      await story.sent;
      const streamed = textOf(story.chat.messages.at(-1));
      expect(streamed.length).toBeGreaterThan(0);
      expect(streamed.length).toBeLessThan(LONG_ANSWER.length);

      const messages = await history(user, story.sessionId);
      const [q1, q2] = messages.filter((m) => m.role === 'user');
      const kept = messages.find((m) => m.replyTo === q1.id)!;
      expect(kept).toEqual(expect.objectContaining({ status: 'cancelled' }));
      expect(kept.content.length).toBeGreaterThan(0);
      expect(LONG_ANSWER.startsWith(kept.content)).toBe(true);
      // What the first client saw is what the turn kept.
      expect(kept.content).toBe(streamed);
      expect(messages.find((m) => m.replyTo === q2.id)).toEqual(expect.objectContaining({ content: 'All done.' }));
      // The new turn's model call was given the interrupted words.
      const call = t.llm.requests.filter((r) => r.kind === 'chat').find((r) => JSON.stringify(r.body).includes('Enough, thanks'));
      expect(JSON.stringify(call!.body)).toContain(kept.content);
    });

    test('enqueue (the default): a second tab waits on its open stream and its answer reads the story', async () => {
      const user = await registerUser(t.api, 'UiPatient');
      const id = `chat-${randomUUID()}`;
      const story = await storyRunning(user, id);

      const errors: Error[] = [];
      const second = new Chat({ id, transport: transport(user), onError: (error) => errors.push(error) });
      await second.sendMessage({ text: 'What did you say?' });
      expect(errors).toEqual([]);
      expect(textOf(second.messages.at(-1))).toBe('I told you a story.');
      await story.sent;
      expect(textOf(story.chat.messages.at(-1))).toBe(LONG_ANSWER);
    });

    test('a bad multitask in the transport body is a 400 that writes nothing', async () => {
      const user = await registerUser(t.api, 'UiBad');
      const id = `chat-${randomUUID()}`;
      const res = await request('POST', `${t.api}/chat/stream`, {
        token: user.accessToken,
        headers: { 'x-vercel-ai-ui-message-stream': 'v1' },
        body: { id, messages: [{ role: 'user', parts: [{ type: 'text', text: 'Hello' }] }], multitask: 'sometimes' },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      const sessions = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
      expect(sessions.body.sessions).toEqual([]);
    });
  });

  describe('the plain WebSocket device protocol (chat_request {multitask})', () => {
    /** A desktop app on `/api/v1/ws/device` asking for the story; resolves once its first words have arrived. */
    async function wsStoryRunning(user: TestUser) {
      const device = await WsDevice.hello(t.url, user.accessToken, `desk-${randomUUID().slice(0, 8)}`);
      open.push(device);
      device.send({ type: 'chat_request', message: 'Tell me a story' });
      await device.next('text_chunk', () => device.all('text_chunk').length >= 2, { timeoutMs: 20_000 });
      const sessionId = device.all('text_chunk')[0].session_id as string;
      return { device, sessionId };
    }

    test('reject while a turn runs: the error frame turn_in_progress, nothing written; the story goes on', async () => {
      const user = await registerUser(t.api, 'WsRefused');
      const { device, sessionId } = await wsStoryRunning(user);
      const before = await countRows(sessionId);

      device.send({ type: 'chat_request', session_id: sessionId, message: 'Interrupting you', multitask: 'reject' });
      const refused = await device.next('error');
      expect(refused).toEqual(expect.objectContaining({ code: 'turn_in_progress', message: expect.any(String) }));
      expect(await countRows(sessionId)).toBe(before);

      const final: Frame = await device.next('final', () => true, { timeoutMs: 20_000 });
      expect(final).toEqual(expect.objectContaining({ session_id: sessionId, response: LONG_ANSWER }));
      expect(device.all('cancelled')).toEqual([]);
      expect((await history(user, sessionId)).map((m) => m.content)).toEqual(['Tell me a story', LONG_ANSWER]);
    });

    test('interrupt: the running turn ends with cancelled keeping its words; the new one answers after it', async () => {
      const user = await registerUser(t.api, 'WsImpatient');
      const { device, sessionId } = await wsStoryRunning(user);

      device.send({ type: 'chat_request', session_id: sessionId, message: 'Enough, thanks', multitask: 'interrupt' });
      const final: Frame = await device.next('final', () => true, { timeoutMs: 20_000 });
      expect(final).toEqual(expect.objectContaining({ session_id: sessionId, response: 'All done.' }));
      const cancelledAt = device.frames.findIndex((f) => f.type === 'cancelled');
      expect(cancelledAt).toBeGreaterThan(-1);
      expect(cancelledAt).toBeLessThan(device.frames.indexOf(final));

      const messages = await history(user, sessionId);
      const [q1] = messages.filter((m) => m.role === 'user');
      const kept = messages.find((m) => m.replyTo === q1.id)!;
      expect(kept.status).toBe('cancelled');
      expect(kept.content.length).toBeGreaterThan(0);
      expect(kept.content.length).toBeLessThan(LONG_ANSWER.length);
      const streamed = device.frames.slice(0, cancelledAt).flatMap((f) => (f.type === 'text_chunk' ? [f.text as string] : []));
      expect(streamed.join('')).toBe(kept.content);
    });

    test('a busy session is not a bad frame: a dozen refused chat_requests keep the connection, and the turn running on it', async () => {
      const user = await registerUser(t.api, 'WsInsistent');
      const { device, sessionId } = await wsStoryRunning(user);

      for (let i = 0; i < 12; i++) device.send({ type: 'chat_request', session_id: sessionId, message: `Again ${i}`, multitask: 'reject' });
      await device.next('error', () => device.all('error').length >= 12, { timeoutMs: 20_000 });
      expect(device.all('error').map((f) => f.code)).toEqual(Array(12).fill('turn_in_progress'));
      expect(device.open).toBe(true);

      const final: Frame = await device.next('final', () => true, { timeoutMs: 20_000 });
      expect(final.response).toBe(LONG_ANSWER);
      // Still served: a bad frame after the refusals is the first of its run, not the eleventh.
      device.send({ type: 'rm_rf' });
      await device.next('error', (f) => f.code === 'unknown_type');
      expect(device.open).toBe(true);
    });

    test('the IDE socket likewise: a dozen chats refused with turn_in_progress keep the connection', async () => {
      const user = await registerUser(t.api, 'IdeInsistent');
      const { device, sessionId } = await wsStoryRunning(user);
      const ide = await WsDevice.connect(t.url, user.accessToken, 10_000, '/api/v1/ws');
      open.push(ide);

      for (let i = 0; i < 12; i++) ide.send({ type: 'chat', session_id: sessionId, data: { message: `Again ${i}`, multitask: 'reject' } });
      await ide.next('error', () => ide.all('error').length >= 12, { timeoutMs: 20_000 });
      expect(ide.all('error').map((f) => f.data.code)).toEqual(Array(12).fill('turn_in_progress'));
      expect(ide.open).toBe(true);
      await device.next('final', () => true, { timeoutMs: 20_000 });
      ide.send({ type: 'chat', session_id: sessionId, data: { message: 'What did you say?' } });
      expect((await ide.next('done', () => true, { timeoutMs: 20_000 })).data.response).toBe('I told you a story.');
    });

    test('enqueue: the second chat_request runs after the story and reads its answer; its frames follow the first', async () => {
      const user = await registerUser(t.api, 'WsPatient');
      const { device, sessionId } = await wsStoryRunning(user);

      device.send({ type: 'chat_request', session_id: sessionId, message: 'What did you say?', multitask: 'enqueue' });
      await device.next('final', () => device.all('final').length >= 2, { timeoutMs: 30_000 });
      expect(device.all('error')).toEqual([]);
      expect(device.all('final').map((f) => [f.session_id, f.response])).toEqual([
        [sessionId, LONG_ANSWER],
        [sessionId, 'I told you a story.'],
      ]);
      // The second turn's words came after the first's final: one turn at a time.
      const firstFinal = device.frames.findIndex((f) => f.type === 'final');
      const secondChunks = device.frames.flatMap((f, i) => (f.type === 'text_chunk' && i > firstFinal ? [f.text as string] : []));
      expect(secondChunks.join('')).toBe('I told you a story.');

      const messages = await history(user, sessionId);
      const [q1, q2] = messages.filter((m) => m.role === 'user');
      expect(messages.find((m) => m.replyTo === q1.id)).toEqual(expect.objectContaining({ content: LONG_ANSWER, status: 'completed' }));
      expect(messages.find((m) => m.replyTo === q2.id)).toEqual(expect.objectContaining({ content: 'I told you a story.' }));
    });
  });
});
