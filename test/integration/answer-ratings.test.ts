import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/** `PUT /chat/sessions/:id/messages/:messageId/rating`: the owner's thumbs up or down on an assistant answer. */
describe('rating an assistant answer', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
  });
  afterAll(async () => {
    await t.stop();
  });

  /** A finished turn: its session, its user message and the assistant's answer. */
  async function turn(user: TestUser, message: string) {
    const chat = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message, tools: 'none' } });
    expect(chat.status).toBe(200);
    const sessionId = chat.body.sessionId as string;
    const messages = await history(user, sessionId);
    const question = messages.find((m: { role: string }) => m.role === 'user');
    const answer = messages.find((m: { role: string }) => m.role === 'assistant');
    expect(answer).toBeDefined();
    return { sessionId, questionId: question.id as string, answerId: answer.id as string };
  }
  const history = async (user: TestUser, sessionId: string) => {
    const res = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(res.status).toBe(200);
    return res.body.messages;
  };
  const rate = (user: TestUser, sessionId: string, messageId: string, body: unknown) =>
    request('PUT', `${t.api}/chat/sessions/${sessionId}/messages/${messageId}/rating`, { token: user.accessToken, body });
  const ratingOf = async (user: TestUser, sessionId: string, messageId: string) =>
    (await history(user, sessionId)).find((m: { id: string }) => m.id === messageId).rating;

  test('a rating is kept, comes back with the history, and rating again replaces it', async () => {
    const user = await registerUser(t.api, 'Rater');
    const { sessionId, questionId, answerId } = await turn(user, 'How do I restart the print spooler?');
    expect(await ratingOf(user, sessionId, answerId)).toBeNull();

    const up = await rate(user, sessionId, answerId, { rating: 'up', comment: '  Spot on  ' });
    expect(up.status).toBe(200);
    expect(up.body).toEqual({ sessionId, messageId: answerId, rating: { rating: 'up', comment: 'Spot on', ratedAt: expect.any(String) } });
    expect(await ratingOf(user, sessionId, answerId)).toEqual(up.body.rating);
    expect(await ratingOf(user, sessionId, questionId)).toBeNull();

    const down = await rate(user, sessionId, answerId, { rating: 'down' });
    expect(down.status).toBe(200);
    expect(down.body.rating).toMatchObject({ rating: 'down', comment: null });
    expect(await ratingOf(user, sessionId, answerId)).toMatchObject({ rating: 'down', comment: null });
  });

  test("another user's answer, a user message and a missing answer are 404 and write nothing", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const other = await registerUser(t.api, 'Other');
    const { sessionId, questionId, answerId } = await turn(owner, 'Why is the VPN slow?');
    const otherTurn = await turn(other, 'Where is my mailbox?');

    expect((await rate(other, sessionId, answerId, { rating: 'down' })).status).toBe(404);
    // The other user's own session with the owner's answer id: the answer is not of that session.
    expect((await rate(other, otherTurn.sessionId, answerId, { rating: 'down' })).status).toBe(404);
    expect((await rate(owner, sessionId, questionId, { rating: 'up' })).status).toBe(404);
    expect((await rate(owner, sessionId, crypto.randomUUID(), { rating: 'up' })).status).toBe(404);
    const malformed = await rate(owner, sessionId, 'not-a-uuid', { rating: 'up' });
    expect(malformed.status).toBe(404);
    expect(malformed.body.error.code).toBe('not_found');
    expect(await ratingOf(owner, sessionId, answerId)).toBeNull();
    expect(await ratingOf(owner, sessionId, questionId)).toBeNull();
  });

  test('a bad body is 400 and keeps the earlier rating', async () => {
    const user = await registerUser(t.api, 'Strict');
    const { sessionId, answerId } = await turn(user, 'Reset my password please');
    expect((await rate(user, sessionId, answerId, { rating: 'up', comment: 'kept' })).status).toBe(200);
    for (const bad of [
      {},
      { rating: 'meh' },
      { rating: 1 },
      { rating: 'down', comment: 'x'.repeat(2_001) },
      { rating: 'down', comment: 42 },
      { rating: 'down', comment: '\ud800 lone' },
      { rating: 'down', comment: 'nul \u0000 inside' },
      { rating: 'down', extra: true },
    ]) {
      const res = await rate(user, sessionId, answerId, bad);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toMatch(/^(validation_failed|invalid_text)$/);
    }
    expect(await ratingOf(user, sessionId, answerId)).toMatchObject({ rating: 'up', comment: 'kept' });
  });

  test('the rating is in the account export', async () => {
    const user = await registerUser(t.api, 'Exporter');
    const { sessionId, answerId } = await turn(user, 'Install the printer driver');
    expect((await rate(user, sessionId, answerId, { rating: 'down', comment: 'Wrong driver' })).status).toBe(200);
    const res = await request('GET', `${t.api}/me/export`, { token: user.accessToken });
    expect(res.status).toBe(200);
    const session = res.body.chatSessions.find((s: { id: string }) => s.id === sessionId);
    const answer = session.messages.find((m: { id: string }) => m.id === answerId);
    expect(answer).toMatchObject({ rating: 'down', ratingComment: 'Wrong driver', ratedAt: expect.any(String) });
  });
});
