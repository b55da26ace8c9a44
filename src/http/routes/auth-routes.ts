import { resolveLimits } from '../../auth/limits';
import type { Request } from 'express';
import { LoginThrottle } from '../../auth/login-throttle';
import { publicUser } from '../../auth/auth-service';
import { AppError, notFound } from '../../lib/errors';
import { loginSchema, refreshSchema, registerSchema } from '../../schemas/api';
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

// Login and registration cost argon2 time and guess passwords: limited before any hashing (0067).
const throttle = perContext((ctx: AuthPorts) => new LoginThrottle(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.auth));
const clientIp = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown';
const tags = ['auth'];

/** `/auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`, `/me`. */
export const authRoutes = [
  route({
    method: 'post',
    path: '/auth/register',
    operationId: 'register',
    tags,
    auth: 'public',
    summary: 'Create an account and sign in',
    body: registerSchema,
    responses: { 201: { description: 'The new user and a token pair', schema: authSessionResponse } },
    errors: [409, 429],
    handler: async ({ req, body }, ctx) => {
      await throttle(ctx).beforeRegister(clientIp(req));
      return ctx.auth.register(body);
    },
  }),

  route({
    method: 'post',
    path: '/auth/login',
    operationId: 'login',
    tags,
    auth: 'public',
    summary: 'Sign in with email and password',
    body: loginSchema,
    responses: { 200: { description: 'The user and a token pair', schema: authSessionResponse } },
    errors: [401, 429],
    handler: async ({ req, body }, ctx) => {
      await throttle(ctx).beforeLogin(clientIp(req), body.email);
      let session: Awaited<ReturnType<typeof ctx.auth.login>>;
      try {
        session = await ctx.auth.login(body);
      } catch (error) {
        if (error instanceof AppError && error.code === 'invalid_credentials') await throttle(ctx).loginFailed(body.email);
        throw error;
      }
      await throttle(ctx).loginSucceeded(body.email);
      return session;
    },
  }),

  route({
    method: 'post',
    path: '/auth/refresh',
    operationId: 'refreshTokens',
    tags,
    auth: 'public',
    summary: 'Exchange a refresh token for a new pair',
    description: 'Refresh tokens rotate: each is single use, and presenting a used one revokes its whole family.',
    body: refreshSchema,
    responses: { 200: { description: 'The user and a new token pair', schema: authSessionResponse } },
    errors: [401],
    handler: ({ body }, ctx) => ctx.auth.refresh(body.refreshToken),
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
      'Revokes the refresh-token family of the given token: its refresh tokens and the access tokens issued in it stop working, and its open sockets are disconnected. An unknown token is accepted silently.',
    body: refreshSchema,
    responses: { 204: 'Signed out' },
    handler: async ({ body }, ctx) => {
      await ctx.auth.logout(body.refreshToken);
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
