import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import { createParser } from 'eventsource-parser';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { NOTE_SECTIONS, hasNoteSections } from '../../src/assistant/ticket-notes';
import { NOTES_MAX_TOKENS, NOTES_SYSTEM_PROMPT } from '../../src/assistant/session-notes-runner';
import { DeviceSimulator } from '@switchboard/client/testing';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/** The notes job's model request (the chat turns' requests have another system prompt). */
const isNotesRequest = (req: ChatRequest) =>
  req.messages.some((m) => m.role === 'system' && String(m.content).includes('internal ticket notes'));

/** A promise the test releases by hand: holds the model mid-request. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** A notes message's text: a chunk's JSON decoded to its markdown; `[DONE]` and `[ERROR] …` as sent. */
const notesText = (data: string): string => (data.startsWith('{') ? (JSON.parse(data) as { type: 'chunk'; text: string }).text : data);

/** Reads an SSE response to its end, keeping each message's text (chunks decoded from their JSON). */
async function readDataStream(
  url: string,
  token: string,
  onOpen?: () => void,
  timeoutMs = 15_000,
): Promise<{ status: number; headers: Headers; data: string[]; body?: any }> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  onOpen?.();
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await response.text();
    return { status: response.status, headers: response.headers, data: [], body: text ? JSON.parse(text) : undefined };
  }
  const data: string[] = [];
  const parser = createParser({ onEvent: (event) => data.push(notesText(event.data)) });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
  return { status: response.status, headers: response.headers, data };
}

