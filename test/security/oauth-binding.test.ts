import { randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';
import { startFakeGoogle, type FakeGoogle } from '../support/fake-google';
import { startFakeMicrosoft, type FakeMicrosoft } from '../support/fake-microsoft';
import { registerUser, request, type TestUser } from '../support/http';
import { providerEnv } from '../support/provider-env';

/**
 * OAuth login CSRF: the `state` of an authorization flow is bound to the
 * browser that started it by an HttpOnly cookie, so a victim who completes an attacker's consent
 * URL does not attach the victim's mailbox to the attacker's agent.
 */
describe('security: OAuth state is bound to the browser that started the flow', () => {
  let t: TestApp;
  let google: FakeGoogle;
  let microsoft: FakeMicrosoft;

  beforeAll(async () => {
    [google, microsoft] = await Promise.all([startFakeGoogle(), startFakeMicrosoft()]);
    t = await startTestApp({ env: { OAUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ...providerEnv(google, microsoft) } });
  }, 120_000);
  afterAll(async () => {
    await t.stop();
    await Promise.all([google.close(), microsoft.close()]);
  }, 60_000);

  /** A browser: what `authorize` set in it, and the consent URL it was sent to. */
  async function startFlow(user: TestUser, provider: 'gmail' | 'outlook') {
    const agent = await request('POST', `${t.api}/agents/cloud`, {
      token: user.accessToken,
      body: { provider, name: `${provider} agent`, dataTypes: ['tasks'], promptTemplate: 'Extract tasks.' },
    });
    expect(agent.status).toBe(201);
    const authorize = await request('GET', `${t.api}/oauth/${provider}/authorize?agentId=${agent.body.id}`, { token: user.accessToken });
    expect(authorize.status).toBe(200);
    const setCookies = authorize.headers.getSetCookie();
    const consent = new URL(authorize.body.url);
    return {
      agentId: agent.body.id as string,
      setCookies,
      cookie: setCookies.map((line) => line.split(';')[0]).join('; '),
      state: consent.searchParams.get('state')!,
      redirectUri: consent.searchParams.get('redirect_uri')!,
    };
  }
  const callback = (provider: string, code: string, state: string, cookie?: string) =>
    request('GET', `${t.api}/oauth/${provider}/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, {
      headers: cookie ? { cookie } : {},
    });
  const agentOf = async (user: TestUser, agentId: string) =>
    (await request('GET', `${t.api}/agents/cloud/${agentId}`, { token: user.accessToken })).body;

  test('authorize sets an HttpOnly, SameSite=Lax binding cookie scoped to the OAuth routes, and keeps it out of the JSON', async () => {
    const user = await registerUser(t.api, 'Cookie');
    const flow = await startFlow(user, 'gmail');

    expect(flow.setCookies).toHaveLength(1);
    const attributes = flow.setCookies[0].split(';').map((part) => part.trim().toLowerCase());
    expect(attributes[0]).toMatch(/^sb_oauth_[0-9a-f]{16}=[a-z0-9_-]{43}$/);
    expect(attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/api/v1/oauth/', 'max-age=600']));
    expect(attributes).not.toContain('secure'); // the test app's PUBLIC_URL is http
    expect(flow.state).not.toContain(flow.cookie.split('=')[1]);
  });

  test('a victim completing the attacker’s consent URL connects nothing: 400 invalid_state, the attacker’s agent stays unconnected, no credential is stored', async () => {
    const attacker = await registerUser(t.api, 'Attacker');
    const victim = await registerUser(t.api, 'Victim');
    const attackersFlow = await startFlow(attacker, 'gmail');
    // The victim has a flow of their own going in their browser: its cookie is no key to the attacker's state.
    const victimsFlow = await startFlow(victim, 'gmail');

    const victimsCode = google.issueCode({ redirectUri: attackersFlow.redirectUri, accessToken: 'ya29.victim-mailbox' });
    const withoutCookie = await callback('gmail', victimsCode, attackersFlow.state);
    const withOwnCookie = await callback('gmail', victimsCode, attackersFlow.state, victimsFlow.cookie);
    const forgedCookie = await callback(
      'gmail',
      victimsCode,
      attackersFlow.state,
      `${attackersFlow.cookie.split('=')[0]}=${'A'.repeat(43)}`,
    );

    for (const res of [withoutCookie, withOwnCookie, forgedCookie]) {
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_state');
    }
    expect(await agentOf(attacker, attackersFlow.agentId)).toMatchObject({ connected: false });
    expect(await t.app.repos.agents.credentialCiphertexts(attacker.id)).toEqual([]);
    expect(google.requests.filter((r) => r.path === '/token' && r.form?.code === victimsCode)).toEqual([]);
  });

  test('the browser that started the flow completes it (and the cookie is cleared); two flows in one browser both work', async () => {
    const user = await registerUser(t.api, 'Owner');
    const gmail = await startFlow(user, 'gmail');
    const outlook = await startFlow(user, 'outlook');
    // The browser's cookie jar: both flows' cookies, updated by every Set-Cookie it receives.
    const jar = new Map<string, string>();
    const keep = (setCookies: string[]) => {
      for (const line of setCookies) {
        const [pair] = line.split(';');
        const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
        if (value === '' || /expires=thu, 01 jan 1970/i.test(line)) jar.delete(name);
        else jar.set(name, value);
      }
    };
    const cookieHeader = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    keep(gmail.setCookies);
    keep(outlook.setCookies);

    const first = await callback('gmail', google.issueCode({ redirectUri: gmail.redirectUri }), gmail.state, cookieHeader());
    keep(first.headers.getSetCookie());
    const second = await callback('outlook', microsoft.issueCode({ redirectUri: outlook.redirectUri }), outlook.state, cookieHeader());
    keep(second.headers.getSetCookie());

    expect(first.status).toBe(200);
    expect(first.body).toEqual({ connected: true, credentialId: expect.any(String), provider: 'gmail', agentId: gmail.agentId });
    expect(second.status).toBe(200);
    expect(jar.size).toBe(0);
    expect(second.body).toMatchObject({ connected: true, agentId: outlook.agentId });
  });
});
