import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { randomUUID } from 'node:crypto';
import { journeyRunInput, registerJourneyRuns } from '../../src/agents/journey-run';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { createLogger } from '../../src/lib/logger';
import { QueueRegistry } from '../../src/producers/registry';
import { RunKernel } from '../../src/runs/run-kernel';
import { FIRST_QUESTIONS } from '../../src/agents/journey-script';
import { JourneyStore } from '../../src/agents/journey-store';
import { testRedisConnections } from '../support/redis';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { waitUntil } from '../support/wait';

/** Sixty words, each its own streamed piece: with the model's pause per piece, seconds of streaming. */
const LONG_QUESTION = `${Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ')}?`;

/** An answer that says `SLOW` keeps the model streaming; any other gets a short question. */
function responder(req: ChatRequest): ChatTurn {
  const last = [...req.messages].reverse().find((m) => m.role === 'user');
  return /SLOW/.test(last ? messageText(last) : '') ? { text: LONG_QUESTION } : { text: 'Which folders should it read?' };
}

/**
 * Cancelling a journey turn: the answer waiting for its reply. A running turn's model request
 * closes and the waiting request answers `cancelled: true`; the session stays at its question and
 * takes the answer again; ownership and the 409 when nothing waits.
 */
describe('cancelling a journey turn', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 40 });
  }, 120_000);

  afterAll(async () => {
    await t.stop();
  });

  const cancel = (user: TestUser, sessionId: string) =>
    request('POST', `${t.api}/agents/journey/${sessionId}/cancel`, { token: user.accessToken });
  const send = (user: TestUser, sessionId: string, message: string) =>
    request('POST', `${t.api}/agents/journey/message`, { token: user.accessToken, body: { sessionId, message } });

  async function startJourney(name: string) {
    const user = await registerUser(t.api, name);
    const res = await request('POST', `${t.api}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['tasks'] },
    });
    expect(res.status).toBe(201);
    return { user, sessionId: res.body.sessionId as string };
  }

  test('a turn whose model is streaming: 202, the model request closes, the answer comes back `cancelled` and can be sent again', async () => {
    const { user, sessionId } = await startJourney('Journeyer');
    const stranger = await registerUser(t.api, 'Stranger');
    const before = t.llm.requests.length;
    const waiting = send(user, sessionId, 'SLOW markdown meeting notes');
    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat'), 20_000);

    expect((await cancel(stranger, sessionId)).status).toBe(404);
    const answer = await cancel(user, sessionId);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ sessionId, status: 'cancelling' });

    const reply = await waiting;
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ sessionId, message: FIRST_QUESTIONS.local, done: false, turn: 0, cancelled: true });
    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined), 10_000);

    const view = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken });
    expect(view.body).toMatchObject({ turn: 0, messages: [{ role: 'assistant', content: FIRST_QUESTIONS.local }] });
    // The cancelled turn shows: the answer it stopped, and when.
    expect(view.body.cancelledTurns).toEqual([{ turn: 1, answer: 'SLOW markdown meeting notes', cancelledAt: expect.any(String) }]);
    expect(Date.parse(view.body.cancelledTurns[0].cancelledAt)).toBeGreaterThan(Date.now() - 60_000);
    const again = await cancel(user, sessionId);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_running');

    // The same turn answered again is a new attempt: the earlier cancel does not stop it.
    const retried = await send(user, sessionId, 'Markdown meeting notes');
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual({ sessionId, message: 'Which folders should it read?', done: false, turn: 1 });
    // Answered again: the cancelled attempt stays listed, the answer that went through is in the messages.
    const after = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken });
    expect(after.body.cancelledTurns).toHaveLength(1);
    expect(after.body.messages.map((m: { content: string }) => m.content)).toContain('Markdown meeting notes');
    // Answered: nothing waits any more.
    expect((await cancel(user, sessionId)).status).toBe(409);
  }, 60_000);

  test('an unknown session is 404, a session with no answer waiting 409', async () => {
    const { user, sessionId } = await startJourney('Idle');
    expect((await cancel(user, '00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await cancel(user, 'not-a-uuid')).status).toBe(404);
    const idle = await cancel(user, sessionId);
    expect(idle.status).toBe(409);
    expect(idle.body.error).toMatchObject({ code: 'not_running' });
  }, 30_000);

  test('a cancel racing the reply: of the concurrent ends of one attempt exactly one wins, and a cancel that wins drops the answer', async () => {
    const redis = testRedisConnections();
    const logger = createLogger({ level: 'silent' });
    const keyPrefix = `${t.keyPrefix}-race`;
    const queues = new QueueRegistry(redis.queues.command, keyPrefix);
    const signals = new CancelSignals(redis.realtime.command, keyPrefix, logger);
    try {
      await redis.ready();
      const store = new JourneyStore(redis.cache.command, keyPrefix, 60);
      const kernel = new RunKernel({ runs: t.app.repos.runs, queues, signals, logger });
      const runs = registerJourneyRuns(kernel, { repos: t.app.repos, store, queues, logger });
      const user = await registerUser(t.api, 'Racer');
      const sessionId = randomUUID();
      const session = {
        id: sessionId,
        userId: user.id,
        agentType: 'local' as const,
        dataTypes: ['tasks' as const],
        turn: 0,
        done: false,
        messages: [{ role: 'assistant' as const, content: 'What do you keep?' }],
        createdAt: new Date().toISOString(),
      };
      await store.save(session);
      expect(await store.putAnswer(sessionId, 1, 'Markdown notes')).toBe(true);
      const { attempt } = (await store.getAnswer(sessionId, 1))!;
      await runs.create(journeyRunInput(user.id, sessionId, 1, attempt));
      expect((await runs.start(attempt)).started).toBe(true);
      const answered = {
        ...session,
        turn: 1,
        messages: [
          ...session.messages,
          { role: 'user' as const, content: 'Markdown notes' },
          { role: 'assistant' as const, content: 'Where?' },
        ],
      };
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2
            ? runs.end(attempt, { status: 'cancelled' })
            : runs.end(attempt, { status: 'succeeded', result: { session: answered, turn: 1 } }),
        ),
      );
      expect(results.filter((result) => result.won)).toHaveLength(1);
      const winner = results.findIndex((result) => result.won) % 2 ? 'cancelled' : 'succeeded';
      expect((await runs.find(attempt))?.status).toBe(winner);
      // The answer is dropped either way (a reply consumed it, a cancel dropped it); only a reply moves the session on.
      expect(await store.getAnswer(sessionId, 1)).toBeNull();
      expect((await store.get(sessionId))?.turn).toBe(winner === 'succeeded' ? 1 : 0);
    } finally {
      await signals.close();
      await queues.close();
      await redis.quit();
    }
  });
});
