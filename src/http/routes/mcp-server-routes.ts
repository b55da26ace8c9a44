import type { Response } from 'express';
import { z } from 'zod';
import { AppError, forbidden } from '../../lib/errors';
import { MCP_OAUTH_COOKIE_PATH, mcpOAuthCookie as mcpCookieOf, type McpSignIn } from '../../mcp/mcp-oauth';
import { registerMcpServerSchema } from '../../mcp/mcp-tools';
import { uuidParam } from '../../schemas/api';
import { isAdminCaller, requireSession, requireWriteScope, type AuthUser } from '../middleware/authenticate';
import { routesWith } from '../route';
import type { ApiContext } from '../context';
import { readCookies } from './oauth-routes';

/** The MCP server routes' port: the registered servers' service, the admin directory for shared ones, and the public URL. */
export type McpServerPorts = Pick<ApiContext, 'mcpServers' | 'admin'> & { config: Pick<ApiContext['config'], 'oauth'> };
const route = routesWith<McpServerPorts>();
const tags = ['mcp'];

export const mcpServerView = z.object({
  id: z.uuid(),
  name: z.string().describe('Tools of the server are named `mcp__<name>__<tool>`'),
  shared: z.boolean().describe('Registered by an operator for every user; a server of your own with the same name hides it'),
  url: z.string(),
  authHeader: z
    .object({ name: z.string(), stored: z.literal(true) })
    .nullable()
    .describe('The header sent to the server, by name only: its value is stored sealed and never returned'),
  oauth: z
    .object({
      status: z
        .enum(['not_started', 'pending', 'signed_in', 'sign_in_required'])
        .describe('`pending`: a sign-in was started, not completed; `sign_in_required`: the server refused the refresh, sign in again'),
      expiresAt: z.iso.datetime().nullable().describe('When the access token expires; it is refreshed before then on use'),
    })
    .nullable()
    .describe('A server that wants OAuth: how your own sign-in to it stands (each user signs in with their own account). Null: no sign-in'),
  allowedTools: z.array(z.string()),
  safeTools: z.array(z.string()).describe('Tools that run without approval; every other allowed tool is dangerous'),
  createdAt: z.iso.datetime(),
});
const signInView = z.object({
  authorizationUrl: z.url().describe('Open it in the browser (the console does): the server’s authorization page, with PKCE'),
  expiresAt: z.iso.datetime().describe('The sign-in must come back to the callback before then'),
});
const mcpServerResponse = z.object({
  mcpServer: mcpServerView,
  signIn: signInView.optional().describe('Present when the server wants OAuth: the registering person’s sign-in, started'),
});
const signInResponse = z.object({ signIn: signInView });
const callbackQuery = z.looseObject({
  code: z.string().max(4_096).optional(),
  state: z.string().max(4_096).optional(),
  error: z.string().max(500).optional(),
  iss: z.string().max(2_000).optional(),
});
const callbackResponse = z.object({ signedIn: z.literal(true), mcpServerId: z.uuid(), name: z.string() });
const clientMetadataResponse = z.looseObject({
  client_id: z.string().optional(),
  client_name: z.string(),
  redirect_uris: z.array(z.string()),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
  token_endpoint_auth_method: z.string(),
});

/**
 * Binds a sign-in to the browser that started it: HttpOnly, sent back on the authorization server's
 * top-level redirect (SameSite=Lax), only to the callback's path, Secure when the public URL is https.
 */
function bindSignIn(res: Response, ctx: McpServerPorts, signIn: McpSignIn): { authorizationUrl: string; expiresAt: string } {
  res.cookie(signIn.binding.cookieName, signIn.binding.value, {
    httpOnly: true,
    sameSite: 'lax',
    secure: ctx.config.oauth.publicUrl.startsWith('https:'),
    path: MCP_OAUTH_COOKIE_PATH,
    maxAge: signIn.binding.maxAgeSeconds * 1000,
  });
  return { authorizationUrl: signIn.authorizationUrl, expiresAt: signIn.expiresAt };
}
const mcpServerListResponse = z.object({ mcpServers: z.array(mcpServerView) });

