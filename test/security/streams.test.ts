import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { redisKeys } from '../../src/lib/redis-keys';
import { generations } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { keysEverywhere } from '../support/redis';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * Streams, black box: every SSE stream ends (past the end, expired or lost logs, a
 * producer that ended without a terminal event), and a user holds at most MAX_STREAMS_PER_USER.
 */

/** A promise the test opens by hand: holds the model mid-request. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const said = (req: ChatRequest, word: string) => JSON.stringify(req.messages).includes(word);

/** Opens an SSE request and resolves once the server answered (headers): the stream is then counted. */
async function openStream(url: string, token: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'text/event-stream',
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
    signal: controller.signal,
  });
  return {
    response,
    close: () => {
      controller.abort();
      response.body?.cancel().catch(() => undefined);
    },
  };
}

describe('every stream ends', () => {
  let t: TestApp;
  let redis: RedisClient;
  let owner: TestUser;
  let canvasId: string;
  let hold = gate();

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        STREAM_CHECK_INTERVAL_MS: '200',
        TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 100, concurrentGenerations: 5 } }),
      },
      responder: async (req) => {
        if (said(req, 'hold-me')) await hold.opened;
        return demoResponder(req);
      },
    });
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    owner = await registerUser(t.api, 'Owner');
    canvasId = await createCanvas(t.api, owner);
  });

  afterAll(async () => {
    hold.open();
    redis.disconnect();
    await t.stop();
  });

  const generate = async (prompt: string) => {
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { prompt },
    });
    expect(sse.messages.at(-1)!.event).toBe('complete');
    return { generationId: sse.headers.get('x-generation-id')!, messages: sse.messages };
  };
  const eventsUrl = (generationId: string) => `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/events`;

  test('an event stream keeps the headers that protect it (nosniff, frame and referrer policy) and drops those only documents use (CSP and the like)', async () => {
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { prompt: 'Headers' },
    });
    expect(sse.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers.get('x-content-type-options')).toBe('nosniff');
    expect(sse.headers.get('x-frame-options')).toBeTruthy();
    expect(sse.headers.get('referrer-policy')).toBeTruthy();
    for (const name of [
      'content-security-policy',
      'cross-origin-opener-policy',
      'origin-agent-cluster',
      'x-dns-prefetch-control',
      'x-download-options',
      'x-permitted-cross-domain-policies',
      'x-xss-protection',
    ])
      expect(sse.headers.get(name)).toBeNull();
    // A JSON answer of the same API still carries them all.
    const json = await fetch(`${t.api}/canvases/${canvasId}`, { headers: { authorization: `Bearer ${owner.accessToken}` } });
    expect(json.headers.get('content-security-policy')).toBeTruthy();
  });

  test('given a completed generation, a stream with Last-Event-ID at or past its end re-sends the terminal event and closes', async () => {
    const { generationId, messages } = await generate('A heading about streams');
    const lastSeq = Number(messages.at(-1)!.id);

    for (const lastEventId of [String(lastSeq), String(lastSeq + 5), '999999999']) {
      // No `until`: readSse resolves only when the server ends the response.
      const sse = await readSse(eventsUrl(generationId), {
        token: owner.accessToken,
        headers: { 'Last-Event-ID': lastEventId },
        timeoutMs: 10_000,
      });

      expect(sse.status).toBe(200);
      expect(sse.messages.map((m) => [m.id, m.event])).toEqual([[String(lastSeq), 'complete']]);
    }
  });

  test('given a completed generation whose event log expired, the stream ends with a complete built from the stored blocks', async () => {
    const { generationId, messages } = await generate('Another heading: with items (one, two)');
    await redis.del(`${t.keyPrefix}:gen:{${generationId}}:events`);

    const sse = await readSse(eventsUrl(generationId), { token: owner.accessToken, timeoutMs: 10_000 });

    expect(sse.messages).toHaveLength(1);
    expect(sse.messages[0].event).toBe('complete');
    expect(sse.messages[0].id).toBeUndefined();
    expect(sse.messages[0].data.blocks).toEqual(messages.at(-1)!.data.blocks);
  });

  test('given a running generation whose log is lost and whose run ends without a terminal event, the open stream ends with error', async () => {
    hold = gate();
    const started = await openStream(`${t.api}/canvases/${canvasId}/ai/generate-stream`, owner.accessToken, {
      method: 'POST',
      body: { prompt: 'hold-me a while' },
    });
    const generationId = started.response.headers.get('x-generation-id')!;
    started.close();
    await eventually(
      async () => t.llm.chatRequests().filter((r) => said(r, 'hold-me')).length,
      (n) => n >= 1,
    );
    const following = readSse(eventsUrl(generationId), { token: owner.accessToken, timeoutMs: 15_000 });

    // What a reaper does for a dead worker, with the log gone as well (Redis lost it).
    await t.app.repos.generations.update(generationId, {
      status: 'failed',
      errorCode: 'generation_failed',
      errorMessage: 'x',
      completedAt: new Date(0),
    });
    await redis.del(`${t.keyPrefix}:gen:{${generationId}}:events`);
    const sse = await following;
    hold.open();

    const last = sse.messages.at(-1)!;
    expect(last.event).toBe('error');
    expect(last.data).toEqual({ type: 'error', generationId, code: 'generation_failed', message: expect.any(String) });
    expect(last.data.message).not.toBe('x');
  });

  test('an unknown generation, or one of a canvas the caller cannot see, answers 404 instead of a stream', async () => {
    const stranger = await registerUser(t.api, 'Stranger');
    const { generationId } = await generate('A heading for strangers');

    const unknown = await readSse(eventsUrl(randomUUID()), { token: owner.accessToken, timeoutMs: 10_000 });
    const foreign = await readSse(eventsUrl(generationId), { token: stranger.accessToken, timeoutMs: 10_000 });

    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'not_found']);
    expect([foreign.status, foreign.body.error.code]).toEqual([404, 'not_found']);
  });

  test('given a chat turn whose answer was stored but whose log is lost, its stream ends with that answer as final', async () => {
    hold = gate();
    const user = await registerUser(t.api, 'Chatter');
    const following = readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'hold-me please', tools: 'none' },
      timeoutMs: 15_000,
    });
    await eventually(
      async () => t.llm.chatRequests().filter((r) => said(r, 'hold-me please')).length,
      (n) => n >= 1,
    );
    const [session] = (await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions;
    const [question] = await t.app.repos.chat.history(session.id);

    // The worker stored its answer, then died before telling the log (which Redis lost).
    await t.app.repos.chat.addMessage({ sessionId: session.id, role: 'assistant', content: 'the stored answer', replyTo: question.id });
    await redis.del(`${t.keyPrefix}:chat:{${question.id}}:events`);
    const sse = await following;
    hold.open();

    expect(sse.messages.at(-1)!.event).toBe('final');
    expect(sse.messages.at(-1)!.data).toMatchObject({ type: 'final', sessionId: session.id, response: 'the stored answer' });
  });

  test('given ticket notes whose job ended without a word in the log, the notes stream ends with [ERROR]', async () => {
    const user = await registerUser(t.api, 'Notes');
    const chat = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'My printer is jammed.', tools: 'none' },
    });
    expect(chat.status).toBe(200);
    hold = gate();
    const sessionId = chat.body.sessionId;
    // The notes request is held by the word in the resolution summary.
    expect(
      (
        await request('POST', `${t.api}/chat/sessions/${sessionId}/resolve`, {
          token: user.accessToken,
          body: { resolutionSummary: 'hold-me notes' },
        })
      ).status,
    ).toBe(200);
    await eventually(
      async () => t.llm.chatRequests().filter((r) => said(r, 'hold-me notes')).length,
      (n) => n >= 1,
    );
    const following = readSse(`${t.api}/chat/sessions/${sessionId}/documentation/stream`, { token: user.accessToken, timeoutMs: 15_000 });

    await t.app.repos.notes.setDocumentationStatus(sessionId, 'failed');
    await redis.del(`${t.keyPrefix}:notes:{${sessionId}}:events`);
    const sse = await following;
    hold.open();

    expect(String(sse.messages.at(-1)!.data)).toMatch(/^\[ERROR\] /);
  });
});

