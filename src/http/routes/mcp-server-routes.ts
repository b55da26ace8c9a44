import { z } from 'zod';
import { forbidden } from '../../lib/errors';
import { registerMcpServerSchema } from '../../mcp/mcp-tools';
import { uuidParam } from '../../schemas/api';
import { isAdminCaller, type AuthUser } from '../middleware/authenticate';
import { routesWith } from '../route';
import type { ApiContext } from '../context';

/** The MCP server routes' port: the registered servers' service, and the admin directory for shared ones. */
export type McpServerPorts = Pick<ApiContext, 'mcpServers' | 'admin'>;
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
  allowedTools: z.array(z.string()),
  safeTools: z.array(z.string()).describe('Tools that run without approval; every other allowed tool is dangerous'),
  createdAt: z.iso.datetime(),
});
const mcpServerResponse = z.object({ mcpServer: mcpServerView });
const mcpServerListResponse = z.object({ mcpServers: z.array(mcpServerView) });

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
      'The `authHeader` value is sealed at rest and never returned nor logged.',
    body: registerMcpServerSchema,
    responses: { 201: { description: 'The server (without its auth header value)', schema: mcpServerResponse } },
    errors: [400, 409],
    handler: async (input, ctx) => ({ mcpServer: await ctx.mcpServers.register(input.user.id, input.body) }),
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
      return { mcpServer: await ctx.mcpServers.register(null, body, input.user.id) };
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
      return { mcpServers: await ctx.mcpServers.list(null) };
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
