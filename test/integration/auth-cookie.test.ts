import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';
import { request, type JsonResponse } from '../support/http';

const PASSWORD = 'correct horse battery';
const COOKIE_MODE = { 'x-session-cookie': '1' };

/** The `name=value` of the Set-Cookie headers of an answer, with their attributes. */
function setCookies(res: JsonResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of res.headers.getSetCookie()) out[line.slice(0, line.indexOf('='))] = line;
  return out;
}
const valueOf = (line: string) => line.slice(line.indexOf('=') + 1, line.indexOf(';'));

/**
 * The session cookie of the auth routes (decision 0330): with `X-Session-Cookie: 1` the refresh
 * token goes into an HttpOnly, SameSite=Strict cookie scoped to `/api/v1/auth/` and never into the
 * answer; refresh and logout read it only with that header; rotation and reuse detection hold.
 */
describe('auth: the session cookie', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.stop());

  async function signUpWithCookie() {
    const email = `cookie-${randomUUID().slice(0, 8)}@example.test`;
    const res = await request('POST', `${t.api}/auth/register`, {
      body: { email, password: PASSWORD, name: 'Cookie' },
      headers: COOKIE_MODE,
    });
    expect(res.status).toBe(201);
    return { res, email, cookie: setCookies(res).sb_refresh };
  }

  test('register in cookie mode: the refresh token is in an HttpOnly, Strict cookie on the auth path, not in the answer', async () => {
    const { res, cookie } = await signUpWithCookie();
    expect(res.body.refreshToken).toBe('');
    expect(res.body.accessToken).toEqual(expect.any(String));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/api\/v1\/auth\//);
    expect(cookie).not.toMatch(/Secure/); // plain http here; https requests get Secure
    expect(setCookies(res).sb_session).toMatch(/^sb_session=1;/);
  });

  test('login without the header answers as before: tokens in the body, no cookie', async () => {
    const { email } = await signUpWithCookie();
    const res = await request('POST', `${t.api}/auth/login`, { body: { email, password: PASSWORD } });
    expect(res.status).toBe(200);
    expect(res.body.refreshToken.length).toBeGreaterThan(20);
    expect(setCookies(res)).toEqual({});
  });

  test('refresh reads the cookie only with the header, rotates it, and a replayed cookie revokes the session', async () => {
    const { cookie } = await signUpWithCookie();
    const first = valueOf(cookie);
    const withoutHeader = await request('POST', `${t.api}/auth/refresh`, { body: {}, headers: { cookie: `sb_refresh=${first}` } });
    // Without the header the cookie is not even read: the body must name the token.
    expect(withoutHeader).toMatchObject({ status: 400, body: { error: { code: 'validation_failed' } } });

    const rotated = await request('POST', `${t.api}/auth/refresh`, {
      body: {},
      headers: { ...COOKIE_MODE, cookie: `sb_refresh=${first}` },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.refreshToken).toBe('');
    const second = valueOf(setCookies(rotated).sb_refresh);
    expect(second).not.toBe(first);

    const replayed = await request('POST', `${t.api}/auth/refresh`, {
      body: {},
      headers: { ...COOKIE_MODE, cookie: `sb_refresh=${first}` },
    });
    expect(replayed).toMatchObject({ status: 401, body: { error: { code: 'refresh_token_reused' } } });
    // The refused cookie is cleared, and the family is gone: the newer token is refused too.
    expect(setCookies(replayed).sb_refresh).toMatch(/Expires=Thu, 01 Jan 1970/);
    const after = await request('POST', `${t.api}/auth/refresh`, { body: {}, headers: { ...COOKIE_MODE, cookie: `sb_refresh=${second}` } });
    expect(after.status).toBe(401);
  });

  test('a malformed or missing cookie is a 401 and a malformed body a 400, never a 500', async () => {
    for (const cookie of ['sb_refresh=%00%ff', 'sb_refresh=', `sb_refresh=${'a'.repeat(600)}`, 'other=1', '']) {
      const res = await request('POST', `${t.api}/auth/refresh`, { body: {}, headers: { ...COOKIE_MODE, ...(cookie ? { cookie } : {}) } });
      expect({ cookie, status: res.status }).toEqual({ cookie, status: 401 });
    }
    const lone = await request('POST', `${t.api}/auth/refresh`, { rawBody: '{"refreshToken":"\\ud800"}', headers: COOKIE_MODE });
    expect(lone.status).toBe(400);
  });

  test('logout in cookie mode revokes the session and clears both cookies', async () => {
    const { cookie } = await signUpWithCookie();
    const token = valueOf(cookie);
    const out = await request('POST', `${t.api}/auth/logout`, { body: {}, headers: { ...COOKIE_MODE, cookie: `sb_refresh=${token}` } });
    expect(out.status).toBe(204);
    expect(setCookies(out).sb_refresh).toMatch(/Expires=Thu, 01 Jan 1970/);
    expect(setCookies(out).sb_session).toMatch(/Expires=Thu, 01 Jan 1970/);
    const refused = await request('POST', `${t.api}/auth/refresh`, { body: { refreshToken: token } });
    expect(refused.status).toBe(401);
  });
});
