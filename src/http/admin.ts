import { timingSafeEqual } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { AdminDirectory } from '../auth/admins';
import type { LoginThrottle } from '../auth/login-throttle';
import { AppError } from '../lib/errors';
import { verifyAccessToken, type TokenSettings } from '../auth/tokens';
import type { QueueRegistry } from '../producers/registry';

export const DASHBOARD_PATH = '/admin/queues';

export interface AdminAccess {
  /** HTTP Basic credentials; unset = Basic disabled. */
  user?: string;
  password?: string;
  /** Who holds admin rights (operator grants and ADMIN_USER_IDS); their Bearer token opens the dashboard. */
  directory: AdminDirectory;
  /** The one per-IP back-off every operator secret (Basic password, METRICS_TOKEN) is checked behind. */
  throttle: LoginThrottle;
  /** Set when the password was generated at start (printed in the banner). */
  generatedPassword?: string;
}

const same = (a: string, b: string) => {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
};

/** The client IP the operator-secret back-off is kept for (TRUST_PROXY decides whose address it is). */
export const clientIp = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/**
 * True when the request carries admin credentials: Basic ADMIN_USER/ADMIN_PASSWORD, or the Bearer
 * token of an admin. Basic credentials are checked behind the operator-secret back-off: a locked
 * address is refused (429) before the password is compared, right or not.
 */
export async function isAdminRequest(req: Request, access: AdminAccess, tokens: TokenSettings): Promise<boolean> {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ') && access.user && access.password) {
    const { user, password } = access;
    return access.throttle.checkOperatorSecret(clientIp(req), () => {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon > 0 && same(decoded.slice(0, colon), user) && same(decoded.slice(colon + 1), password);
    });
  }
  if (header.startsWith('Bearer ')) {
    const claims = await verifyAccessToken(tokens, header.slice(7).trim());
    // The token's `role` claim is not trusted alone: rights are read now, so a revoke applies at once.
    return Boolean(claims && (await access.directory.isAdmin(claims.sub)));
  }
  return false;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a state-changing request comes from the dashboard's own pages. A browser sends Basic
 * credentials it has cached to any site's form or fetch, so a cross-site POST would act as the
 * admin: it must say `Sec-Fetch-Site: same-origin` (or `none`, typed by the user), or, from a
 * browser that lacks that header, an `Origin` equal to this host's. A request with neither header
 * is not from a browser page (curl, scripts) and cannot ride a browser's credentials.
 */
export function isSameOriginWrite(req: Request): boolean {
  if (SAFE_METHODS.has(req.method)) return true;
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin' || site === 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin === `${req.protocol}://${req.headers.host ?? ''}`;
}

/**
 * What the dashboard's pages may load: this origin only. Bull Board's page links Google Fonts;
 * the link is taken out of the HTML and this policy would refuse it anyway (the fonts fall back
 * to the system's).
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'";
const REMOTE_LINK = /<link\b[^>]*\bhref="https?:\/\/[^"]*"[^>]*>\s*/gi;

/** Sends Bull Board's rendered page without links to other hosts. */
function withoutRemoteLinks(req: Request, res: Response, next: NextFunction): void {
  const render = res.render.bind(res);
  res.render = ((view: string, options?: object, callback?: (error: Error, html: string) => void) => {
    render(view, options ?? {}, (error: Error, html: string) => {
      if (callback) return callback(error, html?.replace(REMOTE_LINK, ''));
      if (error) return next(error);
      res.send(html.replace(REMOTE_LINK, ''));
    });
  }) as Response['render'];
  next();
}

/**
 * Bull Board over every queue, behind admin authentication: the UI, its JSON API and its static
 * assets all sit under one guarded router. Wrong Basic passwords back off per client IP (429, shared with
 * every other operator secret), state-changing
 * calls must come from the dashboard's own origin (403 `cross_site_request`), and the pages load
 * nothing from other hosts.
 */
export function dashboardRouter(queues: Pick<QueueRegistry, 'forDashboard'>, access: AdminAccess, tokens: TokenSettings): Router {
  // Bull Board is loaded at the first admin's request: a process nobody opens it on never loads it.
  let board: Promise<Router> | undefined;
  const loadBoard = async (): Promise<Router> => {
    const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
      import('@bull-board/api'),
      import('@bull-board/api/bullMQAdapter'),
      import('@bull-board/express'),
    ]);
    const serverAdapter = new ExpressAdapter();
    serverAdapter.setBasePath(DASHBOARD_PATH);
    createBullBoard({ queues: queues.forDashboard().map((queue) => new BullMQAdapter(queue)), serverAdapter });
    return serverAdapter.getRouter() as Router;
  };
  const dashboard = (req: Request, res: Response, next: NextFunction) => {
    board ??= loadBoard();
    board.then((serve) => serve(req, res, next), next);
  };
  const guard = async (req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
    let admin: boolean;
    try {
      admin = await isAdminRequest(req, access, tokens);
    } catch (error) {
      return next(error);
    }
    if (admin) {
      if (!isSameOriginWrite(req))
        return next(new AppError(403, 'cross_site_request', 'Dashboard changes are only accepted from the dashboard itself'));
      return next();
    }
    const hadCredentials = Boolean(req.headers.authorization);
    res.setHeader('WWW-Authenticate', 'Basic realm="Switchboard queues", charset="UTF-8"');
    res.status(hadCredentials ? 403 : 401).json({ error: { code: hadCredentials ? 'forbidden' : 'unauthorized', message: 'Admins only' } });
  };
  const router = Router();
  router.use(guard, withoutRemoteLinks, dashboard);
  return router;
}
