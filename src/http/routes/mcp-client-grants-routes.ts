import { z } from 'zod';
import { requireSession } from '../middleware/authenticate';
import { allowedClients, revokeAllowedClient, type AllowedClient } from '../oauth-server';
import { routesWith } from '../route';
import type { ApiContext } from '../context';

/** The allowed-clients routes' port: the authorization server's storage and the revocations. */
export type McpClientGrantPorts = Pick<ApiContext, 'redis' | 'config' | 'revocations'>;
const route = routesWith<McpClientGrantPorts>();
const tags = ['auth'];

export const allowedClientView = z.object({
  grantId: z.string().describe('The consent: revoking it revokes every consent given to its client'),
  clientId: z.string().describe("The client's id: the HTTPS URL of its metadata document"),
  scopes: z.array(z.string()).describe('What it may do at `/mcp`: `mcp:read`, `mcp:call`, `flow:<id>`'),
  allowedAt: z.string(),
  expiresAt: z.string().nullable().describe('When the consent ends unless it is used to refresh'),
});
const allowedClientsResponse = z.object({ clients: z.array(allowedClientView) });
const revokedClientsResponse = z.object({ revoked: z.array(allowedClientView) });
/** A grant id of the authorization server (letters, digits, `_` and `-`). */
export const grantIdParam = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

const SESSION_ONLY = 'Needs a signed-in session: an API key or an OAuth token cannot list or revoke the clients (403).';
const view = (client: AllowedClient): z.output<typeof allowedClientView> => ({ ...client });

/** `/mcp-clients`: the OAuth clients a person allowed to use `/mcp` as them, and revoking one. */
export const mcpClientGrantRoutes = [
  route({
    method: 'get',
    path: '/mcp-clients',
    operationId: 'listAllowedMcpClients',
    tags,
    auth: 'bearer',
    summary: 'The OAuth clients the caller allowed to use /mcp as them, newest first',
    description: `One entry per consent on the consent page that is still valid. ${SESSION_ONLY}`,
    responses: { 200: { description: 'The allowed clients', schema: allowedClientsResponse } },
    errors: [403],
    handler: async ({ user }, ctx) => {
      requireSession(user, 'Listing the allowed MCP clients');
      return { clients: (await allowedClients(ctx, user.id)).map(view) };
    },
  }),

  route({
    method: 'delete',
    path: '/mcp-clients/:grantId',
    operationId: 'revokeAllowedMcpClient',
    tags,
    auth: 'bearer',
    summary: "Revoke a client's access to /mcp at once, on every node",
    description:
      'Revokes every consent the caller gave to the client of this grant: its access and refresh tokens stop working, ' +
      `and its MCP requests in flight on any api node end with \`session_revoked\`. Another person's grant, or an unknown one, is 404. ${SESSION_ONLY}`,
    params: { grantId: { schema: grantIdParam, resource: 'Allowed client' } },
    responses: { 200: { description: 'The revoked consents', schema: revokedClientsResponse } },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      requireSession(user, 'Revoking an MCP client');
      return { revoked: (await revokeAllowedClient(ctx, user.id, params.grantId)).map(view) };
    },
  }),
];
