import type { NextFunction, Request, Response } from 'express';
import type { Tier } from '../../../config';
import { verifyAccessToken, verifyAccessTokenOnCanvas, type TokenSettings } from '../../auth/tokens';
import type { MemberRole } from '../../models/schema';
import { uuidParam } from '../../schemas/api';
import { forbidden, unauthorized } from '../../lib/errors';
import { isApiKeySecret, type ApiKeyScope } from '../../auth/api-keys';

/** The caller, from a verified access token. */
export interface AuthUser {
  id: string;
  email: string;
  name: string;
  tier: Tier;
  role: 'user' | 'admin' | 'service';
  /** Set when the caller authenticated with an API key: its id and scopes. */
  apiKey?: { id: string; scopes: ApiKeyScope[] };
  /** The sign-in session (`sid`) of the access token, when it has one: what a logout revokes. */
  sessionId?: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: AuthUser;
  }
}

/** Methods a `read` key may use; anything else needs `write`. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The credential of a request: `Authorization: Bearer …` (an access token or an API key), else `X-API-Key`. */
function credentialOf(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim() || undefined;
  const key = req.headers['x-api-key'];
  return typeof key === 'string' && key.trim() ? key.trim() : undefined;
}

/**
 * The caller of an API key, or an error: unknown, revoked or expired → 401; a `read` key on a
 * method that changes something → 403. Repeated failures from one IP → 429 (thrown).
 */
async function apiKeyUser(tokens: TokenSettings, req: Request, secret: string): Promise<AuthUser | Error> {
  const caller = tokens.apiKeys ? await tokens.apiKeys.authenticate(secret, req.ip ?? req.socket.remoteAddress ?? 'unknown') : null;
  if (!caller) return unauthorized('Invalid, revoked or expired API key');
  if (!READ_METHODS.has(req.method) && !caller.scopes.includes('write')) return forbidden('This API key may only read (scope read)');
  const { user } = caller;
  // An admin's key is not an admin: admin rights need the admin's own session.
  const role = user.role === 'admin' ? 'user' : user.role;
  return { id: user.id, email: user.email, name: user.name, tier: user.tier, role, apiKey: { id: caller.keyId, scopes: caller.scopes } };
}

/**
 * True when the caller holds admin rights now: never through an API key, otherwise as the
 * admin directory says.
 */
export async function isAdminCaller(directory: { isAdmin(userId: string): Promise<boolean> }, user: AuthUser): Promise<boolean> {
  return !user.apiKey && (await directory.isAdmin(user.id));
}

/**
 * Refuses a `read` API key (403) on a GET whose work spends or writes for its user (a model call, an
 * embedding, a credential bound on a callback): a read key causes no model spend and changes nothing.
 */
export function requireWriteScope(user: AuthUser, what: string): void {
  if (user.apiKey && !user.apiKey.scopes.includes('write'))
    throw forbidden(`This API key may only read (scope read); ${what} needs a key with scope write`);
}

/** Refuses a request made with an API key (403): managing keys, for one, needs a signed-in session. */
export function requireSession(user: AuthUser, what: string): void {
  if (user.apiKey) throw forbidden(`${what} needs a signed-in session, not an API key`);
}

/**
 * The caller as the decider of an approval: a signed-in person unless the request came with an
 * API key (a key may ask for work, never approve it).
 */
export const deciderOf = (user: AuthUser): { userId: string; person: boolean } => ({ userId: user.id, person: !user.apiKey });

/**
 * Requires `Authorization: Bearer <access token or API key>` or `X-API-Key: <API key>`; sets `req.user`. With `canvasParam` (a route on
 * one canvas, `/canvases/:id/…`), the session check also reads the caller's role on that canvas in
 * the same statement, and `canvasAccess` uses it instead of asking again.
 */
export function authenticate(tokens: TokenSettings, options: { canvasParam?: string } = {}) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const token = credentialOf(req);
    if (!token) return next(unauthorized('Authentication required'));
    if (isApiKeySecret(token)) {
      const user = await apiKeyUser(tokens, req, token);
      if (user instanceof Error) return next(user);
      req.user = user;
      return next();
    }
    // The id as the route's own schema gives it to `canvasAccess` (a UUID, lower case), if it is one.
    const parsed = options.canvasParam ? uuidParam.safeParse(req.params[options.canvasParam]) : undefined;
    const canvasId = parsed?.success ? parsed.data : undefined;
    const verified = canvasId
      ? await verifyAccessTokenOnCanvas(tokens, token, canvasId)
      : await verifyAccessToken(tokens, token).then((claims) => claims && { claims, role: undefined });
    if (!verified) return next(unauthorized('Invalid or expired access token'));
    const { claims, role } = verified;
    const user: AuthUser = { id: claims.sub, email: claims.email, name: claims.name, tier: claims.tier, role: claims.role };
    if (claims.sid) user.sessionId = claims.sid;
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