export const mcpToolStatusView = z.object({
  name: z.string(),
  description: z.string().describe('As the server describes it now, without hidden text (invisible characters, HTML comments)'),
  hash: z.string().describe('`sha256:` of the tool’s name, description and input schema'),
  state: z
    .enum(['pinned', 'new', 'changed'])
    .describe('`pinned`: as approved; `new`: never pinned; `changed`: differs from what was registered or approved (held back)'),
  flags: z
    .array(z.enum(['instructions', 'hidden_text', 'html_comment', 'too_long']))
    .describe('Why the description is held back: it orders the model about, hides text, or is very long'),
  offered: z.boolean().describe('Whether models are offered the tool; a changed or flagged one waits for the owner’s approval'),
});
const mcpToolsResponse = z.object({ tools: z.array(mcpToolStatusView) });
const TOOLS_DESCRIPTION =
  'Each allowed tool as the server lists it now, against the definition pinned when the server was registered or its tools were approved. ' +
  'A tool whose definition changed since (a "rug pull") or whose description is flagged is not offered to any model until the owner approves it; ' +
  'a new plain tool is pinned by the listing that first sees it. 503 `mcp_unreachable` when the server does not answer.';

/** Operators only (never through an API key): 403 otherwise. */
async function requireAdmin(ctx: McpServerPorts, caller: AuthUser): Promise<void> {
  if (!(await isAdminCaller(ctx.admin.directory, caller))) throw forbidden('Admins only');
}

