import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import {
  DONE_MESSAGE,
  FALLBACK_QUESTIONS,
  FINISH_NOW,
  FIRST_QUESTIONS,
  JOURNEY_SYSTEM_PROMPT,
  MAX_PROMPT_TEMPLATE_CHARS,
  tooEarly,
} from '../../src/agents/journey-script';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { createRedis, type RedisConnections } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, testRedisTarget, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { keysEverywhere, testRedisConnections } from '../support/redis';

const TEMPLATE =
  "Extract tasks from each markdown file. A line starting with TODO becomes a task titled with the rest of the line. If the text says 'urgent' or 'ASAP', set priority to high.";
const finishCall = (args: Record<string, unknown>): ChatTurn => ({ toolCalls: [{ name: 'finish_configuration', args }] });

/** Every message of a model request as `role: text`, for assertions. */
const transcript = (req: ChatRequest) =>
  req.messages.map((m) => `${m.role}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`);
const toolNames = (req: ChatRequest) => (req.tools ?? []).map((tool) => tool.function.name);

const start = (user: TestUser, api: string, body: unknown) =>
  request('POST', `${api}/agents/journey/start`, { token: user.accessToken, body });
const send = (user: TestUser, api: string, sessionId: string, message: string) =>
  request('POST', `${api}/agents/journey/message`, { token: user.accessToken, body: { sessionId, message } });

