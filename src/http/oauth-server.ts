import { createPrivateKey, hkdfSync } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { Adapter, AdapterPayload, default as OidcProvider } from 'oidc-provider';
import { verifyAccessToken, type AccessClaims } from '../auth/tokens';
import { isApiKeySecret } from '../auth/api-keys';
import { AppError, badRequest, forbidden, notFound, unauthorized } from '../lib/errors';
import type { RedisClient } from '../lib/redis';
import { redisKeys, type RedisKeys } from '../lib/redis-keys';
import { guardedFetch } from '../mcp/guarded-fetch';
import type { ApiContext } from './context';
import { jsonBody } from './middleware/json-body';

/** What the authorization server needs: the person's session check, their flows, Redis, and revocations. */
export type OAuthServerPorts = Pick<ApiContext, 'config' | 'logger' | 'redis' | 'tokens' | 'flows' | 'revocations'>;

/** The scopes of `/mcp`: list the tools, call every agentflow; `flow:<id>` calls that one flow only. */
export const MCP_SCOPES = ['mcp:read', 'mcp:call'] as const;
const FLOW_SCOPE = /^flow:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Where the authorization server is mounted, under the site root. */
export const OAUTH_PATH = '/oauth';
/** Access tokens live an hour, refresh tokens 30 days (each refresh rotates the refresh token). */
const ACCESS_TOKEN_TTL = 3600;
const REFRESH_TOKEN_TTL = 30 * 24 * 3600;

/** The id an OAuth grant's requests are watched under on every node: revoking it ends them. */
export const grantRevocationId = (grantId: string) => `oauth-grant:${grantId}`;

/** The URLs of the protected resource (`/mcp`) and its authorization server. */
export function oauthUrls(publicUrl: string) {
  return {
    issuer: `${publicUrl}${OAUTH_PATH}`,
    resource: `${publicUrl}/mcp`,
    resourceMetadata: `${publicUrl}/.well-known/oauth-protected-resource/mcp`,
  };
}

/** The RFC 9728 metadata of `/mcp`. */
export function protectedResourceMetadata(publicUrl: string) {
  const urls = oauthUrls(publicUrl);
  return {
    resource: urls.resource,
    authorization_servers: [urls.issuer],
    scopes_supported: [...MCP_SCOPES],
    bearer_methods_supported: ['header'],
    resource_name: 'Switchboard MCP',
  };
}

/** The scope words of a space-separated string. */
const words = (value: unknown): string[] => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []);

/**
 * A key derived from the deployment's JWT secret: every api node derives the same one, and it
 * changes when the secret is rotated. Never stored, never in code.
 */
const derive = (secret: Uint8Array, purpose: string) => Buffer.from(hkdfSync('sha256', secret, 'switchboard', purpose, 32));

/** The Ed25519 signing key (JWK) of the authorization server, derived from the JWT secret. */
function signingJwk(secret: Uint8Array): Record<string, unknown> {
  const seed = derive(secret, 'oauth-signing-key');
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  return { ...jwk, alg: 'EdDSA', use: 'sig', kid: 'switchboard-oauth-1' };
}

/**
 * The authorization server's storage in Redis: one key per entity with the entity's own expiry,
 * a set per grant naming its entities (so a grant is revoked in one pass), and a key per session
 * uid. No transaction spans two keys, so a Redis Cluster serves it as well.
 */
