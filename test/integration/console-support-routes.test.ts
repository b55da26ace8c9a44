import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * What the web console reads besides the core routes: the assistant's own conversations apart from
 * chatflow sessions (`GET /chat/sessions?kind=`), the models a flow may name (`GET /models`),
 * an embed's origins changed in place (`PATCH /flows/:id/embeds/:embedId`) and the embed preview
 * page's policy. Real server, scripted model, Redis and PostgreSQL.
 */
describe('routes the console uses', () => {
  let t: TestApp;
  let owner: TestUser;
  let other: TestUser;
  let flowId: string;

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'Fine, thanks.' }) });
    owner = await registerUser(t.api, 'Owner');
    other = await registerUser(t.api, 'Other');
    const flow = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'You help.' } },
    });
    flowId = flow.body.flow.id;
  });

  afterAll(() => t.stop());

  const get = (user: TestUser, path: string) => request('GET', `${t.api}${path}`, { token: user.accessToken });

  test('?kind=assistant lists the assistant conversations only, ?kind=flow the chatflow ones, none both; a bad kind is 400', async () => {
    const plain = await request('POST', `${t.api}/chat`, { token: owner.accessToken, body: { message: 'Hello assistant', tools: 'none' } });
    expect(plain.status).toBe(200);
    const flowChat = await request('POST', `${t.api}/flows/${flowId}/chat`, { token: owner.accessToken, body: { message: 'Hello flow' } });
    expect(flowChat.status).toBe(200);
    const ids = (res: { body: { sessions: Array<{ id: string }> } }) => res.body.sessions.map((s) => s.id);

    expect(ids(await get(owner, '/chat/sessions?kind=assistant'))).toEqual([plain.body.sessionId]);
    expect(ids(await get(owner, '/chat/sessions?kind=flow'))).toEqual([flowChat.body.sessionId]);
    expect(new Set(ids(await get(owner, '/chat/sessions')))).toEqual(new Set([plain.body.sessionId, flowChat.body.sessionId]));
    // Pages of one kind follow each other by cursor without the other kind.
    const first = await get(owner, '/chat/sessions?kind=assistant&limit=1');
    expect(first.body.nextCursor).toBeNull();
    const bad = await get(owner, '/chat/sessions?kind=everything');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    // Someone else's list stays empty whatever the kind.
    expect(ids(await get(other, '/chat/sessions?kind=flow'))).toEqual([]);
  });

  test('GET /models lists the configured provider:model pairs; it needs a signed-in user', async () => {
    const res = await get(owner, '/models');
    expect(res.status).toBe(200);
    expect(res.body.models).toEqual([{ provider: 'scripted', model: 'scripted-model' }]);
    expect((await request('GET', `${t.api}/models`)).status).toBe(401);
  });

  test("PATCH an embed replaces its origins at once; bad origins are 400 and change nothing; another user's embed is 404", async () => {
    const created = await request('POST', `${t.api}/flows/${flowId}/embeds`, {
      token: owner.accessToken,
      body: { allowedOrigins: ['https://old.example.com'] },
    });
    expect(created.status).toBe(201);
    const { embedId, embedToken } = created.body;
    const publicChat = (origin: string) =>
      request('POST', `${t.api}/embed/public/${embedToken}/chat`, { body: { message: 'hi' }, headers: { origin } });
    expect((await publicChat('https://new.example.com')).status).toBe(403);

    const patch = (user: TestUser, body: unknown, id = embedId) =>
      request('PATCH', `${t.api}/flows/${flowId}/embeds/${id}`, { token: user.accessToken, body });
    const changed = await patch(owner, { allowedOrigins: ['https://new.example.com', 'https://new.example.com'] });
    expect(changed.status).toBe(200);
    expect(changed.body.embed).toMatchObject({ embedId, flowId, allowedOrigins: ['https://new.example.com'] });
    expect((await publicChat('https://new.example.com')).status).toBe(200);
    expect((await publicChat('https://old.example.com')).status).toBe(403);

    for (const body of [{ allowedOrigins: [] }, { allowedOrigins: ['https://x.example.com/path'] }, { allowedOrigins: ['*'] }, {}]) {
      const res = await patch(owner, body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await patch(other, { allowedOrigins: ['https://evil.example.com'] })).status).toBe(404);
    expect((await patch(owner, { allowedOrigins: ['https://a.example.com'] }, '00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const listed = await get(owner, `/flows/${flowId}/embeds`);
    expect(listed.body.embeds.find((e: { embedId: string }) => e.embedId === embedId).allowedOrigins).toEqual(['https://new.example.com']);
  });

  test('the embed preview page may be framed by the console only and allows the widget its inline styles', async () => {
    const res = await fetch(`${t.url}/console/embed-preview.html`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-ancestors 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).toContain("script-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    // The console itself still refuses every frame.
    expect((await fetch(`${t.url}/`)).headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });
});
