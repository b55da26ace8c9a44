import { createHash, randomBytes } from 'node:crypto';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type {
  AuthorizationServerMetadata,
  OAuthClientInformationMixed,
  OAuthClientMetadata,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { SecretBox } from '../connectors/secret-box';
import { AppError, badRequest } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { describeRedacted } from '../lib/redact-error';
import type { Repositories } from '../models';
import type { McpOAuthGrantRow, McpOAuthStatus, McpServerRow } from '../models/schema';
import { guardedFetch, type OutboundLimits } from './guarded-fetch';

/** How long a sign-in may take between its authorization URL and the callback. */
const SIGN_IN_TTL_SECONDS = 600;
/** An access token is refreshed this long before it expires, so it does not expire between check and use. */
const EXPIRY_MARGIN_MS = 60_000;

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');
const sealContext = (serverId: string, userId: string) => `mcp_oauth:${serverId}:${userId}`;

/** The cookie that binds one sign-in to the browser that started it, named after its state. */
export const mcpOAuthCookie = (state: string) =>
  `sb_mcp_${sha256(state)
    .slice(0, 16)
    .replace(/[^A-Za-z0-9]/g, '0')}`;
/** Where the binding cookies are sent: the callback's path only. */
export const MCP_OAUTH_COOKIE_PATH = '/api/v1/mcp-oauth/';

/** What a server's 401 said about signing in (RFC 9728 `WWW-Authenticate` parameters). */
export interface McpOAuthChallenge {
  resourceMetadataUrl?: URL;
  scope?: string;
}

/** How to sign in to a server: its authorization server and Switchboard's client id there. */
export interface McpOAuthPlan {
  issuer: string;
  metadata: AuthorizationServerMetadata;
  client: OAuthClientInformationMixed;
  resource: string;
  scope?: string;
}

/** A sign-in under way: the URL the person opens, and the cookie that binds it to their browser. */
export interface McpSignIn {
  authorizationUrl: string;
  expiresAt: string;
  binding: { cookieName: string; value: string; maxAgeSeconds: number };
}

/** One user's sign-in to one server, sealed as one document bound to both. */
interface GrantDocument {
  /** The authorization server, as discovered, and its metadata (RFC 8414). */
  issuer: string;
  metadata: AuthorizationServerMetadata;
  client: OAuthClientInformationMixed;
  /** The RFC 8707 resource the tokens are for: the MCP server. */
  resource: string;
  scope?: string;
  /** The PKCE verifier of the sign-in under way. */
  verifier?: string;
  tokens?: { access_token: string; refresh_token?: string; token_type: string; scope?: string };
}

/** A sign-in the user must make (again) before the server's tools can be used. */
export class McpSignInRequiredError extends Error {
  constructor(server: string) {
    super(`sign in to MCP server ${server} first`);
    this.name = 'McpSignInRequiredError';
  }
}

/** How a user's sign-in to a server stands, as their server view shows it. */
export interface McpOAuthView {
  status: McpOAuthStatus | 'not_started';
  /** When the access token expires (it is refreshed before then on use). */
  expiresAt: string | null;
}

export const toMcpOAuthView = (grant: McpOAuthGrantRow | undefined): McpOAuthView => ({
  status: grant?.status ?? 'not_started',
  expiresAt: grant?.expiresAt?.toISOString() ?? null,
});

type AuthSdk = typeof import('@modelcontextprotocol/sdk/client/auth.js') &
  typeof import('@modelcontextprotocol/sdk/shared/auth-utils.js') & {
    OAuthError: typeof import('@modelcontextprotocol/sdk/server/auth/errors.js').OAuthError;
  };
let authSdk: Promise<AuthSdk> | undefined;
/** The MCP SDK's OAuth client, loaded at the first sign-in or refresh. */
function loadAuthSdk(): Promise<AuthSdk> {
  authSdk ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/auth.js'),
    import('@modelcontextprotocol/sdk/shared/auth-utils.js'),
    import('@modelcontextprotocol/sdk/server/auth/errors.js'),
  ]).then(([auth, utils, errors]) => ({ ...auth, ...utils, OAuthError: errors.OAuthError }));
  return authSdk;
}

