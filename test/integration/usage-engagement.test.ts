import { randomUUID } from 'node:crypto';
import { AdminDirectory } from '../../src/auth/admins';
import { chatMessages, chatSessions, flowEmbeds, flows, flowVersions } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/** `GET /usage/engagement`: satisfaction rate, messages per session and daily active users from real sessions and ratings. */
describe('GET /usage/engagement', () => {
  let t: TestApp;
  let ada: TestUser;
  let bea: TestUser;
  let admin: TestUser;

  type Message = { role: 'user' | 'assistant' | 'tool'; at: string; rating?: 'up' | 'down'; ratedAt?: string };

  /** A session of `user` holding `messages` (created at their `at`, rated as given). */
  async function session(user: TestUser, messages: Message[], embedId?: string) {
    const [row] = await t.app.repos.db
      .insert(chatSessions)
      .values({ userId: user.id, title: 'talk', mode: embedId ? 'flow' : 'none', embedId })
      .returning({ id: chatSessions.id });
    await t.app.repos.db.insert(chatMessages).values(
      messages.map((message) => ({
        sessionId: row.id,
        role: message.role,
        content: `${message.role} at ${message.at}`,
        createdAt: new Date(message.at),
        rating: message.rating,
        ratedAt: message.ratedAt ? new Date(message.ratedAt) : undefined,
      })),
    );
    return row.id;
  }

  beforeAll(async () => {
    t = await startTestApp();
    [ada, bea, admin] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea'), registerUser(t.api, 'Root')]);
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    // Ada: two sessions, on Jan 1 and Jan 2; one answer rated up, one down, one up.
    await session(ada, [
      { role: 'user', at: '2026-01-01T09:00:00Z' },
      { role: 'tool', at: '2026-01-01T09:00:01Z' },
      { role: 'assistant', at: '2026-01-01T09:00:02Z', rating: 'up', ratedAt: '2026-01-01T10:00:00Z' },
      { role: 'user', at: '2026-01-01T23:59:59Z' },
      { role: 'assistant', at: '2026-01-02T00:00:01Z', rating: 'down', ratedAt: '2026-01-02T08:00:00Z' },
    ]);
    await session(ada, [
      { role: 'user', at: '2026-01-02T12:00:00Z' },
      { role: 'assistant', at: '2026-01-02T12:00:03Z', rating: 'up', ratedAt: '2026-01-02T12:05:00Z' },
    ]);
    // Bea: one session on Jan 2, rated once in the range and once before it; a message after the range.
    await session(bea, [
      { role: 'user', at: '2026-01-02T07:00:00Z' },
      { role: 'assistant', at: '2026-01-02T07:00:02Z', rating: 'up', ratedAt: '2026-01-03T09:00:00Z' },
      { role: 'user', at: '2026-01-02T07:10:00Z' },
      { role: 'assistant', at: '2026-01-02T07:10:02Z' },
    ]);
    await session(bea, [
      { role: 'user', at: '2025-12-31T22:00:00Z' },
      { role: 'assistant', at: '2025-12-31T22:00:02Z', rating: 'down', ratedAt: '2025-12-31T23:00:00Z' },
      { role: 'user', at: '2026-01-04T00:00:00Z' },
    ]);
    // A visitor of Bea's public chat widget on Jan 3: her session by ownership, not her activity.
    const [flow] = await t.app.repos.db
      .insert(flows)
      .values({ userId: bea.id, type: 'chatflow', name: 'widget', definition: {} })
      .returning({ id: flows.id });
    await t.app.repos.db.insert(flowVersions).values({ flowId: flow.id, version: 1, definition: {} });
    const [embed] = await t.app.repos.db
      .insert(flowEmbeds)
      .values({ flowId: flow.id, userId: bea.id, tokenHash: randomUUID(), allowedOrigins: ['https://example.com'], flowVersion: 1 })
      .returning({ id: flowEmbeds.id });
    await session(
      bea,
      [
        { role: 'user', at: '2026-01-03T10:00:00Z' },
        { role: 'assistant', at: '2026-01-03T10:00:02Z' },
      ],
      embed.id,
    );
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  const get = (user: TestUser | null, query: string) => request('GET', `${t.api}/usage/engagement${query}`, { token: user?.accessToken });

  test("a user's own figures: satisfaction from their ratings, messages per session, their active days", async () => {
    const res = await get(ada, '?from=2026-01-01&to=2026-01-03');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      from: '2026-01-01',
      to: '2026-01-03',
      satisfaction: { up: 2, down: 1, rate: 2 / 3 },
      // Tool results are not messages: 4 + 2 in two sessions.
      messages: { messages: 6, sessions: 2, perSession: 3 },
      dailyActiveUsers: [
        { day: '2026-01-01', users: 1 },
        { day: '2026-01-02', users: 1 },
      ],
      averageDailyActiveUsers: 2 / 3,
    });
    // Bea: the rating made before the range and the message after it do not count; nor does the widget's visitor.
    expect((await get(bea, '?from=2026-01-01&to=2026-01-03')).body).toEqual({
      from: '2026-01-01',
      to: '2026-01-03',
      satisfaction: { up: 1, down: 0, rate: 1 },
      messages: { messages: 4, sessions: 1, perSession: 4 },
      dailyActiveUsers: [{ day: '2026-01-02', users: 1 }],
      averageDailyActiveUsers: 1 / 3,
    });
  });

  test('an admin with all=true sees everyone: two active users on Jan 2', async () => {
    const res = await get(admin, '?from=2026-01-01&to=2026-01-03&all=true');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      from: '2026-01-01',
      to: '2026-01-03',
      satisfaction: { up: 3, down: 1, rate: 0.75 },
      messages: { messages: 10, sessions: 3, perSession: 10 / 3 },
      dailyActiveUsers: [
        { day: '2026-01-01', users: 1 },
        { day: '2026-01-02', users: 2 },
      ],
      averageDailyActiveUsers: 1,
    });
  });

  test('a range without activity has null rates, not a division by zero', async () => {
    expect((await get(ada, '?from=2025-06-01&to=2025-06-02')).body).toEqual({
      from: '2025-06-01',
      to: '2025-06-02',
      satisfaction: { up: 0, down: 0, rate: null },
      messages: { messages: 0, sessions: 0, perSession: null },
      dailyActiveUsers: [],
      averageDailyActiveUsers: 0,
    });
  });

  test('a rating given through the API today counts in today’s figures', async () => {
    const user = await registerUser(t.api, 'Rater');
    t.llm.push({ text: 'Here is an answer.' });
    const chat = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'hello', tools: 'none' } });
    expect(chat.status).toBe(200);
    const history = await request('GET', `${t.api}/chat/sessions/${chat.body.sessionId}/history`, { token: user.accessToken });
    const answer = history.body.messages.find((m: { role: string }) => m.role === 'assistant');
    const rated = await request('PUT', `${t.api}/chat/sessions/${chat.body.sessionId}/messages/${answer.id}/rating`, {
      token: user.accessToken,
      body: { rating: 'down', comment: 'not helpful' },
    });
    expect(rated.status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    const res = await get(user, `?from=${today}&to=${today}`);
    expect(res.body).toMatchObject({
      satisfaction: { up: 0, down: 1, rate: 0 },
      messages: { messages: 2, sessions: 1, perSession: 2 },
      dailyActiveUsers: [{ day: today, users: 1 }],
      averageDailyActiveUsers: 1,
    });
  });

  test('bad input: all=true by a non-admin is 403, from after to and a bad day are 400, no token is 401', async () => {
    const forbidden = await get(ada, '?all=true');
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('forbidden');
    expect((await get(ada, '?from=2026-01-03&to=2026-01-01')).status).toBe(400);
    const badDay = await get(ada, '?from=2026-02-30&to=2026-03-01');
    expect(badDay.status).toBe(400);
    expect(badDay.body.error.code).toBe('validation_failed');
    expect((await get(ada, '?from=2024-01-01&to=2026-01-01')).status).toBe(400);
    expect((await get(ada, '?days=3')).status).toBe(400);
    expect((await get(null, '')).status).toBe(401);
  });
});