/** `/mcp-servers`: the caller's MCP servers, whose tools their agentflow nodes and assistant may use. */
export const mcpServerRoutes = [
  route({
    method: 'post',
    path: '/mcp-servers',
    operationId: 'registerMcpServer',
    tags,
    auth: 'bearer',
    summary: 'Register an MCP server (Streamable HTTP) whose allowed tools your flows and assistant may call',
    description:
      'Name its tools in an agentflow node as `mcp__<name>__<tool>`. A URL at a private address (or resolving to one) is 400 unless the operator ' +
      'allowed its origin (`FLOW_HTTP_PRIVATE_ORIGINS`); a `safeTools` entry not in `allowedTools` is 400; a name you already use is 409 `name_taken`. ' +
      'The `authHeader` value is sealed at rest and never returned nor logged. ' +
      'A server registered without `authHeader` that answers 401 with a Bearer `WWW-Authenticate` challenge wants OAuth: its authorization is ' +
      'discovered first (400 `oauth_unsupported` when it cannot be used, nothing stored) and your sign-in starts (`signIn.authorizationUrl`; ' +
      'open it in this browser: a cookie binds the sign-in to it).',
    body: registerMcpServerSchema,
    responses: { 201: { description: 'The server (without its auth header value)', schema: mcpServerResponse } },
    errors: [400, 409],
    handler: async (input, ctx) => {
      const { server, signIn } = await ctx.mcpServers.register(input.user.id, input.body);
      return { mcpServer: server, ...(signIn ? { signIn: bindSignIn(input.res, ctx, signIn) } : {}) };
    },
  }),

  route({
    method: 'post',
    path: '/mcp-servers/:id/oauth/authorize',
    operationId: 'signInMcpServer',
    tags,
    auth: 'bearer',
    summary: 'Start (again) your OAuth sign-in to an MCP server that wants one: open the `authorizationUrl` in this browser',
    description:
      'For your own servers and the shared ones: each user signs in with their own account, and only their own calls use their tokens. ' +
      'The authorization server sends the browser back to `GET /mcp-oauth/callback` within 10 minutes; a cookie binds the sign-in to this browser. ' +
      'Tokens of an earlier sign-in stay in use until this one completes. 404 for no such server, 409 `oauth_not_used` for one without sign-in, ' +
      '400 `oauth_unsupported` when its authorization cannot be used; a `read` API key is 403.',
    params: { id: { schema: uuidParam, resource: 'MCP server' } },
    responses: { 200: { description: 'Open `authorizationUrl`', schema: signInResponse } },
    errors: [400, 403, 404, 409],
    handler: async ({ user, params, res }, ctx) => {
      // The callback stores tokens for this user: a read key may not start that write.
      requireWriteScope(user, 'signing in to an MCP server');
      return { signIn: bindSignIn(res, ctx, await ctx.mcpServers.beginSignIn(user.id, params.id)) };
    },
  }),

  // The authorization server redirects the browser here without a Bearer token: the state and its binding cookie name the sign-in.
  route({
    method: 'get',
    path: '/mcp-oauth/callback',
    operationId: 'mcpOAuthCallback',
    tags,
    auth: 'public',
    summary: 'Where an MCP server’s authorization server sends the browser back after a sign-in',
    description:
      'Needs `code` and the `state` of a sign-in started in this browser (its binding cookie) within 10 minutes, once; anything else is 400 ' +
      '`invalid_state` and changes nothing. A declined consent is 400 `oauth_denied`; a code the server refuses 400 `invalid_grant`; a server ' +
      'that does not answer 503 `oauth_server_unavailable`. The answer names the server, never a token. A browser that navigated here ' +
      '(its `Accept` prefers `text/html`) goes back to the console: 303 to `/#/flows?mcpSignedIn=<name>`, or `/#/flows?mcpOAuthError=<code>`.',
    query: callbackQuery,
    responses: { 200: { description: 'Signed in', schema: callbackResponse } },
    errors: [400, 503],
    handler: async ({ req, res, query }, ctx) => {
      const browser = req.accepts(['application/json', 'text/html']) === 'text/html';
      const cookies = readCookies(req.headers.cookie);
      let done;
      try {
        done = await ctx.mcpServers.completeSignIn(query, cookies);
      } catch (error) {
        if (!browser || !(error instanceof AppError)) throw error;
        res.redirect(303, `/#/flows?mcpOAuthError=${encodeURIComponent(error.code)}`);
        return;
      }
      if (query.state) res.clearCookie(mcpCookieOf(query.state), { path: MCP_OAUTH_COOKIE_PATH });
      if (!browser) return { signedIn: true as const, ...done };
      res.redirect(303, `/#/flows?mcpSignedIn=${encodeURIComponent(done.name)}`);
    },
  }),

  route({
    method: 'get',
    path: '/mcp-oauth/client-metadata.json',
    operationId: 'mcpOAuthClientMetadata',
    tags,
    auth: 'public',
    summary: 'Switchboard’s OAuth Client ID Metadata Document, for the MCP servers it signs in to',
    description:
      'When this deployment’s public URL is HTTPS, this document’s URL is Switchboard’s client id at authorization servers that accept ' +
      'client metadata documents; elsewhere Switchboard registers itself dynamically.',
    responses: { 200: { description: 'The client metadata', schema: clientMetadataResponse } },
    handler: async ({ res }, ctx) => {
      res.setHeader('Cache-Control', 'public, max-age=3600');
      return ctx.mcpServers.oauth.clientMetadata();
    },
  }),

  route({
    method: 'get',
    path: '/mcp-servers',
    operationId: 'listMcpServers',
    tags,
    auth: 'bearer',
    summary: 'Your MCP servers, newest first (at most 50)',
    responses: { 200: { description: 'The servers', schema: mcpServerListResponse } },
    handler: async (input, ctx) => ({ mcpServers: await ctx.mcpServers.list(input.user.id) }),
  }),

  route({
    method: 'delete',
    path: '/mcp-servers/:id',
    operationId: 'deleteMcpServer',
    tags,
    auth: 'bearer',
    summary: 'Delete an MCP server: its tools are no longer offered (a node naming one is told it does not exist)',
    params: { id: { schema: uuidParam, resource: 'MCP server' } },
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.mcpServers.remove(user.id, params.id);
    },
  }),

  route({
    method: 'get',
    path: '/mcp-servers/:id/tools',
    operationId: 'listMcpServerTools',
    tags,
    auth: 'bearer',
    summary: 'Your MCP server’s allowed tools as it lists them now: pinned, new or changed, and flagged descriptions',
    description: TOOLS_DESCRIPTION,
    params: { id: { schema: uuidParam, resource: 'MCP server' } },
    responses: { 200: { description: 'The tools', schema: mcpToolsResponse } },
    errors: [404, 503],
    handler: async ({ user, params }, ctx) => ({ tools: await ctx.mcpServers.tools(user.id, params.id) }),
  }),

  route({
    method: 'post',
    path: '/mcp-servers/:id/tools/approve',
    operationId: 'approveMcpServerTools',
    tags,
    auth: 'bearer',
    summary: 'Approve your MCP server’s tools as it lists them now (a signed-in person only): their definitions are pinned and offered',
    description: `${TOOLS_DESCRIPTION} 403 with an API key: approving needs a signed-in session.`,
    params: { id: { schema: uuidParam, resource: 'MCP server' } },
    responses: { 200: { description: 'The tools, all pinned', schema: mcpToolsResponse } },
    errors: [403, 404, 503],
    handler: async ({ user, params }, ctx) => {
      requireSession(user, 'Approving MCP tools');
      return { tools: await ctx.mcpServers.approveTools(user.id, params.id) };
    },
  }),

  route({
    method: 'post',
    path: '/admin/mcp-servers/:id/tools/approve',
    operationId: 'approveSharedMcpServerTools',
    tags,
    auth: 'bearer',
    summary: 'Approve a shared MCP server’s tools as it lists them now (admins only, a signed-in session)',
    description: TOOLS_DESCRIPTION,
    params: { id: { schema: uuidParam, resource: 'MCP server' } },
    responses: { 200: { description: 'The tools, all pinned', schema: mcpToolsResponse } },
    errors: [403, 404, 503],
    handler: async ({ user, params }, ctx) => {
      requireSession(user, 'Approving MCP tools');
      await requireAdmin(ctx, user);
      return { tools: await ctx.mcpServers.approveTools(null, params.id, user.id) };
    },
  }),

  route({
    method: 'post',
    path: '/admin/mcp-servers',
    operationId: 'registerSharedMcpServer',
    tags,
    auth: 'bearer',
    summary: 'Share an MCP server with every user (admins only)',
    description:
      'As `POST /mcp-servers`, for every user: their nodes and assistant may use its allowed tools (a user’s own server of the same name hides it). ' +
      'Its auth header is the operator’s, never shown to users. 403 for anyone but an admin’s own session.',
    body: registerMcpServerSchema,
    responses: { 201: { description: 'The shared server (without its auth header value)', schema: mcpServerResponse } },
    errors: [400, 403, 409],
    handler: async (input, ctx) => {
      // The body first: its schema is public (the OpenAPI document), so a 400 tells a non-admin nothing.
      const body = input.body;
      await requireAdmin(ctx, input.user);
      const { server, signIn } = await ctx.mcpServers.register(null, body, input.user.id);
      return { mcpServer: server, ...(signIn ? { signIn: bindSignIn(input.res, ctx, signIn) } : {}) };
    },
  }),

  route({
    method: 'get',
    path: '/admin/mcp-servers',
    operationId: 'listSharedMcpServers',
    tags,
    auth: 'bearer',
    summary: 'The MCP servers shared with every user (admins only)',
    responses: { 200: { description: 'The shared servers', schema: mcpServerListResponse } },
    errors: [403],
    handler: async (input, ctx) => {
      await requireAdmin(ctx, input.user);
      return { mcpServers: await ctx.mcpServers.list(null, input.user.id) };
    },
  }),

  route({
    method: 'delete',
    path: '/admin/mcp-servers/:id',
    operationId: 'deleteSharedMcpServer',
    tags,
    auth: 'bearer',
    summary: 'Stop sharing an MCP server (admins only)',
    params: { id: { schema: uuidParam, resource: 'MCP server' } },
    responses: { 204: 'Deleted' },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      await requireAdmin(ctx, user);
      await ctx.mcpServers.remove(null, params.id, user.id);
    },
  }),
];
