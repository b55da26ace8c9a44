import { randomUUID } from 'node:crypto';
import { QueueEvents } from 'bullmq';
import { eq } from 'drizzle-orm';
import { createSwitchboardClient } from '@switchboard/client';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { sessionEmbeddingJobId } from '../../src/producers/assistant';
import { NOTE_SECTIONS, hasNoteSections } from '../../src/assistant/ticket-notes';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/** The notes job's model request (chat turns have another system prompt). */
const isNotesRequest = (req: ChatRequest) =>
  req.messages.some((m) => m.role === 'system' && String(m.content).includes('internal ticket notes'));

/**
 * Reads the notes stream the way a plain browser client does: split the body on "\n", take every
 * line starting with "data: " as one whole message (never joining lines), stop at [DONE] / [ERROR].
 * Chunks are JSON, so their newlines must come through even so.
 */
async function readLikeTheFrontend(url: string, token: string): Promise<{ text: string; end: string; dataLines: string[] }> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const dataLines: string[] = [];
  let buffer = '';
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('data: ')) continue;
      const data = line.slice(6);
      dataLines.push(data);
      if (data === '[DONE]' || data.startsWith('[ERROR]')) {
        await reader.cancel();
        return { text, end: data, dataLines };
      }
      text += (JSON.parse(data) as { type: string; text: string }).text;
    }
  }
  return { text, end: '(stream ended without [DONE])', dataLines };
}

