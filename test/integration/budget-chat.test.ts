import { count, eq } from 'drizzle-orm';
import { AdminDirectory } from '../../src/auth/admins';
import { chatMessages, chatSessions, runs } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The budget door at the edge of every chat-like request (chat turns, ticket notes, journey
 * answers, flow chat and the public embed chat): a request within the user's budget runs end to
 * end and its usage shows in GET /usage/budget; once the budget is spent the request is 429
 * `budget_exceeded` with the numbers, and nothing is written or queued. One node (API + worker)
 * on a real PostgreSQL and Redis, with a scripted model.
 */
describe('budget at the edge of chat, notes, journeys and flow chat', () => {
  let t: TestApp;
  let admin: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'What should it look at first?' }) });
    admin = await registerUser(t.api, 'Operator');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
  }, 60_000);

  afterAll(() => t.stop(), 30_000);

  const setLimits = async (user: TestUser, limits: Record<string, number | null>) => {
    const res = await request('PUT', `${t.api}/admin/users/${user.id}/limits`, { token: admin.accessToken, body: { limits } });
    expect(res.status).toBe(200);
  };
  const month = async (user: TestUser) => {
    const res = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
    expect(res.status).toBe(200);
    return (res.body.windows as Array<{ window: string; usedTokens: number; usedRequests: number; reservedTokens: number }>).find(
      (w) => w.window === 'month',
    )!;
  };
  /** What a refused request must leave as it was: the user's sessions, messages and runs, and the model's requests. */
  const footprint = async (user: TestUser) => {
    const { db } = t.app.repos;
    const [sessions] = await db.select({ n: count() }).from(chatSessions).where(eq(chatSessions.userId, user.id));
    const [messages] = await db
      .select({ n: count() })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatMessages.sessionId, chatSessions.id))
      .where(eq(chatSessions.userId, user.id));
    const [ran] = await db.select({ n: count() }).from(runs).where(eq(runs.userId, user.id));
    return { sessions: sessions.n, messages: messages.n, runs: ran.n, modelRequests: t.llm.chatRequests().length };
  };
  const expectSpent = (res: { status: number; body: any }, limit: number) => {
    expect(res.status).toBe(429);
    expect(res.body.error).toEqual(
      expect.objectContaining({
        code: 'budget_exceeded',
        details: { window: 'month', dimension: 'requests', limit, used: limit, reserved: 0, resetsAt: expect.any(String) },
      }),
    );
  };

  test('chat: a turn within the budget answers and is counted; the next one is 429 and writes nothing', async () => {
    const user = await registerUser(t.api, 'Chatter');
    await setLimits(user, { requestsPerMonth: 1 });
    const before = await month(user);
    const chat = (body: Record<string, unknown>) => request('POST', `${t.api}/chat`, { token: user.accessToken, body });

    const answered = await chat({ message: 'Hello there', tools: 'none' });
    expect(answered.status).toBe(200);
    expect(answered.body.response).toBe('What should it look at first?');
    const after = await month(user);
    expect(after.usedRequests).toBe(before.usedRequests + 1);
    expect(after.usedTokens).toBeGreaterThan(before.usedTokens);
    expect(after.reservedTokens).toBe(0);

    const kept = await footprint(user);
    // A new session and a turn in the existing one: both refused before any write.
    expectSpent(await chat({ message: 'And again', tools: 'none' }), 1);
    expectSpent(await chat({ message: 'Once more', tools: 'none', sessionId: answered.body.sessionId }), 1);
    const stream = await request('POST', `${t.api}/chat/stream`, { token: user.accessToken, body: { message: 'Streamed', tools: 'none' } });
    expectSpent(stream, 1);
    expect(await footprint(user)).toEqual(kept);
    expect((await month(user)).reservedTokens).toBe(0);
  }, 30_000);

  test('ticket notes: resolving within the budget writes the notes; past it the resolve is 429 and the session stays as it was', async () => {
    const user = await registerUser(t.api, 'Resolver');
    const open = async (message: string) => {
      const res = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message, tools: 'none' } });
      expect(res.status).toBe(200);
      return res.body.sessionId as string;
    };
    const [first, second] = [await open('My router drops'), await open('My printer jams')];
    // Two turns used; room for exactly one set of notes.
    await setLimits(user, { requestsPerMonth: 3 });
    const before = await month(user);
    expect(before.usedRequests).toBe(2);
    const resolve = (sessionId: string) =>
      request('POST', `${t.api}/chat/sessions/${sessionId}/resolve`, {
        token: user.accessToken,
        body: { resolutionSummary: 'Restarted it.' },
      });

    expect((await resolve(first)).status).toBe(200);
    const notes = await eventually(
      () => request('GET', `${t.api}/chat/sessions/${first}/documentation`, { token: user.accessToken }),
      (res) => res.body.documentationStatus === 'ready' || res.body.documentationStatus === 'failed',
    );
    expect(notes.body.documentationStatus).toBe('ready');
    const after = await month(user);
    expect(after.usedRequests).toBe(3);
    expect(after.usedTokens).toBeGreaterThan(before.usedTokens);

    const kept = await footprint(user);
    expectSpent(await resolve(second), 3);
    const session = await t.app.repos.chat.findOwned(user.id, second);
    expect({ status: session?.status, notes: session?.documentationStatus, summary: session?.resolutionSummary }).toEqual({
      status: 'active',
      notes: null,
      summary: null,
    });
    expect(await footprint(user)).toEqual(kept);
  }, 30_000);

  test('journey: an answer within the budget gets its question; past it the answer is 429 and the journey stays at its turn', async () => {
    const user = await registerUser(t.api, 'Builder');
    await setLimits(user, { requestsPerMonth: 1 });
    const started = await request('POST', `${t.api}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['tasks'] },
    });
    expect(started.status).toBe(201);
    const { sessionId } = started.body;
    const answer = (message: string) =>
      request('POST', `${t.api}/agents/journey/message`, { token: user.accessToken, body: { sessionId, message } });

    const before = await month(user);
    const replied = await answer('My overdue tasks');
    expect(replied.status).toBe(200);
    expect(replied.body).toEqual(expect.objectContaining({ turn: 1, done: false, message: 'What should it look at first?' }));
    const after = await month(user);
    expect(after.usedRequests).toBe(before.usedRequests + 1);
    expect(after.usedTokens).toBeGreaterThan(before.usedTokens);

    const kept = await footprint(user);
    expectSpent(await answer('Only the urgent ones'), 1);
    const view = await request('GET', `${t.api}/agents/journey/${sessionId}`, { token: user.accessToken });
    expect({ turn: view.body.turn, messages: view.body.messages.length }).toEqual({ turn: 1, messages: 3 });
    expect(await footprint(user)).toEqual(kept);
  }, 30_000);

  test('journey: a second model call of a turn refused by the worker ends the answer as 429 budget_exceeded, not a hang', async () => {
    const user = await registerUser(t.api, 'Hasty');
    await setLimits(user, { requestsPerMonth: 1 });
    const started = await request('POST', `${t.api}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['notes'] },
    });
    // The model tries to finish at the first answer: the worker asks it again, a call the budget no longer has room for.
    t.llm.push({ toolCalls: [{ name: 'finish_configuration', args: { promptTemplate: 'x' } }] });
    const res = await request('POST', `${t.api}/agents/journey/message`, {
      token: user.accessToken,
      body: { sessionId: started.body.sessionId, message: 'My notes' },
    });
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('budget_exceeded');
    expect(res.body.error.message).toMatch(/monthly requests budget is spent/);
    expect((await month(user)).reservedTokens).toBe(0);
  }, 30_000);

  test('flow chat and embed chat: the owner’s budget admits the turn; once spent both are 429 and write nothing', async () => {
    const owner = await registerUser(t.api, 'Owner');
    await setLimits(owner, { requestsPerMonth: 1 });
    const created = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'Answer briefly.' } },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    const embed = await request('POST', `${t.api}/flows/${flowId}/embeds`, {
      token: owner.accessToken,
      body: { allowedOrigins: ['https://shop.example'] },
    });
    expect(embed.status).toBe(201);
    const flowChat = (message: string) => request('POST', `${t.api}/flows/${flowId}/chat`, { token: owner.accessToken, body: { message } });
    const publicChat = (message: string) =>
      request('POST', `${t.api}/embed/public/${embed.body.embedToken}/chat`, {
        body: { message },
        headers: { origin: 'https://shop.example' },
      });

    const before = await month(owner);
    const answered = await flowChat('Hi flow');
    expect(answered.status).toBe(200);
    expect(answered.body.response).toBe('What should it look at first?');
    const after = await month(owner);
    expect(after.usedRequests).toBe(before.usedRequests + 1);
    expect(after.usedTokens).toBeGreaterThan(before.usedTokens);

    const kept = await footprint(owner);
    expectSpent(await flowChat('Hi again'), 1);
    const visitor = await publicChat('Hello from a visitor');
    expect(visitor.status).toBe(429);
    expect(visitor.body.error.code).toBe('budget_exceeded');
    // A visitor learns the widget is out of budget, not the owner's figures.
    expect(visitor.body.error.details).toBeUndefined();
    expect(visitor.body.error.message).not.toMatch(/\d/);
    expect(await footprint(owner)).toEqual(kept);
  }, 30_000);
});
