import { Router } from 'express';
import { publicUser } from '../../auth/auth-service';
import { notFound, parseOr400 } from '../../lib/errors';
import { loginSchema, refreshSchema, registerSchema } from '../../schemas/api';
import type { ApiContext } from '../context';
import { authenticate, currentUser } from '../middleware/authenticate';

/** `/auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`, `/me`. */
export function authRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.post('/auth/register', async (req, res) => {
    res.status(201).json(await ctx.auth.register(parseOr400(registerSchema, req.body)));
  });

  router.post('/auth/login', async (req, res) => {
    res.json(await ctx.auth.login(parseOr400(loginSchema, req.body)));
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
    res.json({ user: { ...publicUser(user), limits: ctx.config.tiers[user.tier] } });
  });

  return router;
}
