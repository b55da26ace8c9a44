import { z } from 'zod';
import { badRequest } from '../../lib/errors';
import { decodeCursor, idKey, pageOf, pageQuerySchema } from '../../lib/pagination';
import { uuidParam } from '../../schemas/api';
import type { ApiKeyView } from '../../auth/api-keys';
import { requireSession } from '../middleware/authenticate';
import { routesWith } from '../route';
import type { ApiContext } from '../context';

/** The API key routes' port: only the key service. */
export type ApiKeyPorts = Pick<ApiContext, 'apiKeys'>;
const route = routesWith<ApiKeyPorts>();
const tags = ['auth'];

export const MAX_API_KEY_NAME_CHARS = 100;
const scopeSchema = z.enum(['read', 'write']).describe('`read`: GET and HEAD only; `write`: everything the user may do');

/** `POST /api-keys`: a name, the scopes (default both) and an optional expiry in the future. */
export const createApiKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(MAX_API_KEY_NAME_CHARS).describe('What the key is for, shown in lists'),
  scopes: z.array(scopeSchema).min(1).max(2).optional().describe('Default `["read", "write"]`; `admin` is never granted to a key'),
  expiresAt: z.iso.datetime({ offset: true }).optional().describe('When the key stops working (ISO 8601, in the future); default never'),
});

export const apiKeyView = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string().describe('The first characters of the secret, to tell keys apart'),
  scopes: z.array(scopeSchema),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().describe('Last use, to the minute'),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});
const createdApiKeyResponse = z.object({
  apiKey: apiKeyView,
  secret: z.string().describe('The key itself (`sb_live_…`): shown this once, never again'),
});
const apiKeyListResponse = z.object({ apiKeys: z.array(apiKeyView), nextCursor: z.string().nullable() });
const revokedApiKeyResponse = z.object({ apiKey: apiKeyView });
export const apiKeysPageQuerySchema = pageQuerySchema(50);

const iso = (date: Date | null) => date?.toISOString() ?? null;
const toView = (key: ApiKeyView): z.output<typeof apiKeyView> => ({
  id: key.id,
  name: key.name,
  prefix: key.prefix,
  scopes: key.scopes,
  createdAt: key.createdAt.toISOString(),
  lastUsedAt: iso(key.lastUsedAt),
  expiresAt: iso(key.expiresAt),
  revokedAt: iso(key.revokedAt),
});

const SESSION_ONLY = 'Needs a signed-in session: an API key cannot create, list or revoke keys (403).';

/** `/api-keys`: create (the secret once), list, revoke — with a session token only. */
export const apiKeyRoutes = [
  route({
    method: 'post',
    path: '/api-keys',
    operationId: 'createApiKey',
    tags,
    auth: 'bearer',
    summary: 'Create an API key; the answer holds its secret, shown this once',
    description:
      'Programs send the secret as `Authorization: Bearer sb_live_…` or `X-API-Key: sb_live_…` and act as the caller with the key’s scopes. ' +
      `Only its SHA-256 is stored. ${SESSION_ONLY} An \`expiresAt\` not in the future, an unknown scope or a name over ${MAX_API_KEY_NAME_CHARS} characters is 400.`,
    body: createApiKeySchema,
    responses: { 201: { description: 'The key and its secret', schema: createdApiKeyResponse } },
    errors: [400, 403],
    handler: async (input, ctx) => {
      requireSession(input.user, 'Creating an API key');
      const { name, scopes, expiresAt } = input.body;
      const expires = expiresAt ? new Date(expiresAt) : null;
      if (expires && expires.getTime() <= Date.now())
        throw badRequest('expiresAt must be in the future', [{ path: 'expiresAt', message: 'not in the future' }]);
      const { secret, ...key } = await ctx.apiKeys.create(input.user.id, { name, scopes: scopes ?? ['read', 'write'], expiresAt: expires });
      return { apiKey: toView(key), secret };
    },
  }),

  route({
    method: 'get',
    path: '/api-keys',
    operationId: 'listApiKeys',
    tags,
    auth: 'bearer',
    summary: "The caller's API keys, newest first, in pages (never their secrets)",
    description: `Revoked and expired keys are listed too, with \`revokedAt\` / \`expiresAt\`. ${SESSION_ONLY}`,
    query: apiKeysPageQuerySchema,
    responses: { 200: { description: 'A page of keys', schema: apiKeyListResponse } },
    errors: [400, 403],
    handler: async (input, ctx) => {
      requireSession(input.user, 'Listing API keys');
      const { limit, cursor } = input.query;
      const beforeId = cursor ? decodeCursor(cursor, idKey) : undefined;
      const page = pageOf(await ctx.apiKeys.list(input.user.id, { limit: limit + 1, beforeId }), limit, (key) => [key.id]);
      return { apiKeys: page.items.map(toView), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'delete',
    path: '/api-keys/:id',
    operationId: 'revokeApiKey',
    tags,
    auth: 'bearer',
    summary: 'Revoke an API key at once, on every node (its open sockets are closed)',
    description: `Revoking a revoked key answers it unchanged. ${SESSION_ONLY}`,
    params: { id: { schema: uuidParam, resource: 'API key' } },
    responses: { 200: { description: 'The revoked key', schema: revokedApiKeyResponse } },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      requireSession(user, 'Revoking an API key');
      return { apiKey: toView(await ctx.apiKeys.revoke(user.id, params.id)) };
    },
  }),
];
