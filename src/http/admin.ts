import { timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type NextFunction, type Request, type Response } from 'express';
import { QUEUE_NAMES } from '../../config';
import type { AdminDirectory } from '../auth/admins';
import { verifyAccessToken, type TokenSettings } from '../auth/tokens';
import type { QueueRegistry } from '../queues/registry';

export const DASHBOARD_PATH = '/admin/queues';

export interface AdminAccess {
  /** HTTP Basic credentials; unset = Basic disabled. */
  user?: string;
  password?: string;
  /** Who holds admin rights (operator grants and ADMIN_USER_IDS); their Bearer token opens the dashboard. */
  directory: AdminDirectory;
  /** Set when the password was generated at start (printed in the banner). */
  generatedPassword?: string;
}

const same = (a: string, b: string) => {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
};

/** True when the request carries admin credentials: Basic ADMIN_USER/ADMIN_PASSWORD, or the Bearer token of an admin. */
export async function isAdminRequest(req: Request, access: AdminAccess, tokens: TokenSettings): Promise<boolean> {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ') && access.user && access.password) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon > 0 && same(decoded.slice(0, colon), access.user) && same(decoded.slice(colon + 1), access.password);
  }
  if (header.startsWith('Bearer ')) {
    const claims = await verifyAccessToken(tokens, header.slice(7).trim());
    // The token's `role` claim is not trusted alone: rights are read now, so a revoke applies at once.
    return Boolean(claims && (await access.directory.isAdmin(claims.sub)));
  }
  return false;
}

/**
 * Bull Board over every queue, behind admin authentication: the UI, its JSON API and its static
 * assets all sit under one guarded router.
 */
export function dashboardRouter(queues: QueueRegistry, access: AdminAccess, tokens: TokenSettings): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: QUEUE_NAMES.map((name) => new BullMQAdapter(queues.get(name))), serverAdapter });
  const guard = async (req: Request, res: Response, next: NextFunction) => {
    if (await isAdminRequest(req, access, tokens)) return next();
    const hadCredentials = Boolean(req.headers.authorization);
    res.setHeader('WWW-Authenticate', 'Basic realm="Switchboard queues", charset="UTF-8"');
    res.status(hadCredentials ? 403 : 401).json({ error: { code: hadCredentials ? 'forbidden' : 'unauthorized', message: 'Admins only' } });
  };
  const router = Router();
  router.use(guard, serverAdapter.getRouter() as Router);
  return router;
}