class RedisOAuthAdapter implements Adapter {
  private readonly keys: RedisKeys;
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly model: string,
    private readonly onGrantRevoked: (grantId: string) => void,
  ) {
    this.keys = redisKeys(prefix);
  }

  private key(id: string) {
    return this.keys.oauthEntity(this.model, id);
  }
  private grantKey(grantId: string) {
    return this.keys.oauthGrantIndex(grantId);
  }
  private uidKey(uid: string) {
    return this.keys.oauthSessionUid(uid);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.key(id);
    const ttl = Math.max(1, Math.ceil(expiresIn || REFRESH_TOKEN_TTL));
    await this.redis.set(key, JSON.stringify(payload), 'EX', ttl);
    if (payload.grantId) {
      const index = this.grantKey(payload.grantId);
      await this.redis.sadd(index, key);
      // The index outlives its longest entity.
      const left = await this.redis.ttl(index);
      if (left < ttl) await this.redis.expire(index, ttl);
    }
    if (payload.uid) await this.redis.set(this.uidKey(payload.uid), id, 'EX', ttl);
    // A person's grants are listed for them (the clients they allowed); the set outlives its longest grant.
    if (this.model === 'Grant' && typeof payload.accountId === 'string') {
      const account = this.keys.oauthAccountGrants(payload.accountId);
      await this.redis.sadd(account, id);
      const left = await this.redis.ttl(account);
      if (left < ttl) await this.redis.expire(account, ttl);
    }
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const value = await this.redis.get(this.key(id));
    return value ? (JSON.parse(value) as AdapterPayload) : undefined;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.get(this.uidKey(uid));
    return id ? this.find(id) : undefined;
  }

  findByUserCode(): Promise<AdapterPayload | undefined> {
    // No device flow: no user codes.
    return Promise.resolve(undefined);
  }

  async consume(id: string): Promise<void> {
    const payload = await this.find(id);
    if (payload) await this.redis.set(this.key(id), JSON.stringify({ ...payload, consumed: Math.floor(Date.now() / 1000) }), 'KEEPTTL');
  }

  async destroy(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const index = this.grantKey(grantId);
    const keys = await this.redis.smembers(index);
    for (const key of keys) await this.redis.del(key);
    await this.redis.del(index);
    this.onGrantRevoked(grantId);
  }
}

/** A client a person allowed to use `/mcp` as them: one grant (one consent), its scopes and its time. */
export interface AllowedClient {
  grantId: string;
  clientId: string;
  scopes: string[];
  allowedAt: string;
  expiresAt: string | null;
}

/** The grants of `accountId` still stored, newest first; ids whose grant expired are dropped from the set. */
export async function allowedClients(ctx: Pick<OAuthServerPorts, 'redis' | 'config'>, accountId: string): Promise<AllowedClient[]> {
  const keys = redisKeys(ctx.config.redis.keyPrefix);
  const account = keys.oauthAccountGrants(accountId);
  const ids = await ctx.redis.smembers(account);
  const clients: AllowedClient[] = [];
  for (const grantId of ids) {
    const stored = await ctx.redis.get(keys.oauthEntity('Grant', grantId));
    const grant = stored
      ? (JSON.parse(stored) as { accountId?: string; clientId?: string; resources?: Record<string, string>; iat?: number; exp?: number })
      : undefined;
    if (!grant || grant.accountId !== accountId) {
      await ctx.redis.srem(account, grantId);
      continue;
    }
    clients.push({
      grantId,
      clientId: String(grant.clientId),
      scopes: Object.values(grant.resources ?? {}).flatMap(words),
      allowedAt: new Date((grant.iat ?? 0) * 1000).toISOString(),
      expiresAt: grant.exp ? new Date(grant.exp * 1000).toISOString() : null,
    });
  }
  return clients.sort((a, b) => b.allowedAt.localeCompare(a.allowedAt) || a.grantId.localeCompare(b.grantId));
}

/**
 * Revokes the client of one of `accountId`'s grants: every grant of that client for them, as the
 * token revocation endpoint does for one grant (its tokens and codes deleted, the revocation
 * announced so its requests in flight end on every node). Another person's grant, or none, is 404.
 */
export async function revokeAllowedClient(
  ctx: Pick<OAuthServerPorts, 'redis' | 'config' | 'revocations'>,
  accountId: string,
  grantId: string,
): Promise<AllowedClient[]> {
  const clients = await allowedClients(ctx, accountId);
  const chosen = clients.find((client) => client.grantId === grantId);
  if (!chosen) throw notFound('Allowed client');
  const keys = redisKeys(ctx.config.redis.keyPrefix);
  const revoked = clients.filter((client) => client.clientId === chosen.clientId);
  const ended: string[] = [];
  const adapter = new RedisOAuthAdapter(ctx.redis, ctx.config.redis.keyPrefix, 'Grant', (id) => ended.push(id));
  for (const client of revoked) {
    await adapter.revokeByGrantId(client.grantId);
    await ctx.redis.del(keys.oauthEntity('Grant', client.grantId));
    await ctx.redis.srem(keys.oauthAccountGrants(accountId), client.grantId);
  }
  await ctx.revocations.announce(ended.map(grantRevocationId));
  return revoked;
}

type OidcModule = typeof import('oidc-provider');
let oidcModule: Promise<OidcModule> | undefined;
/** `oidc-provider`, loaded at the first OAuth request: a process that serves none never loads it. */
const loadOidc = () => (oidcModule ??= import('oidc-provider'));