describe('agent setup journey with a scripted model', () => {
  let t: TestApp;
  /** The journeys' records sit on the cache's Redis, their jobs on the queues'. */
  let redis: RedisConnections;
  let queue: Queue;
  /** Answers requests when no scripted turn is queued; a test may replace it (and must put it back). */
  let respond: (req: ChatRequest) => ChatTurn | Promise<ChatTurn> = () => ({ text: 'Tell me more?' });

  beforeAll(async () => {
    t = await startTestApp({ responder: (req) => respond(req) });
    redis = testRedisConnections();
    await redis.ready();
    queue = new Queue('assistant', { connection: redis.queues.command, prefix: bullPrefix(t.keyPrefix) });
  });

  afterAll(async () => {
    await queue.close();
    await redis.quit();
    await t.stop();
  });

  /** Model requests made while `work` runs. */
  async function requestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: ChatRequest[] }> {
    const before = t.llm.chatRequests().length;
    const result = await work();
    return { result, requests: t.llm.chatRequests().slice(before) };
  }

  async function startLocal(user: TestUser): Promise<string> {
    const res = await start(user, t.api, { agentType: 'local', dataTypes: ['notes', 'tasks'] });
    expect(res.status).toBe(201);
    return res.body.sessionId;
  }

  test('start asks the contextual first question without calling the model', async () => {
    const user = await registerUser(t.api, 'Journey');

    const { result: local, requests } = await requestsDuring(() => start(user, t.api, { agentType: 'local', dataTypes: ['tasks'] }));
    const cloud = await start(user, t.api, { agentType: 'cloud', dataTypes: ['tasks', 'checkpoints'] });

    expect(local.status).toBe(201);
    expect(local.body).toEqual({
      sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      message: 'What kind of files are in the directories you want to monitor? (emails, documents, logs, etc.)',
      done: false,
      turn: 0,
    });
    expect(cloud.body.message).toBe(
      'What kind of emails/messages should I look for? (client communications, invoices, meeting notes, etc.)',
    );
    expect(cloud.body.sessionId).not.toBe(local.body.sessionId);
    expect(requests).toHaveLength(0);
    const ttl = await redis.cache.command.ttl(`${t.keyPrefix}:journey:{${local.body.sessionId}}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(t.app.config.agents.journeyTtlSeconds);
  });

  test('three answers, then the model finishes: done with its template; the history goes to the model each turn; usage is recorded', async () => {
    const user = await registerUser(t.api, 'Journey');
    const sessionId = await startLocal(user);
    t.llm.push(
      { text: 'Which items should I extract from them?' },
      { text: 'Any naming conventions?' },
      finishCall({ promptTemplate: TEMPLATE, message: "Here's your configuration." }),
    );

    const { result: replies, requests } = await requestsDuring(async () => [
      await send(user, t.api, sessionId, 'Markdown meeting notes'),
      await send(user, t.api, sessionId, 'Lines starting with TODO are tasks'),
      await send(user, t.api, sessionId, 'Titles are the rest of the line'),
    ]);

    expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(replies[0].body).toEqual({ sessionId, message: 'Which items should I extract from them?', done: false, turn: 1 });
    expect(replies[1].body).toEqual({ sessionId, message: 'Any naming conventions?', done: false, turn: 2 });
    expect(replies[2].body).toEqual({ sessionId, message: "Here's your configuration.", done: true, turn: 3, promptTemplate: TEMPLATE });
    expect(requests).toHaveLength(3);
    expect(requests[0].messages[0].content).toContain(JOURNEY_SYSTEM_PROMPT);
    expect(requests[0].messages[0].content).toContain('Data types to extract: tasks, notes.');
    // The finish tool is offered only from the third answer on.
    expect(requests.map(toolNames)).toEqual([[], [], ['finish_configuration']]);
    expect(transcript(requests[2]).slice(1)).toEqual([
      `assistant: ${FIRST_QUESTIONS.local}`,
      'user: Markdown meeting notes',
      'assistant: Which items should I extract from them?',
      'user: Lines starting with TODO are tasks',
      'assistant: Any naming conventions?',
      'user: Titles are the rest of the line',
    ]);

    const view = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken });
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({
      sessionId,
      agentType: 'local',
      dataTypes: ['tasks', 'notes'],
      turn: 3,
      done: true,
      promptTemplate: TEMPLATE,
    });
    expect(view.body.messages).toHaveLength(7);
    const summary = await request('GET', `${t.api}/metrics/summary`, { token: user.accessToken });
    expect(summary.body.usage.last24h.calls).toBe(3);

    // Done is final: another answer is refused and nothing is queued.
    const before = await queue.getJobCounts();
    const after = await send(user, t.api, sessionId, 'One more thing');
    expect(after.status).toBe(409);
    expect(after.body.error.code).toBe('journey_done');
    expect(await queue.getJobCounts()).toEqual(before);
  });

  test('a model that never finishes is made to at the fifth answer; its unusable reply gives way to a template from the answers', async () => {
    const user = await registerUser(t.api, 'Journey');
    const sessionId = await startLocal(user);
    const answers = [
      'Plain-text logs',
      'Error lines become tasks',
      'Prefix titles with the host name',
      'FATAL means high priority',
      'Logs under /srv/acme belong to the Acme project',
    ];

    const { result: replies, requests } = await requestsDuring(async () => {
      const out = [];
      for (const answer of answers) out.push(await send(user, t.api, sessionId, answer));
      return out;
    });

    expect(replies.slice(0, 4).map((r) => [r.status, r.body.done, r.body.turn, r.body.message])).toEqual(
      [1, 2, 3, 4].map((turn) => [200, false, turn, 'Tell me more?']),
    );
    const last = replies[4].body;
    expect(last).toMatchObject({ sessionId, done: true, turn: 5, message: DONE_MESSAGE });
    expect(last.promptTemplate.length).toBeLessThanOrEqual(MAX_PROMPT_TEMPLATE_CHARS);
    expect(last.promptTemplate).toMatch(/^Extract tasks and notes for a freelancer from each file in the monitored directories\./);
    for (const answer of answers) expect(last.promptTemplate).toContain(answer);
    expect(last.promptTemplate).toContain(`- ${FIRST_QUESTIONS.local} → Plain-text logs`);
    // The fifth call forces the finish tool and says why.
    expect(requests).toHaveLength(5);
    expect(requests[4].tool_choice).toEqual({ type: 'function', function: { name: 'finish_configuration' } });
    expect(transcript(requests[4]).at(-1)).toBe(`system: ${FINISH_NOW}`);
  });

  test("a finish with an empty template after the third answer still ends the journey, with the server's template", async () => {
    const user = await registerUser(t.api, 'Journey');
    const sessionId = await startLocal(user);
    t.llm.push({ text: 'What should I extract?' }, { text: 'Naming?' }, finishCall({ promptTemplate: '   ', message: 'All set!' }));

    await send(user, t.api, sessionId, 'Word documents');
    await send(user, t.api, sessionId, 'Action items');
    const res = await send(user, t.api, sessionId, 'No conventions');

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ done: true, turn: 3, message: DONE_MESSAGE });
    expect(res.body.promptTemplate).toContain('Word documents');
  });

  test('a model that tries to finish after one answer is not obeyed: it is asked again for a question', async () => {
    const user = await registerUser(t.api, 'Journey');
    const sessionId = await startLocal(user);
    t.llm.push(finishCall({ promptTemplate: TEMPLATE, message: 'Done already!' }), { text: 'What data should I extract?' });

    const { result: first, requests } = await requestsDuring(() => send(user, t.api, sessionId, 'Markdown notes'));

    expect(first.status).toBe(200);
    expect(first.body).toEqual({ sessionId, message: 'What data should I extract?', done: false, turn: 1 });
    expect(requests).toHaveLength(2);
    expect(toolNames(requests[1])).toEqual([]);
    expect(transcript(requests[1]).at(-1)).toBe(`system: ${tooEarly(1)}`);

    // When the second try gives no question either, the server asks its own.
    t.llm.push(finishCall({ promptTemplate: TEMPLATE, message: 'Done!' }), { text: '  ' });
    const second = await send(user, t.api, sessionId, 'Tasks');
    expect(second.body).toEqual({ sessionId, message: FALLBACK_QUESTIONS[1], done: false, turn: 2 });
  });

  test('a double submit of an answer runs one turn: both requests get the same reply', async () => {
    const user = await registerUser(t.api, 'Journey');
    const sessionId = await startLocal(user);
    const eventsRedis = createRedis(testRedisTarget('queues'), 'blocking');
    const events = new QueueEvents('assistant', { connection: eventsRedis, prefix: bullPrefix(t.keyPrefix) });
    await events.waitUntilReady();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    respond = async () => {
      await held;
      return { text: 'Which items should I extract?' };
    };
    try {
      // The model answers only once the second submit has found the first one's job.
      const duplicated = new Promise<void>((resolve) =>
        events.on('duplicated', ({ jobId }) => jobId === `journey-${sessionId}-1` && resolve()),
      );
      const { result, requests } = await requestsDuring(async () => {
        const both = Promise.all([send(user, t.api, sessionId, 'Markdown notes'), send(user, t.api, sessionId, 'Markdown notes')]);
        await duplicated;
        release();
        return both;
      });
      expect(result.map((r) => r.body)).toEqual(
        [0, 1].map(() => ({ sessionId, message: 'Which items should I extract?', done: false, turn: 1 })),
      );
      expect(requests).toHaveLength(1);
    } finally {
      respond = () => ({ text: 'Tell me more?' });
      await events.close();
      eventsRedis.disconnect();
    }
    const next = await send(user, t.api, sessionId, 'TODO lines');
    expect(next.body.turn).toBe(2);
  });

  test('an unreachable model answers 503 llm_unavailable; sending the answer again runs a fresh turn', async () => {
    const user = await registerUser(t.api, 'Journey');
    const sessionId = await startLocal(user);
    // 400 is not retried by the client: the model fails at once.
    t.llm.push({ error: { status: 400, message: 'model not loaded' } }, { text: 'Which items should I extract?' });

    const failed = await send(user, t.api, sessionId, 'Markdown notes');
    const again = await send(user, t.api, sessionId, 'Markdown meeting notes');

    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('llm_unavailable');
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ sessionId, message: 'Which items should I extract?', done: false, turn: 1 });
    const view = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken });
    expect(view.body.messages.map((m: { content: string }) => m.content)).toEqual([
      FIRST_QUESTIONS.local,
      'Markdown meeting notes',
      'Which items should I extract?',
    ]);
  });

  test("bad input answers 400 and writes nothing; someone else's or an unknown session is 404", async () => {
    const user = await registerUser(t.api, 'Journey');
    const other = await registerUser(t.api, 'Other');
    const sessionId = await startLocal(user);
    const keysBefore = (await keysEverywhere(redis.cache.command, `${t.keyPrefix}:journey:*`)).sort();
    const jobsBefore = await queue.getJobCounts();
    const modelCallsBefore = t.llm.chatRequests().length;

    const badStarts = await Promise.all(
      [
        { agentType: 'hybrid', dataTypes: ['tasks'] },
        { agentType: 'local', dataTypes: [] },
        { agentType: 'local', dataTypes: ['tasks', 'emails'] },
        { agentType: 'local' },
        { agentType: 'cloud', dataTypes: ['tasks'], promptTemplate: 'sneaky' },
        ['tasks'],
      ].map((body) => start(user, t.api, body)),
    );
    const badMessages = await Promise.all(
      [
        { message: 'Markdown notes' },
        { sessionId: 'not-a-uuid', message: 'Markdown notes' },
        { sessionId, message: '   ' },
        { sessionId, message: 'x'.repeat(4_001) },
        { sessionId },
      ].map((body) => request('POST', `${t.api}/agents/journey/message`, { token: user.accessToken, body })),
    );

    for (const res of [...badStarts, ...badMessages]) {
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'validation_failed', message: expect.any(String), details: expect.any(Array) });
    }
    const theirs = await send(other, t.api, sessionId, 'Let me in');
    const unknown = await send(user, t.api, randomUUID(), 'Hello?');
    const peek = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: other.accessToken });
    const anonymous = await request('POST', `${t.api}/agents/journey/start`, { body: { agentType: 'local', dataTypes: ['tasks'] } });
    for (const res of [theirs, unknown, peek]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect(anonymous.status).toBe(401);

    expect((await keysEverywhere(redis.cache.command, `${t.keyPrefix}:journey:*`)).sort()).toEqual(keysBefore);
    expect(await queue.getJobCounts()).toEqual(jobsBefore);
    expect(t.llm.chatRequests()).toHaveLength(modelCallsBefore);
    const view = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken });
    expect(view.body).toMatchObject({ turn: 0, done: false, messages: [{ role: 'assistant', content: FIRST_QUESTIONS.local }] });
  });
});

describe('agent setup journey with the offline demo model', () => {
  let database: TestDatabase;
  let app: RunningSwitchboard;
  let api: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    // No endpoint and no LLM settings: the worker starts the demo model, as `npm start` does.
    const config = testConfig({ keyPrefix: `t-${randomUUID().slice(0, 8)}`, databaseUrl: database.url });
    app = await startSwitchboard(config, { logger: createLogger({ level: config.log.level }) });
    api = `${app.url}/api/v1`;
  });

  afterAll(async () => {
    await app.stop();
    await database.drop();
  });

  async function journey(user: TestUser, body: unknown, answers: string[]) {
    const started = await start(user, api, body);
    expect(started.status).toBe(201);
    const replies = [];
    for (const answer of answers) {
      const res = await send(user, api, started.body.sessionId, answer);
      expect(res.status).toBe(200);
      replies.push(res.body);
      if (res.body.done) break;
    }
    return replies;
  }

  test('thorough answers: follow-up questions, then done at the third answer with a template built from them', async () => {
    const user = await registerUser(api, 'Demo');
    const replies = await journey(user, { agentType: 'local', dataTypes: ['tasks', 'notes'] }, [
      'Markdown meeting notes',
      'TODO lines are tasks, decisions are notes',
      'Titles start with the client code; urgent or ASAP is high priority; the acme folder maps to the Acme project',
      'unused',
    ]);

    expect(replies.map((r) => [r.turn, r.done])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(replies[0].message).toMatch(/^Which tasks and notes should I pull out of those files/);
    expect(replies[1].message).toMatch(/naming conventions/);
    expect(replies[2].message).toMatch(/demo model/);
    expect(replies[2].promptTemplate).toMatch(/^Extract tasks and notes for a freelancer from each file in the monitored directories\./);
    expect(replies[2].promptTemplate).toContain("If the text says 'urgent' or 'ASAP', set priority to high");
    expect(replies[2].promptTemplate).toContain('Source material: Markdown meeting notes.');
    const summary = await request('GET', `${api}/metrics/summary`, { token: user.accessToken });
    expect(summary.body.usage.byModel).toEqual([expect.objectContaining({ provider: 'demo', model: 'demo', calls: 3 })]);
  });

  test("short answers: every topic is asked and the server ends it at the fifth with the demo's template", async () => {
    const user = await registerUser(api, 'Demo');
    const replies = await journey(user, { agentType: 'cloud', dataTypes: ['checkpoints', 'tasks'] }, [
      'Client emails',
      'The ones from clients',
      'Whatever you think',
      'Use your judgement',
      'None',
    ]);

    expect(replies.map((r) => [r.turn, r.done])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, false],
      [5, true],
    ]);
    expect(replies.slice(0, 4).map((r) => r.message)).toEqual([
      expect.stringMatching(/^Which tasks and checkpoints should I pull out of those messages/),
      expect.stringMatching(/naming conventions/),
      expect.stringMatching(/priority/),
      expect.stringMatching(/mapping/),
    ]);
    expect(replies[4].promptTemplate).toMatch(/^Extract tasks and checkpoints for a freelancer from each email or message\./);
    expect(replies[4].promptTemplate).toContain('Extract checkpoints from each email or message');
  });
});
