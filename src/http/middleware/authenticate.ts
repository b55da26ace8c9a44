import type { NextFunction, Request, Response } from 'express';
import type { Tier } from '../../../config';
import { verifyAccessToken, type TokenSettings } from '../../auth/tokens';
import { unauthorized } from '../../lib/errors';

/** The caller, from a verified access token. */
export interface AuthUser {
  id: string;
  email: string;
  name: string;
  tier: Tier;
  role: 'user' | 'admin' | 'service';
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: AuthUser;
  }
}

/** Requires `Authorization: Bearer <access token>`; sets `req.user`. */
export function authenticate(tokens: TokenSettings) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const claims = token ? await verifyAccessToken(tokens, token) : null;
    if (!claims) return next(unauthorized(token ? 'Invalid or expired access token' : 'Authentication required'));
    req.user = { id: claims.sub, email: claims.email, name: claims.name, tier: claims.tier, role: claims.role };
    next();
  };
}

/** `req.user` after `authenticate` ran. */
export function currentUser(req: Request): AuthUser {
  if (!req.user) throw unauthorized();
  return req.user;
}