/** The flow scopes named anywhere in these scope strings. */
const flowScopesIn = (...scopes: unknown[]) => scopes.flatMap(words).filter((word) => FLOW_SCOPE.test(word));

async function createProvider(ctx: OAuthServerPorts): Promise<OidcProvider> {
  const { default: Provider, errors } = await loadOidc();
  const { publicUrl } = ctx.config.oauth;
  const urls = oauthUrls(publicUrl);
  const secret = ctx.tokens.secret;
  const fetchClientDocument = guardedFetch({
    maxResponseBytes: 5 * 1024,
    privateOrigins: ctx.config.flowHttp.privateOrigins,
  });
  const announceGrant = (grantId: string) => {
    ctx.revocations
      .announce([grantRevocationId(grantId)])
      .catch((error: unknown) => ctx.logger.warn({ err: error }, 'could not announce a revoked OAuth grant'));
  };
  const provider = new Provider(urls.issuer, {
    adapter: (model: string) => new RedisOAuthAdapter(ctx.redis, ctx.config.redis.keyPrefix, model, announceGrant),
    // Clients identify themselves by their metadata document's URL; none is registered here.
    clients: [],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: 'EdDSA',
    },
    jwks: { keys: [signingJwk(secret)] },
    cookies: { keys: [derive(secret, 'oauth-cookies').toString('base64url')] },
    // The client's metadata document is fetched under the outbound rules of tools: no private
    // address unless the operator allowed its origin, no redirect, a small body.
    fetch: (url: string, options: RequestInit) => fetchClientDocument(url, options),
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      clientIdMetadataDocument: { enabled: true, ack: 'draft-02' },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => urls.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (
          oidcCtx: { oidc?: { params?: Record<string, unknown>; entities?: Record<string, { scope?: string } | undefined> } },
          indicator: string,
        ) => {
          if (indicator !== urls.resource) throw new errors.InvalidTarget('The only resource is this deployment’s /mcp');
          const entities = oidcCtx.oidc?.entities ?? {};
          const flows = flowScopesIn(oidcCtx.oidc?.params?.scope, entities.AuthorizationCode?.scope, entities.RefreshToken?.scope);
          return {
            scope: [...MCP_SCOPES, ...new Set(flows)].join(' '),
            audience: urls.resource,
            accessTokenFormat: 'opaque',
            accessTokenTTL: ACCESS_TOKEN_TTL,
          };
        },
      },
    },
    // Authorization code with PKCE (S256) for every client; refresh tokens rotate at each use.
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access'],
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      Grant: REFRESH_TOKEN_TTL,
      Interaction: 600,
      RefreshToken: REFRESH_TOKEN_TTL,
      Session: REFRESH_TOKEN_TTL,
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${OAUTH_PATH}/interaction/${interaction.uid}` },
    renderError: (koa: { type: string; body: unknown }, out: Record<string, unknown>) => {
      koa.type = 'json';
      koa.body = out;
    },
  });
  // Its router sets the forwarded host and scheme to the public URL's before each request.
  provider.proxy = true;
  provider.on('server_error', (_ctx, error) => ctx.logger.warn({ err: error }, 'OAuth server error'));
  return provider;
}

/** The signed-in person behind a request: a console access token only, never an API key. */
async function signedInPerson(ctx: OAuthServerPorts, req: Request): Promise<AccessClaims> {
  const header = req.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  if (!token) throw unauthorized('Sign in to the console to decide');
  if (isApiKeySecret(token)) throw forbidden('An API key cannot authorize a client: a signed-in person decides');
  const claims = await verifyAccessToken(ctx.tokens, token);
  if (!claims) throw unauthorized('Invalid or expired access token');
  if (claims.role === 'service') throw forbidden('A service account cannot authorize a client');
  return claims;
}

/** The person's agentflow of that id, or undefined (another user's flow, or none, is a 404). */
async function ownAgentflow(ctx: OAuthServerPorts, userId: string, flowId: string) {
  try {
    const flow = await ctx.flows.get(userId, flowId);
    return flow.type === 'agentflow' ? flow : undefined;
  } catch (error) {
    if (error instanceof AppError && error.status === 404) return undefined;
    throw error;
  }
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** What each scope lets the client do, as the consent page says it. */
async function scopeLines(ctx: OAuthServerPorts, userId: string | undefined, scopes: string[]): Promise<string[]> {
  const lines: string[] = [];
  if (scopes.includes('mcp:read')) lines.push('mcp:read — list your agentflows as tools');
  if (scopes.includes('mcp:call')) lines.push('mcp:call — run any of your agentflows');
  for (const scope of scopes.filter((word) => FLOW_SCOPE.test(word))) {
    const flowId = scope.slice(5);
    const flow = userId ? await ownAgentflow(ctx, userId, flowId) : undefined;
    lines.push(`${scope} — run the agentflow ${flow ? `“${flow.name}”` : flowId}`);
  }
  return lines;
}

/** The consent page: names the client, the scopes and the flows; its script asks the console session to decide. */
function consentPage(uid: string, client: { id: string; name?: string }, lines: string[]): string {
  const base = `${OAUTH_PATH}/interaction/${encodeURIComponent(uid)}`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorize ${escapeHtml(client.name ?? client.id)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head><body>
<main data-interaction="${escapeHtml(uid)}">
<h1>Authorize ${escapeHtml(client.name ?? client.id)}</h1>
<p>The application <strong>${escapeHtml(client.name ?? client.id)}</strong> (<code>${escapeHtml(client.id)}</code>) asks to use Switchboard over MCP as you:</p>
<ul>${lines.map((line) => `<li>${escapeHtml(line)}</li>`).join('')}</ul>
<p id="status">Checking your console session…</p>
<button id="allow" disabled>Allow</button> <button id="deny" disabled>Deny</button>
</main>
<script>
(async () => {
  const status = document.getElementById('status');
  const res = await fetch('/api/v1/auth/refresh', { method: 'POST', headers: { 'X-Session-Cookie': '1', 'Content-Type': 'application/json' }, body: '{}', credentials: 'same-origin' });
  if (!res.ok) { status.textContent = 'Sign in to the Switchboard console in this browser, then reload this page.'; return; }
  const { accessToken } = await res.json();
  status.textContent = 'Signed in. Allow this application?';
  const decide = async (decision) => {
    const answer = await fetch(${JSON.stringify(`${base}/confirm`)}, { method: 'POST', credentials: 'same-origin', headers: { Authorization: 'Bearer ' + accessToken, 'Content-Type': 'application/json' }, body: JSON.stringify({ decision }) });
    const body = await answer.json();
    if (body.redirectTo) location.assign(body.redirectTo); else status.textContent = body.error ? body.error.message : 'Failed';
  };
  for (const id of ['allow', 'deny']) { const b = document.getElementById(id); b.disabled = false; b.onclick = () => decide(id); }
})();
</script></body></html>`;
}