/**
 * OAuth sign-in of the MCP client to the servers that want it, with the MCP SDK's OAuth client:
 * protected-resource metadata (RFC 9728) names the authorization server, whose metadata (RFC 8414)
 * gives the endpoints; the client id is Switchboard's Client ID Metadata Document when this
 * deployment has an HTTPS public URL and the server takes one, else a dynamic registration (RFC
 * 7591); the authorization request uses PKCE (S256) and names the MCP server as its resource (RFC
 * 8707). Every request goes through the outbound guard of MCP servers (private addresses refused,
 * a deadline, a response cap). Tokens are sealed per server and user, and refreshed before they
 * expire; a refused refresh leaves the sign-in `sign_in_required`.
 */
export class McpOAuth {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'mcpOAuth'>;
      box: SecretBox;
      /** The outbound limits of MCP servers, and the deadline of each request. */
      limits: OutboundLimits & { timeoutMs: number };
      /** This deployment's public URL (no trailing slash): the callback and the client metadata document live under it. */
      publicUrl: string;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'mcp-oauth' });
  }

  /** Where the authorization server sends the browser back. */
  get redirectUri(): string {
    return `${this.deps.publicUrl}/api/v1/mcp-oauth/callback`;
  }

  /** Switchboard's Client ID Metadata Document URL, when the public URL is HTTPS (a client id must be an HTTPS URL). */
  get clientMetadataUrl(): string | undefined {
    return this.deps.publicUrl.startsWith('https:') ? `${this.deps.publicUrl}/api/v1/mcp-oauth/client-metadata.json` : undefined;
  }

  /** The client's metadata: the body of the Client ID Metadata Document, and of a dynamic registration. */
  clientMetadata(): OAuthClientMetadata & { client_id?: string } {
    return {
      ...(this.clientMetadataUrl ? { client_id: this.clientMetadataUrl } : {}),
      client_name: 'Switchboard',
      client_uri: this.deps.publicUrl,
      redirect_uris: [this.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  /**
   * Whether the server wants OAuth: it answers an `initialize` with 401 and a Bearer challenge.
   * The challenge's parameters, or null (it answered otherwise, or not at all).
   */
  async probe(url: string): Promise<McpOAuthChallenge | null> {
    try {
      const response = await this.fetch()(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'switchboard', version: '1' } },
        }),
      });
      await response.body?.cancel();
      if (response.status !== 401 || !/^bearer\b/i.test(response.headers.get('www-authenticate') ?? '')) return null;
      const { extractWWWAuthenticateParams } = await loadAuthSdk();
      const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(response);
      return { resourceMetadataUrl, scope };
    } catch (error) {
      this.log.debug({ cause: describeRedacted(error) }, 'MCP server did not answer the sign-in probe');
      return null;
    }
  }

  /** Starts `userId`'s sign-in to `server` (see {@link McpOAuth.start}), discovering its authorization first. */
  async begin(server: McpServerRow, userId: string): Promise<McpSignIn> {
    return this.start(server, userId, await this.prepare(server, undefined, await this.deps.repos.mcpOAuth.get(server.id, userId)));
  }

  /**
   * Discovers how to sign in to the server at `server.url` (its challenge, protected-resource and
   * authorization server metadata) and gets a client id: the one `held` already has with the same
   * authorization server, Switchboard's metadata document, or a dynamic registration. Writes
   * nothing here; 400 `oauth_unsupported` when the server's authorization cannot be used.
   */
  async prepare(
    server: Pick<McpServerRow, 'url' | 'name'>,
    challenge?: McpOAuthChallenge | null,
    held?: McpOAuthGrantRow,
  ): Promise<McpOAuthPlan> {
    const sdk = await loadAuthSdk();
    const fetchFn = this.fetch();
    const said = challenge ?? (await this.probe(server.url)) ?? {};
    const unsupported = (why: string) => new AppError(400, 'oauth_unsupported', `MCP server ${server.name} cannot be signed in to: ${why}`);
    let info;
    try {
      info = await sdk.discoverOAuthServerInfo(server.url, { resourceMetadataUrl: said.resourceMetadataUrl, fetchFn });
    } catch (error) {
      throw unsupported(`its authorization server metadata could not be read (${describeRedacted(error)})`);
    }
    const metadata = info.authorizationServerMetadata;
    if (!metadata) throw unsupported('it publishes no authorization server metadata');
    if (!metadata.code_challenge_methods_supported?.includes('S256'))
      throw unsupported('its authorization server does not offer PKCE (S256)');
    for (const endpoint of [metadata.authorization_endpoint, metadata.token_endpoint, metadata.registration_endpoint]) {
      if (endpoint && !this.secureEnough(endpoint)) throw unsupported(`${new URL(endpoint).origin} is not HTTPS`);
    }
    const resource = info.resourceMetadata?.resource ?? sdk.resourceUrlFromServerUrl(server.url).href;
    if (!sdk.checkResourceAllowed({ requestedResource: server.url, configuredResource: resource }))
      throw unsupported(`its protected resource metadata names another resource (${resource})`);
    const scope = said.scope ?? info.resourceMetadata?.scopes_supported?.join(' ');
    const issuer = info.authorizationServerUrl;
    const earlier = held ? this.open(held) : undefined;
    let client = earlier?.issuer === issuer ? earlier.client : undefined;
    if (!client && this.clientMetadataUrl && metadata.client_id_metadata_document_supported === true)
      client = { client_id: this.clientMetadataUrl };
    if (!client && metadata.registration_endpoint) {
      try {
        client = await sdk.registerClient(issuer, { metadata, clientMetadata: this.clientMetadata(), scope, fetchFn });
      } catch (error) {
        throw unsupported(`its authorization server refused to register Switchboard (${describeRedacted(error)})`);
      }
    }
    if (!client)
      throw unsupported('its authorization server takes neither a client metadata document from this deployment nor a registration');
    return { issuer, metadata, client, resource, scope };
  }

  /**
   * Starts `userId`'s sign-in to `server` with a {@link McpOAuth.prepare}d plan: PKCE, a state, and
   * a binding for the browser. Returns the authorization URL the person opens. Tokens of an earlier
   * sign-in stay in use until this one completes.
   */
  async start(server: McpServerRow, userId: string, plan: McpOAuthPlan): Promise<McpSignIn> {
    const sdk = await loadAuthSdk();
    const { issuer, metadata, client, resource, scope } = plan;
    const state = randomBytes(32).toString('base64url');
    const binding = randomBytes(32).toString('base64url');
    const { authorizationUrl, codeVerifier } = await sdk.startAuthorization(issuer, {
      metadata,
      clientInformation: client,
      redirectUrl: this.redirectUri,
      scope,
      state,
      resource: new URL(resource),
    });
    const expiresAt = new Date(Date.now() + SIGN_IN_TTL_SECONDS * 1_000);
    await this.deps.repos.mcpOAuth.locked(server.id, userId, async (row) => {
      const current = row ? this.open(row) : undefined;
      // Tokens of the same authorization server stay usable until the new sign-in completes.
      const tokens = current?.issuer === issuer ? current.tokens : undefined;
      const doc: GrantDocument = { issuer, metadata, client, resource, scope, verifier: codeVerifier, tokens };
      return {
        status: tokens ? row!.status : 'pending',
        sealed: this.seal(doc, server.id, userId),
        expiresAt: tokens ? (row?.expiresAt ?? null) : null,
        signIn: { stateHash: sha256(state), bindingHash: sha256(binding), expiresAt },
      };
    });
    this.log.info({ server: server.name, userId, issuer: new URL(issuer).origin }, 'MCP sign-in started');
    return {
      authorizationUrl: authorizationUrl.href,
      expiresAt: expiresAt.toISOString(),
      binding: { cookieName: mcpOAuthCookie(state), value: binding, maxAgeSeconds: SIGN_IN_TTL_SECONDS },
    };
  }

  /**
   * The callback: accepts the state once, from the browser that started its sign-in (its binding
   * cookie), trades the code for tokens and seals them. A denied consent, an unknown, expired,
   * replayed or other browser's state writes nothing and is 400.
   */
  async complete(
    query: { code?: string; state?: string; error?: string; iss?: string },
    cookies: Record<string, string>,
  ): Promise<{ serverId: string; userId: string }> {
    if (query.error) throw new AppError(400, 'oauth_denied', 'The authorization server did not grant access: nothing was signed in');
    if (!query.code || !query.state) throw badRequest('The callback needs code and state');
    const invalid = () =>
      new AppError(
        400,
        'invalid_state',
        'This sign-in is unknown, expired, already used or was started in another browser; start it again',
      );
    const binding = cookies[mcpOAuthCookie(query.state)];
    if (!binding) throw invalid();
    const row = await this.deps.repos.mcpOAuth.consumeSignIn(sha256(query.state), sha256(binding));
    if (!row) throw invalid();
    const doc = this.open(row);
    if (!doc.verifier) throw invalid();
    // RFC 9207: a server that names itself in the response must be the one the request went to (mix-up defence).
    if (query.iss !== undefined && query.iss !== doc.metadata.issuer)
      throw new AppError(400, 'invalid_state', 'The sign-in came back from another authorization server; start it again');
    const sdk = await loadAuthSdk();
    let tokens;
    try {
      tokens = await sdk.exchangeAuthorization(doc.issuer, {
        metadata: doc.metadata,
        clientInformation: doc.client,
        authorizationCode: query.code,
        codeVerifier: doc.verifier,
        redirectUri: this.redirectUri,
        resource: new URL(doc.resource),
        fetchFn: this.fetch(),
      });
    } catch (error) {
      if (error instanceof sdk.OAuthError)
        throw new AppError(400, 'invalid_grant', 'The authorization server refused the authorization code; sign in again');
      this.log.warn({ serverId: row.serverId, cause: describeRedacted(error) }, 'MCP sign-in code exchange failed');
      throw new AppError(503, 'oauth_server_unavailable', 'The authorization server did not complete the sign-in; try again later');
    }
    await this.deps.repos.mcpOAuth.locked(row.serverId, row.userId, async (currentRow) => {
      const current = currentRow ? this.open(currentRow) : doc;
      const next: GrantDocument = {
        ...current,
        tokens: {
          access_token: tokens.access_token,
          refresh_token: tokens.refresh_token,
          token_type: tokens.token_type,
          scope: tokens.scope,
        },
        verifier: current.verifier === doc.verifier ? undefined : current.verifier,
      };
      return { status: 'signed_in', sealed: this.seal(next, row.serverId, row.userId), expiresAt: expiry(tokens.expires_in) };
    });
    this.log.info({ serverId: row.serverId, userId: row.userId }, 'MCP sign-in completed');
    return { serverId: row.serverId, userId: row.userId };
  }

  /**
   * A current access token of `userId` for `server`, refreshed first when it expires within a
   * minute, or when the server refused `rejected` (the token last used). Throws
   * {@link McpSignInRequiredError} when there is no usable sign-in (never made, or a refresh refused).
   */
  async accessToken(server: McpServerRow, userId: string, rejected?: string): Promise<string> {
    const row = await this.deps.repos.mcpOAuth.get(server.id, userId);
    const doc = row?.status === 'signed_in' ? this.open(row) : undefined;
    if (!row || !doc?.tokens) throw new McpSignInRequiredError(server.name);
    if (!rejected && !stale(row)) return doc.tokens.access_token;
    const seen = rejected ?? doc.tokens.access_token;
    let token: string | undefined;
    await this.deps.repos.mcpOAuth.locked(server.id, userId, async (locked) => {
      const current = locked?.status === 'signed_in' ? this.open(locked) : undefined;
      if (!locked || !current?.tokens) return undefined;
      // Another request refreshed while this one waited for the lock: its token is the one to use.
      if (current.tokens.access_token !== seen && !stale(locked)) {
        token = current.tokens.access_token;
        return undefined;
      }
      const refreshed = await this.refresh(server, current);
      if (!refreshed) return { status: 'sign_in_required', sealed: locked.sealed, expiresAt: locked.expiresAt };
      token = refreshed.tokens.access_token;
      return { status: 'signed_in', sealed: this.seal(refreshed.doc, server.id, userId), expiresAt: refreshed.expiresAt };
    });
    if (!token) throw new McpSignInRequiredError(server.name);
    return token;
  }

  /** Trades the refresh token for new tokens; null when the server refuses (sign in again). Other failures throw. */
  private async refresh(
    server: McpServerRow,
    doc: GrantDocument,
  ): Promise<{ doc: GrantDocument; tokens: NonNullable<GrantDocument['tokens']>; expiresAt: Date | null } | null> {
    if (!doc.tokens?.refresh_token) return null;
    const sdk = await loadAuthSdk();
    try {
      const fresh = await sdk.refreshAuthorization(doc.issuer, {
        metadata: doc.metadata,
        clientInformation: doc.client,
        refreshToken: doc.tokens.refresh_token,
        resource: new URL(doc.resource),
        fetchFn: this.fetch(),
      });
      const tokens = {
        access_token: fresh.access_token,
        refresh_token: fresh.refresh_token ?? doc.tokens.refresh_token,
        token_type: fresh.token_type,
        scope: fresh.scope ?? doc.tokens.scope,
      };
      this.log.info({ server: server.name }, 'MCP access token refreshed');
      return { doc: { ...doc, tokens }, tokens, expiresAt: expiry(fresh.expires_in) };
    } catch (error) {
      if (!(error instanceof sdk.OAuthError)) throw error;
      this.log.warn({ server: server.name, reason: error.errorCode }, 'MCP refresh token refused: sign in again');
      return null;
    }
  }

  /** An OAuth endpoint must be HTTPS, unless the operator lets its origin be reached as a private one. */
  private secureEnough(endpoint: string): boolean {
    const url = new URL(endpoint);
    return url.protocol === 'https:' || (url.protocol === 'http:' && this.deps.limits.privateOrigins.includes(url.origin));
  }

  /** The outbound guard of MCP servers, each request bounded by the call deadline. */
  private fetch(): FetchLike {
    const guarded = guardedFetch(this.deps.limits);
    return (url, init = {}) => {
      const deadline = AbortSignal.timeout(this.deps.limits.timeoutMs);
      return guarded(url, { ...init, signal: init.signal ? AbortSignal.any([init.signal, deadline]) : deadline });
    };
  }

  private seal(doc: GrantDocument, serverId: string, userId: string): string {
    return this.deps.box.seal(JSON.stringify(doc), sealContext(serverId, userId));
  }

  private open(row: McpOAuthGrantRow): GrantDocument {
    return JSON.parse(this.deps.box.open(row.sealed, sealContext(row.serverId, row.userId)).plaintext) as GrantDocument;
  }
}

const expiry = (expiresIn: number | undefined) => (expiresIn ? new Date(Date.now() + expiresIn * 1_000) : null);
const stale = (row: McpOAuthGrantRow) => row.expiresAt !== null && row.expiresAt.getTime() - EXPIRY_MARGIN_MS <= Date.now();
