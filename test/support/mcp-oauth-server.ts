import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Response } from 'express';
import express from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { getOAuthProtectedResourceMetadataUrl, mcpAuthRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidGrantError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { OAuthRegisteredClientsStore } from '@modelcontextprotocol/sdk/server/auth/clients.js';
import type { AuthorizationParams, OAuthServerProvider } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { OAuthClientInformationFull, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

interface Issued {
  account: string;
  clientId: string;
  resource?: string;
  expiresAt: number;
}

/**
 * An MCP server that accepts only OAuth, on 127.0.0.1: the MCP SDK's authorization server router
 * (metadata, dynamic registration, authorize with PKCE, token, refresh) in front of a small
 * in-memory provider, and the SDK's bearer middleware (with audience check) in front of `/mcp`,
 * which answers 401 with `WWW-Authenticate: Bearer resource_metadata=…`. The person signs in by
 * opening the authorization URL with `?login=<account>` (their account at this server); the
 * authorization then redirects to the client's callback with a code. Every tool call records the
 * account whose token made it.
 */
export async function serveOAuthMcpTools(name: string, register: (server: McpServer, account: () => string) => void) {
  const app = express();
  const clients = new Map<string, OAuthClientInformationFull>();
  const codes = new Map<string, { params: AuthorizationParams; clientId: string; account: string }>();
  const accessTokens = new Map<string, Issued>();
  const refreshTokens = new Map<string, Issued>();
  const state = {
    /** Seconds an access token lives. */
    expiresIn: 3600,
    registrations: 0,
    refreshes: 0,
    /** Each MCP request's account (from its token). */
    requests: [] as string[],
  };
  const issue = (grant: Omit<Issued, 'expiresAt'>): OAuthTokens => {
    const access = `at-${randomBytes(16).toString('hex')}`;
    const refresh = `rt-${randomBytes(16).toString('hex')}`;
    const expiresAt = Math.floor(Date.now() / 1000) + state.expiresIn;
    accessTokens.set(access, { ...grant, expiresAt });
    refreshTokens.set(refresh, { ...grant, expiresAt: expiresAt + 86_400 });
    return { access_token: access, token_type: 'Bearer', expires_in: state.expiresIn, refresh_token: refresh, scope: 'tools' };
  };
  const clientsStore: OAuthRegisteredClientsStore = {
    getClient: (id) => clients.get(id),
    registerClient: (client) => {
      state.registrations++;
      const full = { ...client, client_id: randomUUID(), client_id_issued_at: Math.floor(Date.now() / 1000) };
      clients.set(full.client_id, full);
      return full;
    },
  };
  let pendingLogin = '';
  const provider: OAuthServerProvider = {
    clientsStore,
    async authorize(client, params, res: Response) {
      const code = randomBytes(16).toString('hex');
      codes.set(code, { params, clientId: client.client_id, account: pendingLogin });
      const back = new URL(params.redirectUri);
      back.searchParams.set('code', code);
      if (params.state) back.searchParams.set('state', params.state);
      res.redirect(302, back.href);
    },
    async challengeForAuthorizationCode(_client, code) {
      const entry = codes.get(code);
      if (!entry) throw new InvalidGrantError('unknown code');
      return entry.params.codeChallenge;
    },
    async exchangeAuthorizationCode(client, code) {
      const entry = codes.get(code);
      if (!entry || entry.clientId !== client.client_id) throw new InvalidGrantError('unknown code');
      codes.delete(code);
      return issue({ account: entry.account, clientId: client.client_id, resource: entry.params.resource?.href });
    },
    async exchangeRefreshToken(client, refreshToken) {
      const entry = refreshTokens.get(refreshToken);
      if (!entry || entry.clientId !== client.client_id) throw new InvalidGrantError('refresh token refused');
      refreshTokens.delete(refreshToken);
      state.refreshes++;
      return issue({ account: entry.account, clientId: entry.clientId, resource: entry.resource });
    },
    async verifyAccessToken(token): Promise<AuthInfo> {
      const entry = accessTokens.get(token);
      if (!entry) throw new InvalidTokenError('unknown token');
      return {
        token,
        clientId: entry.clientId,
        scopes: ['tools'],
        expiresAt: entry.expiresAt,
        resource: entry.resource ? new URL(entry.resource) : undefined,
        extra: { account: entry.account },
      };
    },
  };
  // The person "logs in" by the query of the authorization URL they open (a stand-in for a login form).
  app.get('/authorize', (req, _res, next) => {
    pendingLogin = String(req.query.login ?? 'nobody');
    next();
  });
  const http: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const mcpUrl = new URL(`${origin}/mcp`);
  app.use(mcpAuthRouter({ provider, issuerUrl: new URL(origin), scopesSupported: ['tools'], resourceServerUrl: mcpUrl }));
  app.post(
    '/mcp',
    express.json({ limit: '1mb' }),
    requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl), expectedResource: mcpUrl }),
    async (req, res) => {
      const account = String(req.auth?.extra?.account);
      state.requests.push(account);
      const server = new McpServer({ name, version: '1.0.0' });
      register(server, () => account);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    },
  );
  return {
    origin,
    url: mcpUrl.href,
    state,
    /** Ends every access token now (the server refuses them before they expire). */
    revokeAccessTokens: () => accessTokens.clear(),
    /** Ends every refresh token (a refresh is refused: the user must sign in again). */
    revokeRefreshTokens: () => refreshTokens.clear(),
    close: () => {
      http.closeAllConnections();
      return new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
