import { resolveLimits } from '../../auth/limits';
import type { Request } from 'express';
import { LoginThrottle } from '../../auth/login-throttle';
import { publicUser } from '../../auth/auth-service';
import { AppError, notFound } from '../../lib/errors';
import { loginSchema, refreshOrCookieSchema, registerSchema } from '../../schemas/api';
import { clearSessionCookie, refreshTokenFromCookie, sessionAnswer, wantsSessionCookie } from '../session-cookie';
import { authSessionResponse, meResponse } from '../openapi/response-schemas';
import { isAdminCaller } from '../middleware/authenticate';
import { routesWith, perContext } from '../route';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';
import type { Config } from '../../../config';

/** The auth routes' port: the auth service, the admin directory, the users repository, Redis for the login throttle. */
export type AuthPorts = Pick<ApiContext, 'auth' | 'admin' | 'redis'> & {
  config: Pick<Config, 'auth' | 'redis' | 'tiers'>;
  repos: Pick<Repositories, 'users'>;
};
const route = routesWith<AuthPorts>();

// Login and registration cost argon2 time and guess passwords: limited before any hashing.
const throttle = perContext((ctx: AuthPorts) => new LoginThrottle(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.auth));
const clientIp = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown';
/** The client a refresh token is bound to when issued, and checked against in the reuse grace. */
const refreshClient = (req: Request) => ({ ip: clientIp(req), userAgent: req.get('user-agent') });
const tags = ['auth'];

/** A refresh or logout with neither a token in the body nor the session cookie asked for. */
const refreshTokenMissing = () =>
  new AppError(400, 'validation_failed', 'refreshToken is required (or send X-Session-Cookie: 1 to use the session cookie)');

/**
 * `X-Session-Cookie: 1` (a browser app's tabs sharing one session) is said in the
 * descriptions, not declared as a parameter: a generated client has no use for it.
 */
const COOKIE_NOTE =
  ' With `X-Session-Cookie: 1` the refresh token goes in an HttpOnly cookie (SameSite=Strict, path `/api/v1/auth/`) instead of the answer, whose `refreshToken` is then empty.';

/** `/auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`, `/me`. */
export const authRoutes = [
  route({
    method: 'post',
    path: '/auth/register',
    operationId: 'register',
    tags,
    auth: 'public',
    summary: 'Create an account and sign in',
    description: `A new account on the free tier, signed in.${COOKIE_NOTE}`,
    body: registerSchema,
    responses: { 201: { description: 'The new user and a token pair', schema: authSessionResponse } },
    errors: [409, 429],
    handler: async ({ req, res, body }, ctx) => {
      await throttle(ctx).beforeRegister(clientIp(req));
      return sessionAnswer(req, res, await ctx.auth.register(body, refreshClient(req)), ctx.config.auth.refreshTokenTtlDays);
    },
  }),

  route({
    method: 'post',
    path: '/auth/login',
    operationId: 'login',
    tags,
    auth: 'public',
    summary: 'Sign in with email and password',
    description: `Repeated failures are throttled per address and per email (429).${COOKIE_NOTE}`,
    body: loginSchema,
    responses: { 200: { description: 'The user and a token pair', schema: authSessionResponse } },
    errors: [401, 429],
    handler: async ({ req, res, body }, ctx) => {
      await throttle(ctx).beforeLogin(clientIp(req), body.email);
      let session: Awaited<ReturnType<typeof ctx.auth.login>>;
      try {
        session = await ctx.auth.login(body, refreshClient(req));
      } catch (error) {
        if (error instanceof AppError && error.code === 'invalid_credentials') await throttle(ctx).loginFailed(body.email);
        throw error;
      }
      await throttle(ctx).loginSucceeded(body.email);
      return sessionAnswer(req, res, session, ctx.config.auth.refreshTokenTtlDays);
    },
  }),

  route({
    method: 'post',
    path: '/auth/refresh',
    operationId: 'refreshTokens',
    tags,
    auth: 'public',
    summary: 'Exchange a refresh token for a new pair',
    description:
      'Refresh tokens rotate: each is single use, and presenting a used one revokes its whole family. One grace: the token rotated last, presented again within `REFRESH_REUSE_GRACE_SECONDS` (default 5) by the client it was issued to (same user agent and address), gets a new pair in its session, and the token issued in its place is retired (a session keeps one live refresh token). With `X-Session-Cookie: 1` and no `refreshToken`, the session cookie is used and rotated (a refused one is cleared).',
    body: refreshOrCookieSchema,
    responses: { 200: { description: 'The user and a new token pair', schema: authSessionResponse } },
    errors: [401],
    handler: async ({ req, res, body }, ctx) => {
      const token = body.refreshToken ?? refreshTokenFromCookie(req);
      if (!token && !wantsSessionCookie(req)) throw refreshTokenMissing();
      if (!token) throw new AppError(401, 'unauthorized', 'No session cookie: sign in');
      try {
        return sessionAnswer(req, res, await ctx.auth.refresh(token, refreshClient(req)), ctx.config.auth.refreshTokenTtlDays);
      } catch (error) {
        // A refused cookie is of no further use to the browser.
        if (!body.refreshToken && error instanceof AppError && error.status === 401) clearSessionCookie(req, res);
        throw error;
      }
    },
  }),

  // The refresh token is the credential: a client whose access token already expired can still sign out.
  route({
    method: 'post',
    path: '/auth/logout',
    operationId: 'logout',
    tags,
    auth: 'public',
    summary: 'Sign out a session',
    description:
      'Revokes the refresh-token family of the given token: its refresh tokens and the access tokens issued in it stop working, and its open sockets are disconnected. An unknown token is accepted silently. With `X-Session-Cookie: 1` and no `refreshToken`, the session cookie names the session, and is cleared.',
    body: refreshOrCookieSchema,
    responses: { 204: 'Signed out' },
    handler: async ({ req, res, body }, ctx) => {
      const token = body.refreshToken ?? refreshTokenFromCookie(req);
      if (!body.refreshToken && !wantsSessionCookie(req)) throw refreshTokenMissing();
      if (!body.refreshToken) clearSessionCookie(req, res);
      if (token) await ctx.auth.logout(token);
    },
  }),

  route({
    method: 'get',
    path: '/me',
    operationId: 'getMe',
    tags,
    auth: 'bearer',
    summary: 'The caller, with the limits in effect (their tier and any overrides)',
    responses: { 200: { description: 'The user', schema: meResponse } },
    errors: [404],
    handler: async ({ user: caller }, ctx) => {
      const user = await ctx.repos.users.findById(caller.id);
      if (!user) throw notFound('User');
      return {
        user: {
          ...publicUser(user),
          admin: await isAdminCaller(ctx.admin.directory, caller),
          limits: resolveLimits(user, ctx.config.tiers),
        },
      };
    },
  }),
];