describe('a user holds at most MAX_STREAMS_PER_USER streams, across nodes', () => {
  let t: TestApp;
  let owner: TestUser;
  let viewer: TestUser;
  let canvasId: string;
  let generationId: string;
  const hold = gate();
  const open: Array<{ close(): void }> = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: { MAX_STREAMS_PER_USER: '3' },
      responder: async (req) => {
        if (said(req, 'hold-me')) await hold.opened;
        return demoResponder(req);
      },
    });
    [owner, viewer] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Viewer')]);
    canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    const started = await openStream(`${t.api}/canvases/${canvasId}/ai/generate-stream`, owner.accessToken, {
      method: 'POST',
      body: { prompt: 'hold-me until the end' },
    });
    generationId = started.response.headers.get('x-generation-id')!;
    started.close();
  });

  afterAll(async () => {
    open.forEach((stream) => stream.close());
    hold.open();
    await t.stop();
  });

  const eventsUrl = () => `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/events`;

  test('the stream past the cap is 429 too_many_streams with Retry-After, starts no generation, and another user is not affected', async () => {
    // The generate-stream above closed: its slot comes back.
    const streams = await eventually(
      async () => {
        const attempt = await openStream(eventsUrl(), owner.accessToken);
        if (attempt.response.status === 200) open.push(attempt);
        return open.length;
      },
      (n) => n >= 3,
    );
    expect(streams).toBe(3);

    const refused = await request('GET', eventsUrl(), { token: owner.accessToken });
    const before = await t.app.repos.db.select().from(generations).where(eq(generations.userId, owner.id));
    const refusedStart = await request('POST', `${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      token: owner.accessToken,
      body: { prompt: 'one too many' },
    });
    const after = await t.app.repos.db.select().from(generations).where(eq(generations.userId, owner.id));
    const other = await openStream(eventsUrl(), viewer.accessToken);
    open.push(other);

    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: { code: 'too_many_streams', message: expect.any(String), details: { limit: 3 } } });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refusedStart.status).toBe(429);
    expect(after).toHaveLength(before.length);
    expect(other.response.status).toBe(200);
  });

  test('closing a stream gives its slot back', async () => {
    open.shift()!.close();

    const reopened = await eventually(
      async () => {
        const attempt = await openStream(eventsUrl(), owner.accessToken);
        if (attempt.response.status !== 200) await attempt.response.text();
        return attempt;
      },
      (attempt) => attempt.response.status === 200,
    );
    open.push(reopened);

    expect(reopened.response.status).toBe(200);
  });

  test('streams that end together all give their slots back (their releases go out as one batch)', async () => {
    // Every stream of the owner closes in the same turn: the cap is free again, whole.
    open.splice(0).forEach((stream) => stream.close());

    const again: Array<Awaited<ReturnType<typeof openStream>>> = [];
    await eventually(
      async () => {
        const attempt = await openStream(eventsUrl(), owner.accessToken);
        if (attempt.response.status === 200) again.push(attempt);
        else await attempt.response.text();
        return again.length;
      },
      (n) => n >= 3,
    );
    open.push(...again);
    const fourth = await request('GET', eventsUrl(), { token: owner.accessToken });

    expect(again).toHaveLength(3);
    expect(fourth.status).toBe(429);
  });
});

describe('a generation refused for the stream cap counts nothing against the generation limits', () => {
  let t: TestApp;
  let redis: RedisClient;
  let owner: TestUser;
  let canvasId: string;
  const hold = gate();

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        MAX_STREAMS_PER_USER: '1',
        // Room under every generation limit: the stream cap is the only refusal under test.
        TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 100, generationsPerHour: 100, concurrentGenerations: 10 } }),
      },
      responder: async (req) => {
        if (said(req, 'hold-me')) await hold.opened;
        return demoResponder(req);
      },
    });
    redis = createRedis(testRedisTarget('cache'), 'command');
    await redisReady(redis);
    owner = await registerUser(t.api, 'Capped');
    canvasId = await createCanvas(t.api, owner);
  });

  afterAll(async () => {
    hold.open();
    redis.disconnect();
    await t.stop();
  });

  /** What the generation limits hold for the owner: each window's count (non-zero) and the in-flight generations. */
  const limitsHeld = async () => {
    const windows = await keysEverywhere(redis, `${t.keyPrefix}:rl:gen:{${owner.id}}:*`);
    const counts = Object.fromEntries(
      (await Promise.all(windows.map(async (key) => [key, Number(await redis.get(key))] as const))).filter(([, count]) => count > 0),
    );
    const inFlight = await redis.zrange(redisKeys(t.keyPrefix).generationSlots(owner.id), '0', '-1');
    return { counts, inFlight: inFlight.sort() };
  };

  test('ten refused at once leave the windows and the in-flight generations as they were, and write no row; a repeated Idempotency-Key is refused the same way', async () => {
    // The one stream allowed: a generation held mid-request.
    const key = randomUUID();
    const held = await openStream(`${t.api}/canvases/${canvasId}/ai/generate-stream`, owner.accessToken, {
      method: 'POST',
      body: { prompt: 'hold-me while the others are refused' },
      headers: { 'Idempotency-Key': key },
    });
    expect(held.response.status).toBe(200);
    const before = await limitsHeld();
    const rowsBefore = await t.app.repos.db.select().from(generations).where(eq(generations.userId, owner.id));

    const refused = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        request('POST', `${t.api}/canvases/${canvasId}/ai/generate-stream`, {
          token: owner.accessToken,
          body: { prompt: `refused ${index}` },
        }),
      ),
    );
    const repeated = await request('POST', `${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      token: owner.accessToken,
      body: { prompt: 'hold-me while the others are refused' },
      headers: { 'Idempotency-Key': key },
    });

    expect(refused.map((answer) => [answer.status, answer.body.error.code])).toEqual(Array(10).fill([429, 'too_many_streams']));
    expect([repeated.status, repeated.body.error.code]).toEqual([429, 'too_many_streams']);
    // The refusal names no generation: the replay it would have been waited for its slot.
    expect(repeated.headers.get('x-generation-id')).toBeNull();
    expect(repeated.headers.get('idempotent-replayed')).toBeNull();
    expect(await limitsHeld()).toEqual(before);
    expect(Object.values(before.counts)).toEqual([1, 1]);
    expect(before.inFlight).toEqual([held.response.headers.get('x-generation-id')]);
    expect(await t.app.repos.db.select().from(generations).where(eq(generations.userId, owner.id))).toHaveLength(rowsBefore.length);
    held.close();
  });
});
