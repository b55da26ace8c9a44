import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { hashRefreshToken } from '../../src/auth/tokens';
import { rowsOf } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { request, type JsonResponse } from '../support/http';

const PASSWORD = 'correct horse battery';
const COOKIE_MODE = { 'x-session-cookie': '1' };

/** A client as the server tells them apart: its user agent and (through the trusted proxy) address. */
type Client = { 'user-agent': string; 'x-forwarded-for': string };
const browser = (): Client => ({ 'user-agent': `Browser/${randomUUID().slice(0, 6)}`, 'x-forwarded-for': '203.0.113.10' });

const cookieOf = (res: JsonResponse) => {
  const line = res.headers.getSetCookie().find((cookie) => cookie.startsWith('sb_refresh='));
  return line?.slice('sb_refresh='.length, line.indexOf(';'));
};

/**
 * The reuse grace: a page that reloads while its refresh is in flight never stores the rotated
 * token and presents the old one again. Within REFRESH_REUSE_GRACE_SECONDS, from the client the
 * token was issued to, that gets a new pair in the same session; from anyone else, after the
 * window, or for a token older than the last rotation, it is reuse and the session is revoked. The
 * family never holds two live tokens.
 */
describe('refresh tokens: the reuse grace for the same client', () => {
  let t: TestApp;

  beforeAll(async () => {
    // TRUST_PROXY loopback: the test's X-Forwarded-For is the client's address.
    t = await startTestApp({ env: { REFRESH_REUSE_GRACE_SECONDS: '5', TRUST_PROXY: 'loopback' } });
  });
  afterAll(() => t?.stop());

  async function signUp(client: Client, cookie = false) {
    const email = `grace-${randomUUID().slice(0, 8)}@example.test`;
    const res = await request('POST', `${t.api}/auth/register`, {
      body: { email, password: PASSWORD, name: 'Grace' },
      headers: { ...client, ...(cookie ? COOKIE_MODE : {}) },
    });
    expect(res.status).toBe(201);
    return { accessToken: res.body.accessToken as string, refreshToken: cookie ? cookieOf(res)! : (res.body.refreshToken as string) };
  }

  const refresh = (client: Client, refreshToken: string) =>
    request('POST', `${t.api}/auth/refresh`, { body: { refreshToken }, headers: client });
  const refreshCookie = (client: Client, cookie: string) =>
    request('POST', `${t.api}/auth/refresh`, { body: {}, headers: { ...client, ...COOKIE_MODE, cookie: `sb_refresh=${cookie}` } });
  const me = (accessToken: string) => request('GET', `${t.api}/me`, { token: accessToken });

  /** The family of a refresh token: how many of its tokens are live, and whether it was revoked. */
  async function family(refreshToken: string) {
    const rows = await t.app.repos.db.execute<{ live: number; revoked: number }>(sql`
      select count(*) filter (where used_at is null and revoked_at is null)::int as live,
             count(*) filter (where revoked_at is not null)::int as revoked
      from refresh_tokens
      where family_id = (select family_id from refresh_tokens where token_hash = ${hashRefreshToken(refreshToken)})`);
    return rowsOf<{ live: number; revoked: number }>(rows)[0];
  }
  const rotatedAgo = (refreshToken: string, seconds: number) =>
    t.app.repos.db.execute(
      sql`update refresh_tokens set used_at = now() - make_interval(secs => ${seconds}) where token_hash = ${hashRefreshToken(refreshToken)}`,
    );

  test('body: the just-rotated token from the same client gets a new pair in the session; its lost successor retires', async () => {
    const client = browser();
    const session = await signUp(client);
    const rotated = await refresh(client, session.refreshToken);
    expect(rotated.status).toBe(200);

    // The answer was lost: the client presents the old token again.
    const again = await refresh(client, session.refreshToken);
    expect(again.status).toBe(200);
    expect(again.body.refreshToken).not.toBe(rotated.body.refreshToken);
    expect(await family(session.refreshToken)).toEqual({ live: 1, revoked: 0 });
    expect((await me(session.accessToken)).status).toBe(200);
    expect((await me(again.body.accessToken)).status).toBe(200);

    // The chain goes on from the new token.
    const next = await refresh(client, again.body.refreshToken);
    expect(next.status).toBe(200);
    expect(await family(session.refreshToken)).toEqual({ live: 1, revoked: 0 });
  });

  test('cookie: a reload that presents the old cookie gets a new one; the session lives on', async () => {
    const client = browser();
    const session = await signUp(client, true);
    const rotated = await refreshCookie(client, session.refreshToken);
    expect(rotated.status).toBe(200);
    expect(cookieOf(rotated)).toEqual(expect.any(String));

    const reloaded = await refreshCookie(client, session.refreshToken);
    expect(reloaded.status).toBe(200);
    expect(reloaded.body.refreshToken).toBe('');
    const fresh = cookieOf(reloaded)!;
    expect(fresh).not.toBe(cookieOf(rotated));
    expect((await refreshCookie(client, fresh)).status).toBe(200);
    expect(await family(session.refreshToken)).toEqual({ live: 1, revoked: 0 });
  });

  test('another client presenting the rotated token (other user agent, or other address) revokes the family', async () => {
    for (const thief of [
      (client: Client): Client => ({ ...client, 'user-agent': 'curl/8.0' }),
      (client: Client): Client => ({ ...client, 'x-forwarded-for': '198.51.100.7' }),
    ]) {
      const client = browser();
      const session = await signUp(client);
      const rotated = await refresh(client, session.refreshToken);
      expect(rotated.status).toBe(200);

      const stolen = await refresh(thief(client), session.refreshToken);
      expect(stolen).toMatchObject({ status: 401, body: { error: { code: 'refresh_token_reused' } } });
      expect((await refresh(client, rotated.body.refreshToken)).status).toBe(401);
      expect((await me(rotated.body.accessToken)).status).toBe(401);
      expect((await family(session.refreshToken)).live).toBe(0);
    }
  });

  test('cookie: another client replaying the rotated cookie revokes the family and its cookie is cleared', async () => {
    const client = browser();
    const session = await signUp(client, true);
    const rotated = await refreshCookie(client, session.refreshToken);
    expect(rotated.status).toBe(200);

    const replayed = await refreshCookie({ ...client, 'user-agent': 'Other/1' }, session.refreshToken);
    expect(replayed).toMatchObject({ status: 401, body: { error: { code: 'refresh_token_reused' } } });
    expect(replayed.headers.getSetCookie().some((line) => line.startsWith('sb_refresh=;'))).toBe(true);
    expect((await refreshCookie(client, cookieOf(rotated)!)).status).toBe(401);
  });

  test('after the window, the same client presenting the rotated token revokes the family', async () => {
    const client = browser();
    const session = await signUp(client);
    const rotated = await refresh(client, session.refreshToken);
    expect(rotated.status).toBe(200);
    await rotatedAgo(session.refreshToken, 6);

    const late = await refresh(client, session.refreshToken);
    expect(late).toMatchObject({ status: 401, body: { error: { code: 'refresh_token_reused' } } });
    expect((await refresh(client, rotated.body.refreshToken)).status).toBe(401);
    expect((await me(session.accessToken)).status).toBe(401);
  });

  test('a token two rotations old revokes the family, inside the window and from the same client', async () => {
    const client = browser();
    const session = await signUp(client);
    const first = await refresh(client, session.refreshToken);
    const second = await refresh(client, first.body.refreshToken);
    expect([first.status, second.status]).toEqual([200, 200]);

    const old = await refresh(client, session.refreshToken);
    expect(old).toMatchObject({ status: 401, body: { error: { code: 'refresh_token_reused' } } });
    expect((await refresh(client, second.body.refreshToken)).status).toBe(401);
    expect((await family(session.refreshToken)).live).toBe(0);
  });

  test('a token issued before tokens were bound to a client gets no grace', async () => {
    const client = browser();
    const session = await signUp(client);
    await t.app.repos.db.execute(
      sql`update refresh_tokens set client_hash = null where token_hash = ${hashRefreshToken(session.refreshToken)}`,
    );
    expect((await refresh(client, session.refreshToken)).status).toBe(200);
    expect((await refresh(client, session.refreshToken)).body.error.code).toBe('refresh_token_reused');
  });

  test('concurrent refreshes with one token from its client all succeed, and leave one live token: the grace cannot fork the session', async () => {
    const client = browser();
    const session = await signUp(client);
    const answers = await Promise.all(Array.from({ length: 8 }, () => refresh(client, session.refreshToken)));
    expect(answers.map((res) => res.status)).toEqual(Array(8).fill(200));
    const issued = answers.map((res) => res.body.refreshToken as string);
    expect(new Set(issued).size).toBe(8);
    expect(await family(session.refreshToken)).toEqual({ live: 1, revoked: 0 });

    // Each grace use retired the token before it: once the window is over, any token but the live
    // one is reuse, and ends the session (the live one included).
    const live: string[] = [];
    for (const token of issued) if (await isLive(token)) live.push(token);
    expect(live).toHaveLength(1);
    const retired = issued.find((token) => token !== live[0])!;
    await rotatedAgo(retired, 6);
    expect((await refresh(client, retired)).body.error.code).toBe('refresh_token_reused');
    expect((await refresh(client, live[0])).status).toBe(401);
  });

  async function isLive(refreshToken: string) {
    const rows = await t.app.repos.db.execute<{ live: boolean }>(
      sql`select (used_at is null and revoked_at is null) as live from refresh_tokens where token_hash = ${hashRefreshToken(refreshToken)}`,
    );
    return rowsOf<{ live: boolean }>(rows)[0]?.live === true;
  }
});
