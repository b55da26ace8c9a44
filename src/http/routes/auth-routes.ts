import { Router, type Request } from 'express';
import { LoginThrottle } from '../../auth/login-throttle';
import { publicUser } from '../../auth/auth-service';
import { AppError, notFound, parseOr400 } from '../../lib/errors';
import { loginSchema, refreshSchema, registerSchema } from '../../schemas/api';
import type { ApiContext } from '../context';
import { authenticate, currentUser } from '../middleware/authenticate';

/** `/auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`, `/me`. */
export function authRoutes(ctx: ApiContext): Router {
  const router = Router();
  // Login and registration cost argon2 time and guess passwords: limited before any hashing (0067).
  const throttle = new LoginThrottle(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.auth);
  const clientIp = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown';

  router.post('/auth/register', async (req, res) => {
    const body = parseOr400(registerSchema, req.body);
    await throttle.beforeRegister(clientIp(req));
    res.status(201).json(await ctx.auth.register(body));
  });

  router.post('/auth/login', async (req, res) => {
    const body = parseOr400(loginSchema, req.body);
    await throttle.beforeLogin(clientIp(req), body.email);
    let session: Awaited<ReturnType<typeof ctx.auth.login>>;
    try {
      session = await ctx.auth.login(body);
    } catch (error) {
      if (error instanceof AppError && error.code === 'invalid_credentials') await throttle.loginFailed(body.email);
      throw error;
    }
    await throttle.loginSucceeded(body.email);
    res.json(session);
  });

  router.post('/auth/refresh', async (req, res) => {
    res.json(await ctx.auth.refresh(parseOr400(refreshSchema, req.body).refreshToken));
  });

  // The refresh token is the credential: a client whose access token already expired can still sign out.
  router.post('/auth/logout', async (req, res) => {
    await ctx.auth.logout(parseOr400(refreshSchema, req.body).refreshToken);
    res.status(204).end();
  });

  router.get('/me', authenticate(ctx.tokens), async (req, res) => {
    const user = await ctx.repos.users.findById(currentUser(req).id);
    if (!user) throw notFound('User');
    res.json({ user: { ...publicUser(user), admin: await ctx.admin.directory.isAdmin(user.id), limits: ctx.config.tiers[user.tier] } });
  });

  return router;
}
