import { randomBytes } from 'node:crypto';
import { CredentialVault } from '../../src/agents/credentials';
import { SecretBox } from '../../src/connectors/secret-box';
import { startTestApp, type TestApp } from '../support/app';
import { startFakeGoogle, type FakeGoogle } from '../support/fake-google';
import { startFakeMicrosoft, type FakeMicrosoft } from '../support/fake-microsoft';
import { registerUser, request, type TestUser } from '../support/http';
import { providerEnv } from '../support/provider-env';

/**
 * What a provider (or whoever wrote the callback's query) says never reaches the client as it is:
 * OAuth callback and refresh failures answer a code and a fixed message, and the log keeps a
 * redacted cause. The server's client secrets are wrong here, so the local fake Google and
 * Microsoft token endpoints refuse every exchange with their own error text.
 */
describe('OAuth errors are a code and a fixed message', () => {
  let t: TestApp;
  let google: FakeGoogle;
  let microsoft: FakeMicrosoft;
  let user: TestUser;
  const key = randomBytes(32).toString('base64');
  const logs: string[] = [];

  beforeAll(async () => {
    [google, microsoft] = await Promise.all([startFakeGoogle(), startFakeMicrosoft()]);
    t = await startTestApp({
      env: {
        OAUTH_ENCRYPTION_KEY: key,
        ...providerEnv(google, microsoft),
        GOOGLE_CLIENT_SECRET: 'stale-secret',
        MS_CLIENT_SECRET: 'stale-secret',
      },
      logs: (line) => logs.push(line),
      logLevel: 'info',
    });
    user = await registerUser(t.api, 'Oauth');
  }, 120_000);
  afterAll(async () => {
    await t.stop();
    await Promise.all([google.close(), microsoft.close()]);
  }, 60_000);

  const providerWords = /invalid_client|AADSTS|client was not found|token endpoint|<img|onerror/i;

  test('a callback error parameter is not reflected', async () => {
    const res = await request('GET', `${t.api}/oauth/gmail/callback?error=${encodeURIComponent('<img src=x onerror=alert(1)>')}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('oauth_denied');
    expect(res.body.error.message).not.toMatch(providerWords);
    expect(logs.some((line) => line.includes('<img'))).toBe(false);
  });

  test.each(['gmail', 'outlook'] as const)(
    '%s: a code exchange the token endpoint refuses is 502 with a fixed message; the log keeps a redacted cause',
    async (provider) => {
      const authorize = await request('GET', `${t.api}/oauth/${provider}/authorize`, { token: user.accessToken });
      expect(authorize.status).toBe(200);
      const consent = new URL(authorize.body.url);
      const cookie = authorize.headers
        .getSetCookie()
        .map((line) => line.split(';')[0])
        .join('; ');
      const fake = provider === 'gmail' ? google : microsoft;
      const code = fake.issueCode({ redirectUri: consent.searchParams.get('redirect_uri')! });
      const res = await request(
        'GET',
        `${t.api}/oauth/${provider}/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(consent.searchParams.get('state')!)}`,
        { headers: { cookie } },
      );
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe('provider_unavailable');
      expect(res.body.error.message).not.toMatch(providerWords);
      const logged = logs.filter((line) => line.includes('oauth code exchange failed')).map((line) => JSON.parse(line));
      expect(logged).toContainEqual(expect.objectContaining({ provider, cause: 'ConnectorError', status: 401 }));
    },
  );

  test('a refresh the token endpoint refuses is 502 with a fixed message', async () => {
    const vault = new CredentialVault(new SecretBox(key), t.app.repos);
    const credentialId = await vault.store(user.id, 'gmail', {
      accessToken: 'ya29.old',
      refreshToken: 'rt-old',
      expiresAt: Date.now() - 1000,
    });
    const res = await request('POST', `${t.api}/oauth/gmail/refresh`, { token: user.accessToken, body: { credentialId } });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('provider_unavailable');
    expect(res.body.error.message).not.toMatch(providerWords);
    expect(logs.some((line) => line.includes('oauth token refresh failed'))).toBe(true);
  });
});
