import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { TestQueue } from '../support/redis';
import { readSse } from '../support/sse';

/**
 * Leaks, black box with the logs captured: an error's cause — provider text that quotes
 * the prompt, a drizzle error that carries the SQL parameters — reaches neither clients (HTTP
 * bodies, SSE `error` events, the generation's row) nor logs nor the failed job's record. Clients
 * get a code and a fixed message; logs get the code, ids and the cause's class and codes.
 */

const said = (req: ChatRequest, word: string) => JSON.stringify(req.messages).includes(word);

describe('errors leak no user content', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  const logs: string[] = [];
  let generationQueue: Queue;
  let assistantQueue: Queue;

  beforeAll(async () => {
    t = await startTestApp({
      logs: (line) => void logs.push(line),
      responder: (req) => {
        // A provider whose error message quotes the request (many do).
        if (said(req, 'leak-probe')) throw new Error(`upstream refused this request: ${JSON.stringify(req.messages)}`);
        if (said(req, 'store-probe')) {
          const secret = /SECRET-[0-9a-f-]+/.exec(JSON.stringify(req.messages))![0];
          return req.messages.at(-1)?.role === 'tool'
            ? { text: 'done' }
            : { toolCalls: [{ name: 'create_text', args: { text: `model wrote ${secret}` } }] };
        }
        return demoResponder(req);
      },
    });
    user = await registerUser(t.api, 'Leaks');
    canvasId = await createCanvas(t.api, user);
    generationQueue = new TestQueue('generation', bullPrefix(t.keyPrefix));
    assistantQueue = new TestQueue('assistant', bullPrefix(t.keyPrefix));
  });

  afterAll(async () => {
    await generationQueue.close();
    await assistantQueue.close();
    await t.stop();
  });

  const secret = () => `SECRET-${randomUUID()}`;
  /** Every place the secret must not be: the log lines written so far. */
  const logged = () => logs.join('\n');
  const jobRecord = async (queue: Queue, id: string) => {
    const job = await queue.getJob(id);
    return JSON.stringify({ failedReason: job?.failedReason, stacktrace: job?.stacktrace });
  };

  test('a 500 from the database: the client reads internal_error, the log has the cause class and SQLSTATE, neither has the block text', async () => {
    const text = secret();
    await t.app.repos.db.execute(sql.raw('ALTER TABLE blocks ADD CONSTRAINT leak_probe CHECK (false) NOT VALID'));
    try {
      const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
        token: user.accessToken,
        body: { type: 'text', content: { text } },
      });

      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: { code: 'internal_error', message: 'Internal server error' } });
    } finally {
      await t.app.repos.db.execute(sql.raw('ALTER TABLE blocks DROP CONSTRAINT leak_probe'));
    }
    const unhandled = logs.filter((line) => line.includes('"unhandled error"'));
    expect(unhandled.length).toBeGreaterThan(0);
    expect(unhandled.at(-1)).toMatch(/"type":"DrizzleQueryError"/);
    expect(unhandled.at(-1)).toMatch(/"code":"23514"/);
    expect(logged()).not.toContain(text);
    expect(logged()).not.toMatch(/insert into "blocks"/i);
  });

  test('a provider error quoting the prompt reaches neither the SSE error event, the generation row, the job record nor the logs', async () => {
    const words = secret();

    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: `leak-probe ${words}` },
      timeoutMs: 60_000,
    });
    const generationId = sse.headers.get('x-generation-id')!;
    const status = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken });

    expect(sse.messages.at(-1)).toMatchObject({
      event: 'error',
      data: { type: 'error', code: 'llm_unavailable', message: expect.any(String) },
    });
    expect(JSON.stringify(sse.messages)).not.toContain(words);
    expect(JSON.stringify(sse.messages)).not.toContain('upstream refused');
    expect(status.body.generation.error).toEqual({ code: 'llm_unavailable', message: sse.messages.at(-1)!.data.message });
    expect(await jobRecord(generationQueue, generationId)).not.toContain(words);
    expect(logged()).not.toContain(words);
  }, 90_000);

  test('model output that the database refuses fails the generation without its text in the event, the job record or the logs', async () => {
    const words = secret();
    await t.app.repos.db.execute(sql.raw('ALTER TABLE blocks ADD CONSTRAINT leak_probe_2 CHECK (false) NOT VALID'));
    let sse;
    try {
      sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: `store-probe ${words}` },
        timeoutMs: 60_000,
        until: (m) => m.event === 'error' || m.event === 'complete',
      });
    } finally {
      await t.app.repos.db.execute(sql.raw('ALTER TABLE blocks DROP CONSTRAINT leak_probe_2'));
    }
    const generationId = sse.headers.get('x-generation-id')!;
    const error = sse.messages.at(-1)!;

    expect(error).toMatchObject({
      event: 'error',
      data: { code: 'generation_failed', message: 'The generation failed; please try again' },
    });
    const record = await jobRecord(generationQueue, generationId);
    expect(record).toMatch(/DrizzleQueryError/);
    expect(record).not.toContain(words);
    expect(logged()).not.toContain(words);
  }, 90_000);

  test("a provider error in a chat turn reaches neither the stream's error event, the job record nor the logs", async () => {
    const words = secret();

    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: `leak-probe ${words}`, tools: 'none' },
      timeoutMs: 60_000,
    });
    const sessionId = sse.headers.get('x-chat-session-id')!;
    const [question] = await t.app.repos.chat.history(sessionId);

    expect(sse.messages.at(-1)).toMatchObject({ event: 'error', data: { code: 'llm_unavailable' } });
    expect(JSON.stringify(sse.messages)).not.toContain(words);
    expect(await jobRecord(assistantQueue, question.id)).not.toContain(words);
    expect(logged()).not.toContain(words);
  }, 90_000);
});