/**
 * `/oauth`: Switchboard as the OAuth 2.1 authorization server of `/mcp` (`oidc-provider`):
 * authorization code with PKCE, clients identified by their metadata document's HTTPS URL,
 * rotating refresh tokens, revocation (RFC 7009) that ends the client's requests on every node,
 * and a consent page where a person signed in to the console decides.
 */
function oauthRouterWith(ctx: OAuthServerPorts, shared: { provider: () => Promise<OidcProvider> }): Router {
  const router = express.Router();
  const ready = shared.provider;

  router.get('/interaction/:uid', async (req: Request, res: Response, next) => {
    try {
      const oidc = await ready();
      const details = await oidc.interactionDetails(req, res).catch(() => {
        throw badRequest('This authorization request is unknown or expired: start again from the application');
      });
      const clientId = String(details.params.client_id);
      const client = await oidc.Client.find(clientId);
      const lines = await scopeLines(ctx, details.session?.accountId, words(details.params.scope));
      res.setHeader(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
      );
      res.type('html').send(consentPage(details.uid, { id: clientId, name: client?.clientName }, lines));
    } catch (error) {
      next(error);
    }
  });

  router.post(
    '/interaction/:uid/confirm',
    jsonBody(ctx.config.http.bodyLimit, 'application/json'),
    async (req: Request, res: Response, next: express.NextFunction) => {
      try {
        const person = await signedInPerson(ctx, req);
        const decision = (req.body as { decision?: unknown } | undefined)?.decision;
        if (decision !== 'allow' && decision !== 'deny') throw badRequest('decision: allow or deny');
        const oidc = await ready();
        const details = await oidc.interactionDetails(req, res).catch(() => {
          throw badRequest('This authorization request is unknown or expired: start again from the application');
        });
        if (details.uid !== req.params.uid) throw badRequest('This page is not the authorization request of this browser');
        if (decision === 'deny') {
          const redirectTo = await oidc.interactionResult(
            req,
            res,
            { error: 'access_denied', error_description: 'The user denied access' },
            { mergeWithLastSubmission: false },
          );
          return void res.json({ redirectTo });
        }
        const clientId = String(details.params.client_id);
        const requested = words(details.params.scope);
        // A flow scope names one of the person's own agentflows; another's (or none) is refused.
        for (const scope of requested.filter((word) => FLOW_SCOPE.test(word))) {
          const flow = await ownAgentflow(ctx, person.sub, scope.slice(5));
          if (!flow) throw badRequest(`${scope} names none of your agentflows`);
        }
        const granted = requested.filter((word) => (MCP_SCOPES as readonly string[]).includes(word) || FLOW_SCOPE.test(word));
        if (!granted.length) throw badRequest('The application asked for no scope of /mcp');
        const grant = new oidc.Grant({ accountId: person.sub, clientId });
        grant.addResourceScope(oauthUrls(ctx.config.oauth.publicUrl).resource, granted.join(' '));
        // `openid` and `offline_access` (which clients ask for to get a refresh token) are granted as asked,
        // or the provider would ask for consent again on the way back to the client.
        const openIdScopes = requested.filter((word) => word === 'openid' || word === 'offline_access');
        if (openIdScopes.length) grant.addOIDCScope(openIdScopes.join(' '));
        const grantId = await grant.save();
        const redirectTo = await oidc.interactionResult(
          req,
          res,
          { login: { accountId: person.sub }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
        ctx.logger.info({ userId: person.sub, clientId, scopes: granted }, 'OAuth client authorized');
        res.json({ redirectTo });
      } catch (error) {
        next(error);
      }
    },
  );

  // Everything else is the provider's: discovery, authorization, token, revocation, JWKS. It is
  // told the public URL's host and scheme, so every URL it gives out is the deployment's public one
  // whichever node or proxy the request came through.
  const publicUrl = new URL(ctx.config.oauth.publicUrl);
  router.use(async (req: Request, res: Response, next: express.NextFunction) => {
    try {
      req.headers.host = publicUrl.host;
      req.headers['x-forwarded-host'] = publicUrl.host;
      req.headers['x-forwarded-proto'] = publicUrl.protocol.slice(0, -1);
      (await ready()).callback()(req, res);
    } catch (error) {
      next(error);
    }
  });
  return router;
}

/** An OAuth access token for `/mcp`, checked: its user, scopes and grant. */
export interface OAuthAccess {
  userId: string;
  clientId: string;
  grantId: string;
  scopes: string[];
}

/**
 * The resource server's check of a bearer token: issued by this server, not expired, and bound to
 * `/mcp` (a token for another resource is refused). One Redis read.
 */
export function oauthVerifier(ctx: OAuthServerPorts, router: { provider: () => Promise<OidcProvider> }) {
  const resource = oauthUrls(ctx.config.oauth.publicUrl).resource;
  return async (token: string): Promise<OAuthAccess | null> => {
    if (token.length > 200) return null;
    const found = await (await router.provider()).AccessToken.find(token);
    if (!found || found.isExpired) return null;
    const audiences = [found.aud ?? []].flat();
    if (!audiences.includes(resource)) return null;
    return { userId: found.accountId, clientId: found.clientId, grantId: found.grantId, scopes: words(found.scope) };
  };
}

/** The authorization server of a deployment: its router and the resource server's token check, sharing one provider. */
export function oauthServer(ctx: OAuthServerPorts) {
  let provider: Promise<OidcProvider> | undefined;
  const shared = { provider: () => (provider ??= createProvider(ctx)) };
  return { router: oauthRouterWith(ctx, shared), verify: oauthVerifier(ctx, shared) };
}

/** The `WWW-Authenticate` challenge of `/mcp`: where its metadata is, the scopes, and why a token was refused. */
export const bearerChallenge = (publicUrl: string, error?: string) =>
  `Bearer resource_metadata="${oauthUrls(publicUrl).resourceMetadata}", scope="${MCP_SCOPES.join(' ')}"${error ? `, error="${error}"` : ''}`;
