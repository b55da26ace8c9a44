import type { NextFunction, Request, Response } from 'express';
import type { Tier } from '../../../config';
import { verifyAccessToken, verifyAccessTokenOnCanvas, type TokenSettings } from '../../auth/tokens';
import type { MemberRole } from '../../models/schema';
import { uuidParam } from '../../schemas/api';
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

/**
 * Requires `Authorization: Bearer <access token>`; sets `req.user`. With `canvasParam` (a route on
 * one canvas, `/canvases/:id/…`), the session check also reads the caller's role on that canvas in
 * the same statement, and `canvasAccess` uses it instead of asking again (0162).
 */
export function authenticate(tokens: TokenSettings, options: { canvasParam?: string } = {}) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) return next(unauthorized('Authentication required'));
    // The id as the route's own schema gives it to `canvasAccess` (a UUID, lower case), if it is one.
    const parsed = options.canvasParam ? uuidParam.safeParse(req.params[options.canvasParam]) : undefined;
    const canvasId = parsed?.success ? parsed.data : undefined;
    const verified = canvasId
      ? await verifyAccessTokenOnCanvas(tokens, token, canvasId)
      : await verifyAccessToken(tokens, token).then((claims) => claims && { claims, role: undefined });
    if (!verified) return next(unauthorized('Invalid or expired access token'));
    const { claims, role } = verified;
    const user: AuthUser = { id: claims.sub, email: claims.email, name: claims.name, tier: claims.tier, role: claims.role };
    if (canvasId && role !== undefined) rolesRead.set(user, { canvasId, role });
    req.user = user;
    next();
  };
}

/** The caller's role on the canvas of the request's path, read with its session (per request: its user object). */
const rolesRead = new WeakMap<AuthUser, { canvasId: string; role: MemberRole | null }>();

/**
 * The role `authenticate` read for `user` on `canvasId` (null: not a member), taken once; undefined
 * when it read none for that canvas.
 */
export function takeCanvasRoleRead(user: AuthUser, canvasId: string): MemberRole | null | undefined {
  const read = rolesRead.get(user);
  if (read?.canvasId !== canvasId) return undefined;
  rolesRead.delete(user);
  return read.role;
}

/** `req.user` after `authenticate` ran. */
export function currentUser(req: Request): AuthUser {
  if (!req.user) throw unauthorized();
  return req.user;
}
