import { z } from 'zod';
import { PROVIDERS } from '../../connectors/types';
import { AppError } from '../../lib/errors';
import { oauthAuthorizeResponse, oauthCallbackResponse, oauthRefreshResponse } from '../openapi/response-schemas';
import { requireWriteScope } from '../middleware/authenticate';
import { routesWith, type ParamSpec } from '../route';
import type { ApiContext } from '../context';
import type { Config } from '../../../config';

/** The OAuth routes' port: only the OAuth service and its config. */
export type OAuthPorts = { oauth: Pick<ApiContext['oauth'], 'authorize' | 'callback' | 'refresh'> } & { config: Pick<Config, 'oauth'> };
const route = routesWith<OAuthPorts>();

export const oauthAuthorizeQuerySchema = z.strictObject({ agentId: z.uuid().optional() });
export const oauthCallbackQuerySchema = z.looseObject({
  code: z.string().max(4_096).optional(),
  state: z.string().max(4_096).optional(),
  error: z.string().max(500).optional(),
});
export const oauthRefreshSchema = z.strictObject({ credentialId: z.uuid().optional(), agentId: z.uuid().optional() }).default({});

const OAUTH_COOKIE_PATH = '/api/v1/oauth/';

/** `Cookie:` header → name/value pairs (no cookie-parser dependency for one use). */
export function readCookies(header: string | undefined): Record<string, string> {
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
const providerParam = {
  provider: {
    schema: oauthProviderParam,
    description: 'The OAuth provider. Any other value answers 404.',
    resource: 'OAuth provider',
  } satisfies ParamSpec,
};
const tags = ['oauth'];

/** Connecting a Gmail, Outlook or Teams account to cloud agents. */
export const oauthRoutes = [
  route({
    method: 'get',
    path: '/oauth/:provider/authorize',
    operationId: 'oauthAuthorize',
    tags,
    auth: 'bearer',
    summary: "The provider's consent URL, with a signed single-use state",
    description:
      'With `agentId` the credential is attached to that cloud agent on the callback (an unknown agent is 404; one of another provider is 400). ' +
      'A provider without client credentials configured on this server answers 503 `provider_not_configured`. ' +
      'The callback stores a credential for the caller, so an API key with scope `read` only is refused with 403.',
    params: providerParam,
    query: oauthAuthorizeQuerySchema,
    responses: { 200: { description: 'Send the browser to `url`', schema: oauthAuthorizeResponse } },
    errors: [403, 404, 503],
    handler: async (input, ctx) => {
      const { res, user, params } = input;
      // The callback binds a credential to this user: a read key may not start that write.
      requireWriteScope(user, 'connecting an account');
      const { query } = input;
      const { binding, ...flow } = await ctx.oauth.authorize(user.id, params.provider, query.agentId);
      // Binds the flow to this browser: HttpOnly, sent back on the provider's top-level
      // redirect (SameSite=Lax), only to the OAuth routes, Secure when the public URL is https.
      res.cookie(binding.cookieName, binding.value, {
        httpOnly: true,
        sameSite: 'lax',
        secure: ctx.config.oauth.publicUrl.startsWith('https:'),
        path: OAUTH_COOKIE_PATH,
        maxAge: binding.maxAgeSeconds * 1000,
      });
      return flow;
    },
  }),

  // The provider redirects the browser here without a Bearer token: the signed `state` names the user.
  route({
    method: 'get',
    path: '/oauth/:provider/callback',
    operationId: 'oauthCallback',
    tags,
    auth: 'public',
    summary: 'Where the provider sends the browser back (no Bearer token: the signed `state` names the user)',
    description:
      'Needs `code` and the `state` from authorize (else 400); the state is accepted once and for 10 minutes (400 `invalid_state`). ' +
      'A consent the user declined comes back with `error` (400 `oauth_denied`); a code the provider refuses is 400 `invalid_grant`; ' +
      'a provider that fails to answer is 502 `provider_unavailable`; one not configured here is 503 `provider_not_configured`. ' +
      'Other query parameters the provider adds are ignored. The answer carries ids only, never a token. ' +
      'A browser that navigated here (its `Accept` prefers `text/html`) is sent back to the console instead: 303 to ' +
      '`/#/agents?connected=<provider>&agentId=<id>`, or `/#/agents?oauthError=<code>` when the flow failed.',
    params: providerParam,
    query: oauthCallbackQuerySchema,
    responses: { 200: { description: 'The account is connected', schema: oauthCallbackResponse } },
    errors: [404, 503],
    handler: async ({ req, res, params, query }, ctx) => {
      // A person's browser lands here at the end of the consent: it goes back to the console's agents page, which says what happened.
      const browser = req.accepts(['application/json', 'text/html']) === 'text/html';
      let flow;
      try {
        flow = await ctx.oauth.callback(params.provider, query, readCookies(req.headers.cookie));
      } catch (error) {
        if (!browser || !(error instanceof AppError)) throw error;
        res.redirect(303, `/#/agents?oauthError=${encodeURIComponent(error.code)}`);
        return;
      }
      const { bindingCookie, ...connected } = flow;
      // This flow is done: its binding cookie has no further use (other flows keep theirs).
      res.clearCookie(bindingCookie, { path: OAUTH_COOKIE_PATH });
      if (!browser) return { connected: true, ...connected };
      const back = new URLSearchParams({ connected: connected.provider, ...(connected.agentId ? { agentId: connected.agentId } : {}) });
      res.redirect(303, `/#/agents?${back}`);
    },
  }),

  route({
    method: 'post',
    path: '/oauth/:provider/refresh',
    operationId: 'oauthRefresh',
    tags,
    auth: 'bearer',
    summary: "Refresh a credential's access token now",
    description:
      "Names the credential by `credentialId`, or by the cloud agent using it (`agentId`); with neither, the caller's latest credential for the provider. " +
      'No such credential or agent is 404; an agent without a connected account 409 `not_connected`; a refresh the provider refuses marks the agents using it ' +
      '`reauth_required` and answers 409 `reauth_required`; a provider that fails to answer is 502 `provider_unavailable`.',
    params: providerParam,
    body: oauthRefreshSchema,
    bodyOptional: true,
    responses: { 200: { description: 'The new expiry (null when the provider gives none)', schema: oauthRefreshResponse } },
    errors: [404, 409, 503],
    handler: ({ user, params, body }, ctx) => ctx.oauth.refresh(user.id, params.provider, body),
  }),
];
