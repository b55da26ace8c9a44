import { count, eq } from 'drizzle-orm';
import { AdminDirectory } from '../../src/auth/admins';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { chatMessages, chatSessions } from '../../src/models/schema';
import type { CanvasServerEvents } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

type ThreadEvent = Parameters<CanvasServerEvents['thread_event']>[0];

/**
 * The scripted model. A message asking for a "todo" gets one `create_todo` call, then a short
 * answer once the tool's result is back; "slow" gets a long answer (to join while it streams);
 * anything else is answered with the last user message as the model read it, so a test sees the
 * sender's name in front of it.
 */
function responder(req: ChatRequest): ChatTurn {
  const last = req.messages.at(-1);
  if (last?.role === 'tool') return { text: 'Added it to the board.' };
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  const asked = lastUser ? messageText(lastUser) : '';
  if (/todo/i.test(asked) && req.tools?.some((tool) => tool.function.name === 'create_todo'))
    return { toolCalls: [{ name: 'create_todo', args: { text: 'Ship the thread', checked: false } }] };
  if (/slow/i.test(asked)) return { text: Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ') };
  return { text: `Heard ${asked}` };
}

/**
 * Room threads: a chat session bound to a canvas. Its members read it and follow its turns as room
 * events (Socket.IO `/canvas` with `seq` and replay, and an SSE feed); editors and owners post, a
 * viewer is refused, a non-member sees nothing; each turn is its sender's, and a removed member
 * stops hearing the thread at once.
 */
describe('room threads', () => {
  let t: TestApp;
  let admin: TestUser;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 5 });
    admin = await registerUser(t.api, 'Operator');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
  }, 120_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  /** A canvas with Ada (owner), Bob (editor), Vic (viewer), and Olga, who is not a member. */
  const room = async () => {
    const [ada, bob, vic, olga] = await Promise.all([
      registerUser(t.api, 'Ada'),
      registerUser(t.api, 'Bob'),
      registerUser(t.api, 'Vic'),
      registerUser(t.api, 'Olga'),
    ]);
    const canvasId = await createCanvas(t.api, ada, 'Planning');
    await addMember(t.api, ada, canvasId, bob, 'editor');
    await addMember(t.api, ada, canvasId, vic, 'viewer');
    return { ada, bob, vic, olga, canvasId };
  };
  const watch = async (user: TestUser, canvasId: string) => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    expect((await join(socket, canvasId)).ok).toBe(true);
    return socket;
  };
  const newThread = async (user: TestUser, canvasId: string, body: Record<string, unknown> = {}) =>
    request('POST', `${t.api}/canvases/${canvasId}/threads`, { token: user.accessToken, body });
  const post = (user: TestUser, canvasId: string, threadId: string, message: string, extra: Record<string, unknown> = {}) =>
    request('POST', `${t.api}/canvases/${canvasId}/threads/${threadId}/messages`, {
      token: user.accessToken,
      body: { message, ...extra },
    });
  const messageCount = async (threadId: string) =>
    (await t.app.repos.db.select({ n: count() }).from(chatMessages).where(eq(chatMessages.sessionId, threadId)))[0].n;
  const turnEvents = (heard: ThreadEvent[], turnId: string) => heard.filter((e) => e.turnId === turnId);
  const ended = (heard: ThreadEvent[], turnId: string) => turnEvents(heard, turnId).some((e) => e.event.type === 'final');

  test('two members post at once: both turns run in order, every member hears each with its author, the model sees who said what', async () => {
    const { ada, bob, vic, olga, canvasId } = await room();
    const [adaSocket, bobSocket, vicSocket] = await Promise.all([watch(ada, canvasId), watch(bob, canvasId), watch(vic, canvasId)]);
    const heard = new Map([adaSocket, bobSocket, vicSocket].map((socket) => [socket, record(socket, 'thread_event')]));
    const created = await newThread(ada, canvasId, { title: 'Launch' });
    expect(created.status).toBe(201);
    const threadId = created.body.thread.id as string;
    expect(created.body.thread).toMatchObject({ canvasId, title: 'Launch', multitask: 'enqueue' });

    const [fromAda, fromBob] = await Promise.all([
      post(ada, canvasId, threadId, 'what about the launch date?'),
      post(bob, canvasId, threadId, 'and the budget?'),
    ]);
    expect([fromAda.status, fromBob.status]).toEqual([202, 202]);
    const turns = [fromAda.body.messageId as string, fromBob.body.messageId as string];
    for (const events of heard.values()) await waitUntil(() => turns.every((turn) => ended(events, turn)), 20_000);

    const vicHeard = heard.get(vicSocket)!;
    // Every member heard the same events, each once, in seq order.
    const seqs = (events: ThreadEvent[]) => events.map((e) => e.seq);
    for (const events of heard.values()) {
      expect(seqs(events)).toEqual(seqs(vicHeard));
      expect(seqs(events)).toEqual([...new Set(seqs(events))].sort((a, b) => a - b));
    }
    // Each turn: its message (with its author), the assistant thinking, its text, `final`, then idle.
    const byAuthor = new Map([
      [turns[0], ada],
      [turns[1], bob],
    ]);
    for (const turn of turns) {
      const events = turnEvents(vicHeard, turn);
      const author = byAuthor.get(turn)!;
      expect(events[0].event).toMatchObject({ type: 'message', messageId: turn, authorId: author.id, authorName: author.name });
      expect(events.map((e) => e.event.type)).toEqual(expect.arrayContaining(['assistant_state', 'text_chunk', 'final']));
      expect(events.at(-1)!.event).toEqual({ type: 'assistant_state', state: 'idle' });
      const final = { response: (events.find((e) => e.event.type === 'final')!.event as Record<string, unknown>).response as string };
      // The model read the message under its sender's name.
      expect(final.response).toMatch(new RegExp(`^Heard \\[${author.name}\\] `));
      const text = events
        .filter((e) => e.event.type === 'text_chunk')
        .map((e) => (e.event as Record<string, unknown>).text as string)
        .join('');
      expect(text).toBe(final.response);
    }
    // One lane: the second turn starts after the first ends, and it read the first's answer.
    const [first, second] = [...turns].sort((a, b) => turnEvents(vicHeard, a)[0].seq - turnEvents(vicHeard, b)[0].seq);
    const firstFinal = turnEvents(vicHeard, first).find((e) => e.event.type === 'final')!.seq;
    const secondThinking = turnEvents(vicHeard, second).find(
      (e) => e.event.type === 'assistant_state' && e.event.state === 'thinking',
    )!.seq;
    expect(secondThinking).toBeGreaterThan(firstFinal);
    const secondRequest = t.llm
      .chatRequests()
      .find((body) => messageText(body.messages.at(-1)!).includes(second === turns[0] ? 'launch date' : 'the budget'))!;
    expect(secondRequest.messages.some((m) => m.role === 'assistant' && messageText(m).startsWith('Heard ['))).toBe(true);

    // Every member reads the thread and its history; each user message names its author. Olga reads nothing.
    const history = await request('GET', `${t.api}/chat/sessions/${threadId}/history`, { token: vic.accessToken });
    expect(history.status).toBe(200);
    const users = history.body.messages.filter((m: { role: string }) => m.role === 'user');
    expect(users.map((m: { authorId: string }) => m.authorId).sort()).toEqual([ada.id, bob.id].sort());
    expect(history.body.messages.filter((m: { role: string }) => m.role === 'assistant')).toHaveLength(2);
    expect((await request('GET', `${t.api}/canvases/${canvasId}/threads/${threadId}`, { token: vic.accessToken })).body).toMatchObject({
      role: 'viewer',
      openTurns: [],
    });
    const listed = await request('GET', `${t.api}/canvases/${canvasId}/threads`, { token: bob.accessToken });
    expect(listed.body.threads.map((thread: { id: string }) => thread.id)).toEqual([threadId]);
    for (const url of [
      `${t.api}/chat/sessions/${threadId}`,
      `${t.api}/chat/sessions/${threadId}/history`,
      `${t.api}/canvases/${canvasId}/threads/${threadId}`,
      `${t.api}/canvases/${canvasId}/threads`,
    ])
      expect((await request('GET', url, { token: olga.accessToken })).status).toBe(404);
    const olgaSocket = await connectCanvas(t.url, olga.accessToken);
    sockets.push(olgaSocket);
    expect((await join(olgaSocket, canvasId)).ok).toBe(false);
  }, 60_000);

  test('a viewer posting is 403 and a non-member 404, nothing written; viewers and outsiders cannot start threads', async () => {
    const { ada, vic, olga, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId)).body.thread.id as string;
    const requests = t.llm.chatRequests().length;

    const byViewer = await post(vic, canvasId, threadId, 'let me in');
    expect(byViewer.status).toBe(403);
    expect(byViewer.body.error.code).toBe('forbidden');
    const byViewerOnChat = await request('POST', `${t.api}/chat`, { token: vic.accessToken, body: { message: 'hi', sessionId: threadId } });
    expect(byViewerOnChat.status).toBe(403);
    const byOutsider = await post(olga, canvasId, threadId, 'hello?');
    expect(byOutsider.status).toBe(404);
    expect((await request('POST', `${t.api}/chat`, { token: olga.accessToken, body: { message: 'hi', sessionId: threadId } })).status).toBe(
      404,
    );
    expect(await messageCount(threadId)).toBe(0);
    expect(t.llm.chatRequests().length).toBe(requests);

    expect((await newThread(vic, canvasId)).status).toBe(403);
    expect((await newThread(olga, canvasId)).status).toBe(404);
    const viaSessions = await request('POST', `${t.api}/chat/sessions`, { token: olga.accessToken, body: { canvasId } });
    expect(viaSessions.status).toBe(404);
    const owned = await t.app.repos.db.select({ n: count() }).from(chatSessions).where(eq(chatSessions.canvasId, canvasId));
    expect(owned[0].n).toBe(1);
    // A thread's turns run on its canvas (and the devices lent to it): a coding agent is refused, not quietly ignored.
    const withAgent = await request('POST', `${t.api}/chat`, {
      token: ada.accessToken,
      body: { message: 'fix it', sessionId: threadId, agent: 'coder' },
    });
    expect(withAgent.status).toBe(400);
    expect(await messageCount(threadId)).toBe(0);
  });

  test("a thread's turn adds blocks to the canvas as its sender; the room hears the tool call and the block", async () => {
    const { ada, bob, vic, canvasId } = await room();
    const vicSocket = await watch(vic, canvasId);
    const heard = record(vicSocket, 'thread_event');
    const blockAdded = waitFor(vicSocket, 'block_added', (p) => p.canvasId === canvasId);
    const threadId = (await newThread(ada, canvasId)).body.thread.id as string;

    const posted = await post(bob, canvasId, threadId, 'add a todo for the launch');
    expect(posted.status).toBe(202);
    const { block } = await blockAdded;
    expect(block).toMatchObject({ type: 'todo', content: { text: 'Ship the thread', checked: false }, createdBy: bob.id });
    await waitUntil(() => ended(heard, posted.body.messageId), 20_000);
    // The answer's text may come in several batches (each one event): one entry for the run of them.
    const types = turnEvents(heard, posted.body.messageId)
      .map((e) => (e.event.type === 'assistant_state' ? `state:${e.event.state as string}` : e.event.type))
      .filter((type, index, all) => type !== 'text_chunk' || all[index - 1] !== 'text_chunk');
    expect(types).toEqual([
      'message',
      'state:thinking',
      'tool_call',
      'state:running_tool',
      'tool_result',
      'state:thinking',
      'text_chunk',
      'final',
      'state:idle',
    ]);
    const running = turnEvents(heard, posted.body.messageId).find(
      (e) => e.event.type === 'assistant_state' && e.event.state === 'running_tool',
    );
    expect(running!.event).toMatchObject({ tool: 'create_todo' });
    const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: vic.accessToken });
    expect(blocks.body.blocks).toHaveLength(1);
  }, 30_000);

  test('a late joiner reads the history and replays the running turn from its start, on the socket and on the SSE feed', async () => {
    const { ada, bob, vic, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId)).body.thread.id as string;
    const adaSocket = await watch(ada, canvasId);
    const adaHeard = record(adaSocket, 'thread_event');
    const posted = await post(ada, canvasId, threadId, 'tell it slow');
    const turnId = posted.body.messageId as string;
    // Some of the answer has streamed before Vic arrives.
    await waitUntil(() => turnEvents(adaHeard, turnId).some((e) => e.event.type === 'text_chunk'), 20_000);

    const thread = await request('GET', `${t.api}/canvases/${canvasId}/threads/${threadId}`, { token: vic.accessToken });
    expect(thread.status).toBe(200);
    const open = thread.body.openTurns as Array<{ turnId: string; roomSeq: number; authorId: string }>;
    expect(open).toEqual([expect.objectContaining({ turnId, authorId: ada.id, roomSeq: expect.any(Number) })]);
    const vicSocket = await watch(vic, canvasId);
    const replay = await vicSocket.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq: open[0].roomSeq - 1 });
    expect(replay.ok && !replay.resync).toBe(true);
    const replayed = (replay as { events: Array<{ event: string; payload: ThreadEvent }> }).events.filter(
      (e) => e.event === 'thread_event',
    );
    expect(replayed[0].payload.event).toMatchObject({ type: 'message', messageId: turnId, authorId: ada.id });

    // The SSE feed of the thread, opened now, starts at the running turn's message as well and follows it to its end.
    const feed = await readSse(`${t.api}/canvases/${canvasId}/threads/${threadId}/events`, {
      token: bob.accessToken,
      until: (m) => m.event === 'thread_event' && m.data.event.type === 'final',
      timeoutMs: 20_000,
    });
    expect(feed.status).toBe(200);
    expect(feed.messages[0]).toMatchObject({ event: 'ready', data: { canvasId, threadId } });
    const events = feed.messages.filter((m) => m.event === 'thread_event').map((m) => m.data as ThreadEvent);
    expect(events[0].event).toMatchObject({ type: 'message', messageId: turnId });
    const text = events
      .filter((e) => e.event.type === 'text_chunk')
      .map((e) => (e.event as Record<string, unknown>).text as string)
      .join('');
    const final = { response: (events.find((e) => e.event.type === 'final')!.event as Record<string, unknown>).response as string };
    expect(text).toBe(final.response);
    expect(final.response).toContain('w39');
    expect(events.map((e) => Number(e.seq))).toEqual(feed.messages.filter((m) => m.event === 'thread_event').map((m) => Number(m.id)));
  }, 40_000);

  test('multitask reject per thread: a second message while a turn runs is 409 turn_in_progress and nothing is written', async () => {
    const { ada, bob, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId, { multitask: 'reject' })).body.thread.id as string;
    const adaSocket = await watch(ada, canvasId);
    const heard = record(adaSocket, 'thread_event');
    const first = await post(ada, canvasId, threadId, 'tell it slow');
    expect(first.status).toBe(202);
    const before = await messageCount(threadId);
    const second = await post(bob, canvasId, threadId, 'me too');
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('turn_in_progress');
    expect(await messageCount(threadId)).toBe(before);
    await waitUntil(() => ended(heard, first.body.messageId), 20_000);
    // Once it ended, Bob's message runs.
    const third = await post(bob, canvasId, threadId, 'me too');
    expect(third.status).toBe(202);
    await waitUntil(() => ended(heard, third.body.messageId), 20_000);
  }, 40_000);

  test('posts at once: the room hears the messages in the order their turns run, all but the first queued; with reject one is taken', async () => {
    const { ada, bob, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId)).body.thread.id as string;
    const adaSocket = await watch(ada, canvasId);
    const heard = record(adaSocket, 'thread_event');
    const posted = await Promise.all([ada, bob, ada, bob, ada, bob].map((user, i) => post(user, canvasId, threadId, `point ${i}`)));
    expect(posted.map((reply) => reply.status)).toEqual(Array(6).fill(202));
    const turns = posted.map((reply) => reply.body.messageId as string);
    await waitUntil(() => turns.every((turn) => ended(heard, turn)), 30_000);
    const at = (turn: string, match: (e: ThreadEvent['event']) => boolean) => turnEvents(heard, turn).find((e) => match(e.event))!.seq;
    const byMessage = [...turns].sort((a, b) => at(a, (e) => e.type === 'message') - at(b, (e) => e.type === 'message'));
    const byStart = [...turns].sort(
      (a, b) =>
        at(a, (e) => e.type === 'assistant_state' && e.state === 'thinking') -
        at(b, (e) => e.type === 'assistant_state' && e.state === 'thinking'),
    );
    expect(byStart).toEqual(byMessage);
    const queued = turns.filter((turn) =>
      turnEvents(heard, turn).some((e) => e.event.type === 'assistant_state' && e.event.state === 'queued'),
    );
    expect(queued.sort()).toEqual(byMessage.slice(1).sort());
    // The history reads in the same order.
    const history = await request('GET', `${t.api}/chat/sessions/${threadId}/history`, { token: ada.accessToken });
    expect(history.body.messages.filter((m: { role: string }) => m.role === 'user').map((m: { id: string }) => m.id)).toEqual(byMessage);

    const strict = (await newThread(ada, canvasId, { multitask: 'reject' })).body.thread.id as string;
    const raced = await Promise.all([ada, bob, ada, bob].map((user, i) => post(user, canvasId, strict, `slow ${i}`)));
    expect(raced.map((reply) => reply.status).sort()).toEqual([202, 409, 409, 409]);
    await waitUntil(() => ended(heard, raced.find((reply) => reply.status === 202)!.body.messageId), 20_000);
    expect(
      (await request('GET', `${t.api}/chat/sessions/${strict}/history`, { token: ada.accessToken })).body.messages.filter(
        (m: { role: string }) => m.role === 'user',
      ),
    ).toHaveLength(1);
  }, 60_000);

  test('who pays: a member over budget gets 429 and the thread goes on for the others; each turn is billed to its sender', async () => {
    const { ada, bob, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId)).body.thread.id as string;
    const limits = await request('PUT', `${t.api}/admin/users/${bob.id}/limits`, {
      token: admin.accessToken,
      body: { limits: { requestsPerMonth: 0 } },
    });
    expect(limits.status).toBe(200);
    const adaSocket = await watch(ada, canvasId);
    const heard = record(adaSocket, 'thread_event');

    const refused = await post(bob, canvasId, threadId, 'on my budget');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('budget_exceeded');
    expect(await messageCount(threadId)).toBe(0);

    const usedBefore = await monthRequests(ada);
    const posted = await post(ada, canvasId, threadId, 'on mine');
    expect(posted.status).toBe(202);
    await waitUntil(() => ended(heard, posted.body.messageId), 20_000);
    expect(
      await eventually(
        () => monthRequests(ada),
        (used) => used === usedBefore + 1,
      ),
    ).toBe(usedBefore + 1);
    expect(await monthRequests(bob)).toBe(0);
  }, 30_000);

  const monthRequests = async (user: TestUser) => {
    const res = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
    return (res.body.windows as Array<{ window: string; usedRequests: number }>).find((w) => w.window === 'month')!.usedRequests;
  };

  test('a flood from one member is cut per member of the thread (429), and the others still post', async () => {
    const { ada, bob, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId, { multitask: 'enqueue' })).body.thread.id as string;
    const limit = t.app.config.roomThreads.memberMessagesPerMinute;
    const statuses: number[] = [];
    for (let i = 0; i <= limit; i += 1) statuses.push((await post(bob, canvasId, threadId, `flood ${i}`)).status);
    expect(statuses.slice(0, limit).every((status) => status === 202)).toBe(true);
    expect(statuses[limit]).toBe(429);
    expect(await messageCount(threadId)).toBeGreaterThanOrEqual(limit);
    const users = await t.app.repos.db.select({ n: count() }).from(chatMessages).where(eq(chatMessages.authorId, bob.id));
    expect(users[0].n).toBe(limit);
    expect((await post(ada, canvasId, threadId, 'still here')).status).toBe(202);
  }, 60_000);

  test('a new thread is heard by the whole room, viewers too, with its title and creator; the canvas of another room hears nothing', async () => {
    const { ada, bob, vic, canvasId } = await room();
    const other = await createCanvas(t.api, bob, 'Elsewhere');
    const [vicSocket, bobSocket] = await Promise.all([watch(vic, canvasId), watch(bob, other)]);
    const vicHeard = record(vicSocket, 'thread_event');
    const bobHeard = record(bobSocket, 'thread_event');
    const created = await newThread(ada, canvasId, { title: 'Roadmap', multitask: 'reject' });
    const threadId = created.body.thread.id as string;
    await waitUntil(() => vicHeard.some((e) => e.threadId === threadId), 5_000);
    expect(vicHeard).toEqual([
      expect.objectContaining({
        canvasId,
        threadId,
        turnId: threadId,
        event: { type: 'thread_created', title: 'Roadmap', createdBy: ada.id, multitask: 'reject', createdAt: expect.any(String) },
      }),
    ]);
    // A thread started as a chat session bound to the canvas is heard the same way.
    const session = await request('POST', `${t.api}/chat/sessions`, { token: bob.accessToken, body: { canvasId, title: 'Side' } });
    expect(session.status).toBe(201);
    await waitUntil(() => vicHeard.some((e) => e.threadId === session.body.session.id), 5_000);
    expect(bobHeard).toEqual([]);
  }, 30_000);

  test('typing reaches the others in the room; a member removed from the canvas stops hearing the thread at once', async () => {
    const { ada, bob, vic, canvasId } = await room();
    const threadId = (await newThread(ada, canvasId)).body.thread.id as string;
    const [adaSocket, bobSocket, vicSocket] = await Promise.all([watch(ada, canvasId), watch(bob, canvasId), watch(vic, canvasId)]);
    const typing = waitFor(adaSocket, 'thread_typing', (p) => p.threadId === threadId);
    bobSocket.emit('thread:typing', { canvasId, threadId });
    expect(await typing).toMatchObject({ canvasId, threadId, userId: bob.id, name: bob.name });

    const bobHeard = record(bobSocket, 'thread_event');
    const vicHeard = record(vicSocket, 'thread_event');
    // Bob is removed once his feed is open (its `ready`): removed before, he would be refused at the door.
    let removed: Promise<number> | undefined;
    const feed = readSse(`${t.api}/canvases/${canvasId}/threads/${threadId}/events`, {
      token: bob.accessToken,
      onMessage: (m) => {
        if (m.event === 'ready')
          removed ??= request('DELETE', `${t.api}/canvases/${canvasId}/members/${bob.id}`, { token: ada.accessToken }).then(
            (r) => r.status,
          );
      },
      until: (m) => m.event === 'closed',
      timeoutMs: 20_000,
    });
    await waitUntil(() => removed !== undefined, 10_000);
    expect(await removed).toBe(204);
    const posted = await post(ada, canvasId, threadId, 'after Bob left');
    await waitUntil(() => ended(vicHeard, posted.body.messageId), 20_000);
    // One round trip on Bob's own connection: anything sent to it before is in by now.
    await bobSocket.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq: 0 });
    expect(bobHeard).toEqual([]);
    const closed = await feed;
    expect(closed.messages.at(-1)).toMatchObject({ event: 'closed', data: { reason: 'not_a_member' } });
    expect(closed.messages.filter((m) => m.event === 'thread_event')).toEqual([]);
    expect((await request('GET', `${t.api}/chat/sessions/${threadId}/history`, { token: bob.accessToken })).status).toBe(404);
  }, 40_000);
});
