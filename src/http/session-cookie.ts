import type { Request, Response } from 'express';

/**
 * The console's tab-shared session: with `X-Session-Cookie: 1`, the auth routes keep
 * the refresh token in an HttpOnly cookie instead of the JSON answer, so every tab of the browser
 * can get an access token from it and no script can read it. The header is required to read the
 * cookie too: a cross-origin page cannot send it without a CORS preflight, which refuses it.
 */
export const SESSION_COOKIE_HEADER = 'x-session-cookie';
export const REFRESH_COOKIE = 'sb_refresh';
/** Sent only to the routes that use it: refresh and logout (and set by login and register). */
export const REFRESH_COOKIE_PATH = '/api/v1/auth/';
/**
 * Beside it, a cookie pages can read that says only that there is one (`1`, no secret): a page
 * without it knows there is no session to take, and asks nothing.
 */
export const SESSION_HINT_COOKIE = 'sb_session';

/** True when the request asks for (or presents) the session in the cookie. */
export function wantsSessionCookie(req: Request): boolean {
  return req.get(SESSION_COOKIE_HEADER) === '1';
}

/** The refresh token of the cookie, when the request asks for cookie mode and carries one. */
export function refreshTokenFromCookie(req: Request): string | undefined {
  if (!wantsSessionCookie(req)) return undefined;
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at <= 0 || part.slice(0, at).trim() !== REFRESH_COOKIE) continue;
    const value = part.slice(at + 1).trim();
    // A refresh token is base64url: anything else is no token.
    return /^[A-Za-z0-9_-]{1,500}$/.test(value) ? value : undefined;
  }
  return undefined;
}

/**
 * Whether the cookies are marked Secure: when the request came over https, and always in
 * production, where TLS may end at a proxy `TRUST_PROXY` does not name (the request then looks like
 * plain http, and a long-lived refresh token must still never travel without TLS).
 */
const secureFor = (req: Request) => req.secure || req.app.get('env') === 'production';

/**
 * In cookie mode, puts the session's refresh token in the cookie (HttpOnly, SameSite=Strict, Secure
 * over https and in production, for the refresh token's lifetime) and answers with an empty
 * `refreshToken`; otherwise the session goes out as it is.
 */
export function sessionAnswer<S extends { refreshToken: string }>(req: Request, res: Response, session: S, ttlDays: number): S {
  if (!wantsSessionCookie(req)) return session;
  const maxAge = ttlDays * 24 * 3600 * 1000;
  res.cookie(REFRESH_COOKIE, session.refreshToken, {
    httpOnly: true,
    sameSite: 'strict',
    secure: secureFor(req),
    path: REFRESH_COOKIE_PATH,
    maxAge,
  });
  res.cookie(SESSION_HINT_COOKIE, '1', { sameSite: 'strict', secure: secureFor(req), path: '/', maxAge });
  return { ...session, refreshToken: '' };
}

/** Forgets the cookie (signed out, or its token was refused). */
export function clearSessionCookie(req: Request, res: Response): void {
  res.clearCookie(REFRESH_COOKIE, { httpOnly: true, sameSite: 'strict', secure: secureFor(req), path: REFRESH_COOKIE_PATH });
  res.clearCookie(SESSION_HINT_COOKIE, { sameSite: 'strict', secure: secureFor(req), path: '/' });
}