describe('resolving a session: notes, resolution outputs, embedding, similar sessions', () => {
  let t: TestApp;
  let redis: RedisClient;
  let queueEvents: QueueEvents | undefined;
  const devices: DeviceSimulator[] = [];
  const completed = new Set<string>();
  const waiters = new Map<string, () => void>();

  beforeAll(async () => {
    // The notes request is answered by the demo model (the scripted one answers chat turns).
    t = await startTestApp({
      responder: (req) => (isNotesRequest(req) ? demoResponder(req) : { text: 'Try restarting it, then tell me what you see.' }),
    });
    // QueueEvents blocks on its connection (XREAD), which needs the blocking role's options.
    redis = createRedis(testRedisTarget('queues'), 'blocking');
    await redisReady(redis);
    const events = new QueueEvents('assistant', { connection: redis, prefix: bullPrefix(t.keyPrefix) });
    queueEvents = events;
    events.on('completed', ({ jobId }) => {
      completed.add(jobId);
      waiters.get(jobId)?.();
    });
    await events.waitUntilReady();
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queueEvents?.close();
    redis?.disconnect();
    await t?.stop();
  });

  /** Resolves when the session's embedding job has completed (heard on the queue's events). */
  function embeddingDone(sessionId: string, timeoutMs = 15_000): Promise<void> {
    const jobId = sessionEmbeddingJobId(sessionId);
    if (completed.has(jobId)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no embedding for ${sessionId} within ${timeoutMs} ms`)), timeoutMs);
      waiters.set(jobId, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A user's session of the given customer messages, on a connected device. */
  async function session(user: TestUser, messages: string[]): Promise<string> {
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: {},
      reconnection: false,
    });
    devices.push(device);
    let sessionId: string | undefined;
    for (const message of messages) {
      const res = await request('POST', `${t.api}/chat`, {
        token: user.accessToken,
        body: { message, ...(sessionId ? { sessionId } : { deviceId: device.deviceId }) },
      });
      expect(res.status).toBe(200);
      sessionId = res.body.sessionId as string;
    }
    return sessionId!;
  }

  /** Resolves, reads the notes like the frontend, and waits for the embedding. */
  async function resolveFully(user: TestUser, sessionId: string, resolutionSummary?: string) {
    const embedded = embeddingDone(sessionId);
    const res = await request('POST', `${t.api}/chat/sessions/${sessionId}/resolve`, {
      token: user.accessToken,
      body: resolutionSummary ? { resolutionSummary } : {},
    });
    expect(res.body).toEqual({
      sessionId,
      status: 'resolved',
      documentation: null,
      psaPushStatus: 'no_psa',
      psaPushError: null,
      memberMappingWarning: null,
    });
    const streamed = await readLikeTheFrontend(`${t.api}/chat/sessions/${sessionId}/documentation/stream`, user.accessToken);
    await embedded;
    return streamed;
  }

  const similar = (user: TestUser, query: string) => request('GET', `${t.api}/chat/sessions/similar?${query}`, { token: user.accessToken });

  test('given a resolved session, the notes stream with their newlines to a data:-line reader and the outputs land in their fields', async () => {
    const user = await registerUser(t.api, 'Outputs');
    const sessionId = await session(user, ['My wifi keeps dropping every few minutes.', 'I restarted the router and it works now.']);

    const streamed = await resolveFully(user, sessionId, 'Moved the router to channel 11.');

    expect(streamed.end).toBe('[DONE]');
    // Every message was one whole data: line, and the reassembled notes keep their line structure.
    expect(streamed.text.split('\n').filter((line) => line.startsWith('## '))).toEqual(NOTE_SECTIONS.map((s) => `## ${s}`));
    expect(hasNoteSections(streamed.text)).toBe(true);
    const stored = await request('GET', `${t.api}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken });
    expect(stored.status).toBe(200);
    expect(stored.body.documentation).toBe(streamed.text);
    // The seed's fields: the problem, the steps taken, the resolution summary (the user's, filed under Resolution).
    expect(stored.body.problemSummary).toBe('My wifi keeps dropping every few minutes.');
    expect(stored.body.diagnosticSteps).toEqual(expect.arrayContaining([{ description: 'I restarted the router and it works now.' }]));
    expect(stored.body.resolutionSummary).toBe('Moved the router to channel 11.');
    expect(streamed.text).toMatch(/## Resolution\nMoved the router to channel 11\.\n/);

    // A replay of the stored notes reads the same through the same reader.
    const replay = await readLikeTheFrontend(`${t.api}/chat/sessions/${sessionId}/documentation/stream`, user.accessToken);
    expect(replay).toMatchObject({ text: streamed.text, end: '[DONE]' });
    expect(replay.dataLines).toHaveLength(2);

    // The SDK decodes the same chunks back to the same notes.
    const sb = createSwitchboardClient({ baseUrl: t.url, accessToken: user.accessToken });
    const events = [];
    for await (const event of sb.chat.documentationStream(sessionId)) events.push(event);
    expect(events.at(-1)).toEqual({ type: 'done' });
    expect(events.flatMap((event) => (event.type === 'chunk' ? [event.text] : [])).join('')).toBe(streamed.text);
    expect((await sb.chat.similarSessions('wifi dropping', { limit: 1 })).sessions).toEqual([
      expect.objectContaining({ sessionId, resolutionSummary: 'Moved the router to channel 11.' }),
    ]);

    // The embedding is stored, by the configured embedding model.
    const embedding = await t.app.repos.notes.embeddingOf(sessionId);
    expect(embedding?.vector.length).toBeGreaterThan(0);
    expect(embedding?.model).toBe(t.app.config.llm.embeddingModel);
  });

  test('without a summary from the user, the resolution summary is the Resolution section of the notes', async () => {
    const user = await registerUser(t.api, 'NoSummary');
    const sessionId = await session(user, ['The printer prints blank pages.', 'I replaced the toner and it is fixed now.']);

    await resolveFully(user, sessionId);

    const stored = await request('GET', `${t.api}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken });
    expect(stored.body.resolutionSummary).toBe('I replaced the toner and it is fixed now.');
    expect(stored.body.problemSummary).toBe('The printer prints blank pages.');
  });

  test("a similar-session lookup finds the caller's resolved session first, and never another user's", async () => {
    const ada = await registerUser(t.api, 'Ada');
    const bob = await registerUser(t.api, 'Bob');
    const wifi = await session(ada, ['My wifi keeps dropping every few minutes.', 'The wifi works now after the router restart.']);
    const printer = await session(ada, ['The printer prints blank pages.', 'I replaced the toner and it is fixed now.']);
    const bobsWifi = await session(bob, ['My wifi keeps dropping every few minutes.', 'The wifi works now after the router restart.']);
    const unresolved = await session(ada, ['My wifi keeps dropping every few minutes too.']);
    for (const [user, id] of [
      [ada, wifi],
      [ada, printer],
      [bob, bobsWifi],
    ] as const)
      await resolveFully(user, id, 'Restarted the router.');

    const found = await similar(ada, `q=${encodeURIComponent('wifi keeps dropping')}&limit=10`);

    expect(found.status).toBe(200);
    expect(found.body.model).toBe(t.app.config.llm.embeddingModel);
    const ids = (found.body.sessions as Array<{ sessionId: string; score: number }>).map((s) => s.sessionId);
    expect(ids[0]).toBe(wifi);
    expect(ids).not.toContain(bobsWifi);
    expect(ids).not.toContain(unresolved);
    expect(found.body.sessions[0]).toMatchObject({ sessionId: wifi, problemSummary: 'My wifi keeps dropping every few minutes.' });
    expect(found.body.sessions[0].score).toBeGreaterThan(0);
    const bobs = await similar(bob, `q=${encodeURIComponent('wifi keeps dropping')}`);
    expect((bobs.body.sessions as Array<{ sessionId: string }>).map((s) => s.sessionId)).toEqual([bobsWifi]);
  });

  test('a read API key cannot make the lookup spend: 403 before anything is counted; a write key is served', async () => {
    const user = await registerUser(t.api, 'KeyLookup');
    const key = async (scopes: string[]) =>
      (await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: `k-${scopes.join('-')}`, scopes } })).body
        .secret as string;
    const [reader, writer] = [await key(['read']), await key(['read', 'write'])];
    const spent = async () => (await t.app.repos.db.select({ id: llmUsage.id }).from(llmUsage).where(eq(llmUsage.userId, user.id))).length;
    for (const query of ['q=wifi', 'q=', `q=${'a'.repeat(8_001)}`]) {
      const refused = await request('GET', `${t.api}/chat/sessions/similar?${query}`, { token: reader });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toEqual(expect.objectContaining({ code: 'forbidden', message: expect.stringContaining('scope write') }));
    }
    const budget = (await request('GET', `${t.api}/usage/budget`, { token: user.accessToken })).body;
    expect(budget.windows.map((w: { reservedTokens: number }) => w.reservedTokens)).toEqual([0, 0]);
    expect(await spent()).toBe(0);

    const served = await request('GET', `${t.api}/chat/sessions/similar?q=wifi`, { token: writer });
    expect(served.status).toBe(200);
    expect(served.body.sessions).toEqual([]);
    await eventually(spent, (lines) => lines === 1);
  });

  test('bad lookups are 400 with the error shape, and a stranger is 401', async () => {
    const user = await registerUser(t.api, 'BadLookup');
    for (const query of [
      '',
      'q=',
      'q=%20%20',
      'q=wifi&limit=0',
      'q=wifi&limit=21',
      'q=wifi&limit=two',
      'q=wifi&other=1',
      `q=${'a'.repeat(8_001)}`,
    ]) {
      const res = await similar(user, query);
      expect(res.status).toBe(400);
      expect(res.body.error).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
    }
    expect((await request('GET', `${t.api}/chat/sessions/similar?q=wifi`)).status).toBe(401);
  });
});
