import type { Request } from 'express';
import { Router } from 'express';
import { z } from 'zod';
import { PROVIDERS, type Provider } from '../../connectors/types';
import { notFound, parseOr400 } from '../../lib/errors';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

export const oauthAuthorizeQuerySchema = z.strictObject({ agentId: z.uuid().optional() });
export const oauthCallbackQuerySchema = z.looseObject({
  code: z.string().max(4_096).optional(),
  state: z.string().max(4_096).optional(),
  error: z.string().max(500).optional(),
});
export const oauthRefreshSchema = z.strictObject({ credentialId: z.uuid().optional(), agentId: z.uuid().optional() }).default({});

const OAUTH_COOKIE_PATH = '/api/v1/oauth/';

/** `Cookie:` header → name/value pairs (no cookie-parser dependency for one use). */
function readCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    try {
      cookies[name] = decodeURIComponent(part.slice(at + 1).trim());
    } catch {
      // a malformed value is ignored, like a missing cookie
    }
  }
  return cookies;
}

/** The `:provider` path parameter; an unknown provider answers 404, like a missing resource. */
export const oauthProviderParam = z.enum(PROVIDERS);

const providerOf = (req: Request): Provider => {
  const provider = oauthProviderParam.safeParse(req.params.provider);
  if (!provider.success) throw notFound('OAuth provider');
  return provider.data;
};

/**
 * `GET /oauth/:provider/callback` — where the provider sends the browser back. It carries no
 * Bearer token: the signed `state` names the user, so this router is mounted before authentication.
 */
export function oauthCallbackRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get('/oauth/:provider/callback', async (req, res) => {
    const provider = providerOf(req);
    const query = parseOr400(oauthCallbackQuerySchema, req.query, 'query');
    const cookies = readCookies(req.headers.cookie);
    const { bindingCookie, ...connected } = await ctx.oauth.callback(provider, query, cookies);
    // This flow is done: its binding cookie has no further use (other flows keep theirs).
    res.clearCookie(bindingCookie, { path: OAUTH_COOKIE_PATH });
    res.json({ connected: true, ...connected });
  });
  return router;
}

/** `GET /oauth/:provider/authorize` (the consent URL) and `POST /oauth/:provider/refresh`. */
export function oauthRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get('/oauth/:provider/authorize', async (req, res) => {
    const provider = providerOf(req);
    const { agentId } = parseOr400(oauthAuthorizeQuerySchema, req.query, 'query');
    const { binding, ...flow } = await ctx.oauth.authorize(currentUser(req).id, provider, agentId);
    // Binds the flow to this browser (0068): HttpOnly, sent back on the provider's top-level
    // redirect (SameSite=Lax), only to the OAuth routes, Secure when the public URL is https.
    res.cookie(binding.cookieName, binding.value, {
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.config.oauth.publicUrl.startsWith('https:'),
      path: OAUTH_COOKIE_PATH,
      maxAge: binding.maxAgeSeconds * 1000,
    });
    res.json(flow);
  });
  router.post('/oauth/:provider/refresh', async (req, res) => {
    const provider = providerOf(req);
    const body = parseOr400(oauthRefreshSchema, req.body ?? {});
    res.json(await ctx.oauth.refresh(currentUser(req).id, provider, body));
  });
  return router;
}
