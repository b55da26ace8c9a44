import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type JsonResponse, type TestUser } from '../support/http';

const ISSUER = 'switchboard';
const AUDIENCE = 'switchboard-api';
const PASSWORD = 'correct horse battery';

describe('auth: register, login, access tokens, refresh rotation', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.stop();
  });

  describe('register', () => {
    test('given a new email, it answers 201 with a free-tier user and a token pair, and never the password hash', async () => {
      const email = uniqueEmail('new');

      const res = await request('POST', `${t.api}/auth/register`, { body: { email, password: PASSWORD, name: 'New' } });

      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(['accessToken', 'refreshToken', 'user']);
      expect(res.body.user).toMatchObject({ id: expect.any(String), email, name: 'New', tier: 'free' });
      expect(res.body.accessToken).toEqual(expect.any(String));
      expect(res.body.refreshToken).toEqual(expect.any(String));
      const text = JSON.stringify(res.body);
      expect(text).not.toMatch(/password|hash|argon2/i);
      expect(text).not.toContain(PASSWORD);
    });

    test('given an email that is taken (in any letter case), it answers 409 email_taken', async () => {
      const user = await registerUser(t.api, 'Taken');

      const same = await request('POST', `${t.api}/auth/register`, { body: { email: user.email, password: PASSWORD, name: 'Again' } });
      const upper = await request('POST', `${t.api}/auth/register`, {
        body: { email: user.email.toUpperCase(), password: PASSWORD, name: 'Again' },
      });

      expectError(same, 409, 'email_taken');
      expectError(upper, 409, 'email_taken');
    });

    test('given a body without a password, it answers 400 naming the field', async () => {
      const res = await request('POST', `${t.api}/auth/register`, { body: { email: uniqueEmail('nopass'), name: 'No pass' } });

      expectError(res, 400, 'validation_failed');
      expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'password' })]));
    });
  });

  describe('login', () => {
    test('given the right password, it answers 200 with the user and a working token pair', async () => {
      const user = await registerUser(t.api, 'Login');

      const res = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: PASSWORD } });

      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['accessToken', 'refreshToken', 'user']);
      expect(res.body.user).toMatchObject({ id: user.id, email: user.email, tier: 'free' });
      expect(JSON.stringify(res.body)).not.toMatch(/password|hash/i);
      expect((await me(res.body.accessToken)).body.user.id).toBe(user.id);
    });

    test('given a wrong password or an unknown email, both answer 401 invalid_credentials, indistinguishably', async () => {
      const user = await registerUser(t.api, 'Wrong');

      const wrongPassword = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: 'not the password' } });
      const unknownEmail = await request('POST', `${t.api}/auth/login`, { body: { email: uniqueEmail('ghost'), password: PASSWORD } });

      expectError(wrongPassword, 401, 'invalid_credentials');
      expectError(unknownEmail, 401, 'invalid_credentials');
      expect(unknownEmail.body).toEqual(wrongPassword.body);
    });
  });

  describe('GET /me and access tokens', () => {
    test('given a valid access token, it answers the caller', async () => {
      const user = await registerUser(t.api, 'Me');

      const res = await me(user.accessToken);

      expect(res.status).toBe(200);
      expect(res.body.user).toMatchObject({ id: user.id, email: user.email, name: 'Me', tier: 'free' });
      expect(JSON.stringify(res.body)).not.toMatch(/password|hash/i);
    });

    test('given no Authorization header, it answers 401', async () => {
      expectError(await request('GET', `${t.api}/me`), 401, 'unauthorized');
    });

    const badTokens: Array<[string, (user: TestUser, secret: string) => Promise<string> | string]> = [
      ['that is garbage', () => 'not-a-jwt'],
      ['of three garbage segments', () => 'aaa.bbb.ccc'],
      ['whose payload was changed (signature kept)', (user) => tamper(user.accessToken, { tier: 'enterprise', role: 'admin' })],
      ['signed with another secret', (user) => sign(user, 'another-secret-another-secret-another-secret-42')],
      ['for another audience', (user, secret) => sign(user, secret, { audience: 'some-other-api' })],
      ['from another issuer', (user, secret) => sign(user, secret, { issuer: 'someone-else' })],
      ['that has expired', (user, secret) => sign(user, secret, { expiresAt: Math.floor(Date.now() / 1000) - 60 })],
      ['without a signature (alg none)', (user) => unsigned(user)],
    ];

    test.each(badTokens)('given a token %s, it answers 401', async (_label, makeToken) => {
      const user = await registerUser(t.api, 'Bad');
      const token = await makeToken(user, t.app.config.auth.jwtSecret!);

      const res = await me(token);

      expectError(res, 401, 'unauthorized');
    });

    test('given a well-formed token signed with the right secret, the forgery helper itself is accepted (control)', async () => {
      const user = await registerUser(t.api, 'Control');

      const res = await me(await sign(user, t.app.config.auth.jwtSecret!));

      expect(res.status).toBe(200);
      expect(res.body.user.id).toBe(user.id);
    });
  });

  describe('refresh', () => {
    test('given a fresh refresh token, it rotates: the new pair works and can be rotated again', async () => {
      const user = await registerUser(t.api, 'Rotate');

      const first = await refresh(user.refreshToken);
      const second = await refresh(first.body.refreshToken);

      expect(first.status).toBe(200);
      expect(Object.keys(first.body).sort()).toEqual(['accessToken', 'refreshToken', 'user']);
      expect(first.body.refreshToken).not.toBe(user.refreshToken);
      expect((await me(first.body.accessToken)).body.user.id).toBe(user.id);
      expect(second.status).toBe(200);
      expect(second.body.refreshToken).not.toBe(first.body.refreshToken);
      expect((await me(second.body.accessToken)).status).toBe(200);
    });

    test('given a refresh token that was already used, it answers 401 refresh_token_reused and revokes the newest token of that family', async () => {
      const user = await registerUser(t.api, 'Reuse');
      const otherSession = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: PASSWORD } });
      const rotated = await refresh(user.refreshToken);
      expect(rotated.status).toBe(200);

      const reused = await refresh(user.refreshToken);
      const newest = await refresh(rotated.body.refreshToken);

      expectError(reused, 401, 'refresh_token_reused');
      expectError(newest, 401);
      // Only the leaked family is revoked: the user's other session still rotates.
      expect((await refresh(otherSession.body.refreshToken)).status).toBe(200);
    });

    test('given an unknown refresh token, it answers 401 invalid_refresh_token', async () => {
      expectError(await refresh('never-issued-token'), 401, 'invalid_refresh_token');
    });
  });

  describe('error bodies', () => {
    test('every error answers exactly {error:{code,message,details?}}', async () => {
      const user = await registerUser(t.api, 'Shape');
      const responses = await Promise.all([
        request('POST', `${t.api}/auth/register`, { body: { email: user.email, password: PASSWORD, name: 'Dup' } }),
        request('POST', `${t.api}/auth/register`, { body: { email: 'not-an-email', password: 'short', name: '' } }),
        request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: 'wrong password' } }),
        request('POST', `${t.api}/auth/refresh`, { body: {} }),
        request('POST', `${t.api}/auth/refresh`, { rawBody: '{"refreshToken":' }),
        request('GET', `${t.api}/me`, { token: 'x' }),
        request('GET', `${t.api}/no-such-route`, { token: user.accessToken }),
      ]);

      expect(responses.map((r) => r.status)).toEqual([409, 400, 401, 400, 400, 401, 404]);
      for (const res of responses) expectError(res, res.status);
    });
  });

  const me = (token: string) => request('GET', `${t.api}/me`, { token });
  const refresh = (refreshToken: string) => request('POST', `${t.api}/auth/refresh`, { body: { refreshToken } });
});

