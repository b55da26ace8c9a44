import type { NextFunction, Request, Response } from 'express';
import { storableHeader, withRequestOrigin } from '../../lib/request-origin';

/**
 * Serves the rest of the request inside its origin (client address and user agent), so the audit
 * rows it writes say where the action came from. `req.ip` honours the app's `trust proxy`
 * (TRUST_PROXY): behind a reverse proxy it is the client, not the proxy, only when configured so.
 * Mounted after the body parser, whose stream callbacks would not carry the origin along.
 */
export function recordRequestOrigin(req: Request, _res: Response, next: NextFunction): void {
  withRequestOrigin({ ip: req.ip ?? null, userAgent: storableHeader(req.get('user-agent')) }, next);
}
