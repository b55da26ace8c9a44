import type { Request } from 'express';
import type { MemberRole } from '../../models/schema';
import type { CanvasesRepository } from '../../models/canvases-repository';
import { forbidden, notFound } from '../../lib/errors';
import { uuidParam } from '../../schemas/api';
import { currentUser, takeCanvasRoleRead, type AuthUser } from './authenticate';

const RANK: Record<MemberRole, number> = { viewer: 0, editor: 1, owner: 2 };

/**
 * Object-level authorisation for canvas routes: the caller's role must reach `minimum`. A canvas
 * the caller cannot see answers 404 (not 403), so ids cannot be probed.
 */
export async function requireCanvasRole(req: Request, canvases: CanvasesRepository, minimum: MemberRole) {
  const user = currentUser(req);
  const parsed = uuidParam.safeParse(req.params.id);
  if (!parsed.success) throw notFound('Canvas');
  return canvasAccess(canvases, user, parsed.data, minimum);
}

/** The same check for a declared route, whose `:id` is already parsed: `{user, canvasId, role}` or 404/403. */
export async function canvasAccess(canvases: CanvasesRepository, user: AuthUser, canvasId: string, minimum: MemberRole) {
  // Read with the session when this request's path is on this canvas (authenticate), else now.
  const read = takeCanvasRoleRead(user, canvasId);
  const role = read !== undefined ? read : await canvases.roleOf(canvasId, user.id);
  if (!role) throw notFound('Canvas');
  if (RANK[role] < RANK[minimum]) throw forbidden(`This needs the ${minimum} role on the canvas; you are ${role}`);
  return { user, canvasId, role };
}
