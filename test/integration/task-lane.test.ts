import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/** `PUT /chat/sessions/:id/task-lane`: the lane is kept on the session for its owner only, bounded and validated. */
describe('a session’s task lane kept on the server', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
  });
  afterAll(async () => {
    await t.stop();
  });

  async function session(user: TestUser): Promise<string> {
    const chat = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Hello there', tools: 'none' } });
    expect(chat.status).toBe(200);
    return chat.body.sessionId as string;
  }
  const put = (user: TestUser, sessionId: string, lane: unknown) =>
    request('PUT', `${t.api}/chat/sessions/${sessionId}/task-lane`, { token: user.accessToken, body: { lane } });
  const read = async (user: TestUser, sessionId: string) =>
    (await request('GET', `${t.api}/chat/sessions/${sessionId}`, { token: user.accessToken })).body.session.pendingTaskLane;

  const lane = {
    collapsed: true,
    items: [
      { id: 'q1', kind: 'question', text: 'Which model?', answer: 'HP 4250' },
      { id: 'a1', kind: 'action', text: 'Restart the spooler', done: false },
    ],
  };

  test('kept as sent, answered on the session, cleared with null', async () => {
    const user = await registerUser(t.api, 'Lane');
    const sessionId = await session(user);
    expect(await read(user, sessionId)).toBeNull();
    const res = await put(user, sessionId, lane);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sessionId, pendingTaskLane: lane });
    expect(await read(user, sessionId)).toEqual(lane);
    expect((await put(user, sessionId, null)).body.pendingTaskLane).toBeNull();
    expect(await read(user, sessionId)).toBeNull();
  });

  test("another user's session is 404 and unchanged; bad lanes are 400 and write nothing", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const other = await registerUser(t.api, 'Other');
    const sessionId = await session(owner);
    expect((await put(owner, sessionId, lane)).status).toBe(200);
    expect((await put(other, sessionId, { collapsed: false, items: [] })).status).toBe(404);
    expect((await put(owner, 'not-a-uuid', lane)).status).toBe(404);

    const item = (i: number) => ({ id: `i${i}`, kind: 'action', text: `Task ${i}` });
    for (const bad of [
      { collapsed: 'yes', items: [] },
      { collapsed: false, items: Array.from({ length: 51 }, (_, i) => item(i)) },
      { collapsed: false, items: [item(1), item(1)] },
      { collapsed: false, items: [{ ...item(1), kind: 'note' }] },
      { collapsed: false, items: [{ ...item(1), text: 'x'.repeat(1_001) }] },
      { collapsed: false, items: [{ ...item(1), text: '\ud800 lone' }] },
      { collapsed: false, items: [{ ...item(1), extra: 1 }] },
      { collapsed: false },
    ]) {
      const res = await put(owner, sessionId, bad);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect(await read(owner, sessionId)).toEqual(lane);
  });
});