/** Asserts the uniform error shape `{error:{code,message,details?}}` and, when given, the code. */
function expectError(res: JsonResponse, status: number, code?: string) {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body ?? {})).toEqual(['error']);
  const keys = Object.keys(res.body.error);
  expect(keys).toEqual(expect.arrayContaining(['code', 'message']));
  expect(keys.every((key) => ['code', 'message', 'details'].includes(key))).toBe(true);
  expect(typeof res.body.error.code).toBe('string');
  expect(typeof res.body.error.message).toBe('string');
  if (code) expect(res.body.error.code).toBe(code);
}

function uniqueEmail(name: string) {
  return `${name}-${randomUUID().slice(0, 8)}@example.test`;
}

/** An access token for `user` with the server's claim layout, signed as the options say. */
function sign(user: TestUser, secret: string, options: { issuer?: string; audience?: string; expiresAt?: number } = {}) {
  return new SignJWT({ email: user.email, name: user.name, tier: 'free', role: 'user' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user.id)
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? '15m')
    .sign(new TextEncoder().encode(secret));
}

/** Rewrites claims in a real token's payload and keeps its (now wrong) signature. */
function tamper(token: string, claims: Record<string, unknown>) {
  const [header, payload, signature] = token.split('.');
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return [header, Buffer.from(JSON.stringify({ ...decoded, ...claims })).toString('base64url'), signature].join('.');
}

/** A token with `alg: none` and no signature, otherwise valid. */
function unsigned(user: TestUser) {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    sub: user.id,
    email: user.email,
    name: user.name,
    tier: 'free',
    role: 'user',
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now,
    exp: now + 900,
  };
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(payload)}.`;
}