describe('session ticket notes', () => {
  let t: TestApp;
  let redis: RedisClient;
  let queue: Queue;
  const devices: DeviceSimulator[] = [];
  /** How the model answers the notes request; chat turns always get a fixed reply. */
  let notesTurn: (req: ChatRequest) => ChatTurn | Promise<ChatTurn> = demoResponder;

  beforeAll(async () => {
    t = await startTestApp({
      responder: (req) => (isNotesRequest(req) ? notesTurn(req) : { text: 'Restart the router, then check that the cable is plugged in.' }),
    });
    redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    queue = new Queue('assistant', { connection: redis, prefix: bullPrefix(t.keyPrefix) });
  });

  afterEach(() => {
    notesTurn = demoResponder;
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queue.close();
    redis.disconnect();
    await t.stop();
  });

  /** A user with a connected device and a session of two chat turns. */
  async function userWithSession(): Promise<{ user: TestUser; sessionId: string }> {
    const user = await registerUser(t.api, 'Notes');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: {},
      reconnection: false,
    });
    devices.push(device);
    const first = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'My wifi keeps dropping every few minutes.', deviceId: device.deviceId },
    });
    expect(first.status).toBe(200);
    const second = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'I restarted the router and it works now.', sessionId: first.body.sessionId },
    });
    expect(second.status).toBe(200);
    return { user, sessionId: first.body.sessionId };
  }

  const resolve = (user: TestUser, sessionId: string, body: unknown = {}) =>
    request('POST', `${t.api}/chat/sessions/${sessionId}/resolve`, { token: user.accessToken, body });
  const documentation = (user: TestUser, sessionId: string) =>
    request('GET', `${t.api}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken });
  const stream = (user: TestUser, sessionId: string, onOpen?: () => void) =>
    readDataStream(`${t.api}/chat/sessions/${sessionId}/documentation/stream`, user.accessToken, onOpen);
  const notesJobs = async (sessionId: string) =>
    (await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed'])).filter(
      (job) => job.name === 'ticket-notes' && job.data.sessionId === sessionId,
    );
  /** The user's recorded model calls for notes (the session's embedding, which follows, is another purpose). */
  const notesCalls = async (user: TestUser) => {
    const result: unknown = await t.app.repos.db.execute(
      sql`select count(*)::int as calls from llm_usage where user_id = ${user.id} and purpose = 'notes'`,
    );
    // node-postgres answers {rows}, PGlite the rows themselves.
    const rows = (result as { rows?: Array<{ calls: number }> }).rows ?? (result as Array<{ calls: number }>);
    return Number(rows[0].calls);
  };

  test('given a held model, resolve answers before the notes exist; the stream then yields the four sections and [DONE], and the stored copy equals it', async () => {
    const { user, sessionId } = await userWithSession();
    const held = gate();
    notesTurn = async (req) => {
      await held.opened;
      return demoResponder(req);
    };
    const callsBefore = await notesCalls(user);

    const res = await resolve(user, sessionId, { resolutionSummary: 'Fixed by restarting the router.' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sessionId,
      status: 'resolved',
      documentation: null,
      psaPushStatus: 'no_psa',
      psaPushError: null,
      memberMappingWarning: null,
    });
    const early = await documentation(user, sessionId);
    expect(early.status).toBe(200);
    expect(early.body).toMatchObject({ sessionId, status: 'resolved', documentation: null });
    expect(['pending', 'generating']).toContain(early.body.documentationStatus);

    // The model is released once the stream is open, so the stream follows the notes live.
    const { status, data } = await stream(user, sessionId, held.open);

    expect(status).toBe(200);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1);
    expect(chunks.length).toBeGreaterThan(4);
    // Chunks that carried newlines arrived as JSON and were decoded back exactly.
    expect(chunks.some((chunk) => chunk.includes('\n'))).toBe(true);
    const text = chunks.join('');
    expect(hasNoteSections(text)).toBe(true);
    const positions = NOTE_SECTIONS.map((section) => text.indexOf(`## ${section}`));
    expect(positions[0]).toBe(0);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(text).toContain('wifi keeps dropping');

    const stored = await documentation(user, sessionId);
    expect(stored.body).toMatchObject({ sessionId, status: 'resolved', documentationStatus: 'ready', documentation: text });
    // Once stored, the stream replays the stored text, then [DONE].
    const replay = await stream(user, sessionId);
    expect(replay.data).toEqual([text, '[DONE]']);
    // The notes' model call is recorded as usage.
    expect(await notesCalls(user)).toBe(callsBefore + 1);
  });

  test('a double resolve queues one notes job and calls the model once', async () => {
    const { user, sessionId } = await userWithSession();
    const before = t.llm.chatRequests().filter(isNotesRequest).length;

    const [a, b] = await Promise.all([resolve(user, sessionId), resolve(user, sessionId)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const { data } = await stream(user, sessionId);
    expect(data.at(-1)).toBe('[DONE]');
    expect((await resolve(user, sessionId)).status).toBe(200);

    expect(await notesJobs(sessionId)).toHaveLength(1);
    expect(t.llm.chatRequests().filter(isNotesRequest).length - before).toBe(1);
  });

  test('when the model ignores the sections, the notes are completed from the template and stored as streamed', async () => {
    const { user, sessionId } = await userWithSession();
    notesTurn = () => ({ text: 'Sure! The customer had wifi trouble and it is fine now.' });

    await resolve(user, sessionId, { resolutionSummary: 'Router restarted.' });
    const { data } = await stream(user, sessionId);

    expect(data.at(-1)).toBe('[DONE]');
    const text = data.slice(0, -1).join('');
    expect(hasNoteSections(text)).toBe(true);
    expect(text).toContain('Router restarted.');
    expect((await documentation(user, sessionId)).body.documentation).toBe(text);
  });

  test('a model failure falls back to notes built from the session without a model, streamed and stored', async () => {
    const { user, sessionId } = await userWithSession();
    notesTurn = () => ({ error: { status: 400, message: 'model refused' } });

    expect((await resolve(user, sessionId, { resolutionSummary: 'Router firmware updated.' })).status).toBe(200);
    const { data } = await stream(user, sessionId);

    expect(data.at(-1)).toBe('[DONE]');
    const text = data.slice(0, -1).join('');
    expect(hasNoteSections(text)).toBe(true);
    // Built from the session's own fields: its first message as the problem, the summary as the resolution.
    expect(text).toContain('My wifi keeps dropping every few minutes.');
    expect(text).toContain('Router firmware updated.');
    expect((await documentation(user, sessionId)).body).toMatchObject({ documentationStatus: 'ready', documentation: text });
  });

  test("the notes prompt: the console's system prompt, the session's facts, the last 20 messages cut at 500 characters, 1,500 tokens", async () => {
    const user = await registerUser(t.api, 'Prompt');
    const long = 'x'.repeat(700);
    let sessionId: string | undefined;
    for (let i = 0; i < 12; i++) {
      const res = await request('POST', `${t.api}/chat`, {
        token: user.accessToken,
        body: {
          message: `turn ${i} ${long}`,
          tools: 'none',
          ...(sessionId ? { sessionId } : { context: { problem_domain: 'networking' } }),
        },
      });
      expect(res.status).toBe(200);
      sessionId = res.body.sessionId as string;
    }
    const before = t.llm.chatRequests().filter(isNotesRequest).length;
    await resolve(user, sessionId!, { resolutionSummary: 'Replaced the switch.' });
    expect((await stream(user, sessionId!)).data.at(-1)).toBe('[DONE]');

    const [req] = t.llm.chatRequests().filter(isNotesRequest).slice(before);
    expect(req.max_tokens ?? req.max_completion_tokens).toBe(NOTES_MAX_TOKENS);
    expect(req.messages[0]).toEqual({ role: 'system', content: NOTES_SYSTEM_PROMPT });
    const prompt = String(req.messages[1].content);
    expect(prompt).toMatch(
      /^Session status: resolved\nTime spent: \d+ minutes\nProblem summary: Not specified\nProblem domain: networking\nResolution notes: Replaced the switch\.\n/,
    );
    const lines = prompt.split('\n').filter((line) => /^(Engineer|AI Assistant): /.test(line));
    // 24 messages: the last 20, oldest first, each cut at 500 characters.
    expect(lines).toHaveLength(20);
    expect(lines[0]).toMatch(/^Engineer: turn 2 x+$/);
    expect(lines[1]).toBe('AI Assistant: Restart the router, then check that the cable is plugged in.');
    for (const line of lines) expect(line.replace(/^(Engineer|AI Assistant): /, '').length).toBeLessThanOrEqual(500);
    expect(prompt).not.toContain('turn 1 ');
  });

  test('a stream opened after the notes were written without a model hears the same notes and the same end', async () => {
    const { user, sessionId } = await userWithSession();
    notesTurn = () => ({ error: { status: 400, message: 'model refused' } });

    // Given: notes the model could not write, built from the session before anyone opened their stream
    await resolve(user, sessionId);
    await eventually(
      async () => (await documentation(user, sessionId)).body.documentationStatus,
      (status) => status === 'ready',
    );

    // When: the stream opens afterwards (twice: a reader that comes back hears the same)
    const first = await stream(user, sessionId);
    const again = await stream(user, sessionId);

    // Then: the stored notes, ending [DONE], the same both times
    expect(first.data.at(-1)).toBe('[DONE]');
    expect(first.data.slice(0, -1).join('')).toBe((await documentation(user, sessionId)).body.documentation);
    expect(again.data).toEqual(first.data);
  });

  test('escalate answers at once and hands the session on with its notes, the reason in their prompt; pause sets the status', async () => {
    const { user, sessionId } = await userWithSession();
    const history = async () =>
      (await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken })).body.session.status;
    const prompts: string[] = [];
    notesTurn = (req) => {
      prompts.push(req.messages.map((m) => String(m.content)).join('\n'));
      return demoResponder(req);
    };

    const escalated = await request('POST', `${t.api}/chat/sessions/${sessionId}/escalate`, {
      token: user.accessToken,
      body: { reason: 'Needs the network team' },
    });
    expect(escalated.body).toEqual({
      sessionId,
      status: 'escalated',
      documentation: null,
      psaPushStatus: 'no_psa',
      psaPushError: null,
      memberMappingWarning: null,
    });
    expect(await history()).toBe('escalated');
    const notes = await eventually(
      () => documentation(user, sessionId),
      (read) => read.body.documentationStatus === 'ready',
    );
    expect(notes.body).toMatchObject({ status: 'escalated', documentation: expect.stringContaining('## Next Steps') });
    expect(
      prompts.some(
        (prompt) => prompt.includes('Session status: escalated') && prompt.includes('Escalation reason: Needs the network team'),
      ),
    ).toBe(true);
    const paused = await request('POST', `${t.api}/chat/sessions/${sessionId}/pause`, { token: user.accessToken });
    expect(paused.body).toEqual({ sessionId, status: 'paused' });
    expect(await history()).toBe('paused');
  });

  test("someone else's session answers 404 everywhere, and an invalid body 400", async () => {
    const { user, sessionId } = await userWithSession();
    const other = await registerUser(t.api, 'Other');

    expect((await documentation(user, sessionId)).status).toBe(404); // not resolved yet
    expect((await resolve(other, sessionId)).status).toBe(404);
    expect((await request('POST', `${t.api}/chat/sessions/${sessionId}/escalate`, { token: other.accessToken, body: {} })).status).toBe(
      404,
    );
    expect((await resolve(user, sessionId, { resolutionSummary: 42 })).status).toBe(400);
    expect((await resolve(user, sessionId, { unexpected: true })).status).toBe(400);
    expect((await resolve(user, sessionId)).status).toBe(200);
    expect((await documentation(other, sessionId)).status).toBe(404);
    expect((await stream(other, sessionId)).status).toBe(404);
    expect((await stream(user, sessionId)).data.at(-1)).toBe('[DONE]');
  });

  test('resolves are limited to 15 and documentation streams to 20 per minute per user, with Retry-After', async () => {
    const { user, sessionId } = await userWithSession();
    expect((await resolve(user, sessionId)).status).toBe(200);
    expect((await stream(user, sessionId)).data.at(-1)).toBe('[DONE]');

    for (let i = 1; i < 15; i += 1) expect((await resolve(user, randomUUID())).status).toBe(404);
    const limited = await resolve(user, sessionId);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    for (let i = 1; i < 20; i += 1) expect((await stream(user, sessionId)).status).toBe(200);
    const streamLimited = await stream(user, sessionId);
    expect(streamLimited.status).toBe(429);
    expect(Number(streamLimited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});
