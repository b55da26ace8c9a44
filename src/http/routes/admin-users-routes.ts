import { z } from 'zod';
import { TIERS } from '../../../config';
import { limitOverridesSchema, resolveLimits } from '../../auth/limits';
import { forbidden, notFound } from '../../lib/errors';
import { decodeCursor, idKey, pageOf, pageQuerySchema } from '../../lib/pagination';
import type { UserRow } from '../../models/schema';
import type { Repositories } from '../../models';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { isAdminCaller, type AuthUser } from '../middleware/authenticate';
import { routesWith } from '../route';

/** The operator routes' port: the admin directory, the tier table, the users repository. */
export type AdminUserPorts = Pick<ApiContext, 'admin'> & { config: Pick<ApiContext['config'], 'tiers'> } & {
  repos: Pick<Repositories, 'users'>;
};
const route = routesWith<AdminUserPorts>();

const userIdParam = {
  id: { schema: uuidParam, description: 'User id. A malformed id answers 404, like a missing one.', resource: 'User' },
};

export const setTierSchema = z.strictObject({ tier: z.enum(TIERS).describe('The tier the user moves to') });
export const setLimitsSchema = z.strictObject({
  limits: limitOverridesSchema.nullable().describe("The user's overrides over their tier, replacing any before; null clears them"),
});

/** `GET /admin/users`: `?q` (part of an email or name), `?limit` 1–200 (default 50), `?cursor`. */
export const adminUsersQuerySchema = pageQuerySchema(50).extend({
  q: z.string().trim().max(200).optional().describe('Only users whose email or name contains this (any case)'),
});
const userListResponse = z.object({
  users: z.array(
    z.object({
      id: z.uuid(),
      email: z.string(),
      name: z.string(),
      tier: z.enum(TIERS),
      admin: z.boolean().describe('Holds admin rights (an operator grant or ADMIN_USER_IDS)'),
      createdAt: z.string(),
    }),
  ),
  nextCursor: z.string().nullable(),
});

const featuresSchema = z.object({ localModels: z.boolean(), cloudAgents: z.boolean(), flows: z.boolean() });
/** The limits in effect (tier + overrides); an unlimited number is `null`. */
export const tierLimitsSchema = z.object({
  generationsPerMinute: z.number(),
  generationsPerHour: z.number(),
  concurrentGenerations: z.number(),
  maxBlocksPerGeneration: z.number(),
  maxEnabledAgents: z.number().nullable().describe('null = unlimited'),
  maxKnowledgeFileBytes: z
    .number()
    .nullable()
    .describe("Largest knowledge file, in bytes (never above the deployment's cap); null = the deployment's cap"),
  maxKnowledgeDocuments: z
    .number()
    .nullable()
    .describe("Documents per knowledge base (never above the deployment's cap); null = the deployment's cap"),
  maxKnowledgeBases: z.number().nullable().describe('Knowledge bases the user may own; null = unlimited'),
  minScheduleIntervalSeconds: z.number().describe('The shortest gap between two fires of a flow schedule'),
  tokensPerHour: z.number().nullable(),
  requestsPerHour: z.number().nullable(),
  tokensPerMonth: z.number().nullable(),
  costUsdPerMonth: z.number().nullable(),
  requestsPerMonth: z.number().nullable(),
  features: featuresSchema,
});
export const userPlanResponse = z.object({
  user: z.object({
    id: z.string(),
    tier: z.enum(TIERS),
    limitOverrides: limitOverridesSchema.nullable(),
    limits: tierLimitsSchema,
  }),
});

const planView = (user: UserRow, tiers: ApiContext['config']['tiers']) => ({
  user: { id: user.id, tier: user.tier, limitOverrides: user.limitOverrides ?? null, limits: resolveLimits(user, tiers) },
});

/**
 * 403 unless the caller holds admin rights now (read from the database, never the token alone) and
 * signed in: an API key never carries admin rights, even an admin's.
 */
async function requireAdmin(ctx: AdminUserPorts, caller: AuthUser): Promise<void> {
  if (!(await isAdminCaller(ctx.admin.directory, caller))) throw forbidden('Admins only');
}

const EFFECT = "Admins only (403 otherwise); audited; in effect from the user's next request on every node. An unknown user is 404.";

/** Operators change a user's tier and limit overrides at runtime. */
export const adminUserRoutes = [
  route({
    method: 'get',
    path: '/admin/users',
    operationId: 'listUsers',
    tags: ['operations'],
    auth: 'bearer',
    summary: 'The users (admins), newest first, in pages, optionally searched by email or name',
    description:
      'Admins only (403 otherwise; an API key never carries admin rights). `q` keeps the users whose email or name contains it, ' +
      'in any case (`%` and `_` are plain characters). Service accounts are not listed. Pass `nextCursor` as `?cursor` for the next page.',
    query: adminUsersQuerySchema,
    responses: { 200: { description: 'A page of users', schema: userListResponse } },
    errors: [400, 403],
    handler: async (input, ctx) => {
      // Rights first: a non-admin is refused whatever the query says, and learns nothing of its schema.
      await requireAdmin(ctx, input.user);
      const { q, limit, cursor } = input.query;
      const beforeId = cursor ? decodeCursor(cursor, idKey) : undefined;
      const rows = await ctx.repos.users.listPage({ limit: limit + 1, beforeId, search: q || undefined });
      const page = pageOf(rows, limit, (user) => [user.id]);
      const { directory } = ctx.admin;
      return {
        users: page.items.map((user) => ({
          id: user.id,
          email: user.email,
          name: user.name,
          tier: user.tier,
          admin: user.role === 'admin' || directory.namedByEnv(user.id),
          createdAt: user.createdAt.toISOString(),
        })),
        nextCursor: page.nextCursor,
      };
    },
  }),
  route({
    method: 'get',
    path: '/admin/users/:id/plan',
    operationId: 'getUserPlan',
    tags: ['operations'],
    auth: 'bearer',
    summary: "A user's tier, limit overrides and the limits in effect",
    description: 'Admins only (403 otherwise). An unknown user is 404.',
    params: userIdParam,
    responses: { 200: { description: "The user's plan and the limits in effect", schema: userPlanResponse } },
    errors: [403, 404],
    handler: async (input, ctx) => {
      await requireAdmin(ctx, input.user);
      const user = await ctx.repos.users.findById(input.params.id);
      if (!user) throw notFound('User');
      return planView(user, ctx.config.tiers);
    },
  }),
  route({
    method: 'put',
    path: '/admin/users/:id/tier',
    operationId: 'setUserTier',
    tags: ['operations'],
    auth: 'bearer',
    summary: 'Move a user to another tier',
    description: `${EFFECT} A tier \`TIER_LIMITS\` does not know is 400.`,
    params: userIdParam,
    body: setTierSchema,
    responses: { 200: { description: "The user's plan and the limits now in effect", schema: userPlanResponse } },
    errors: [400, 403, 404],
    handler: async (input, ctx) => {
      // Rights first: a non-admin is refused whatever the body says.
      await requireAdmin(ctx, input.user);
      const { tier } = input.body;
      const user = await ctx.repos.users.changePlan(input.params.id, { tier }, { actorId: input.user.id, details: { via: 'api' } });
      if (!user) throw notFound('User');
      return planView(user, ctx.config.tiers);
    },
  }),
  route({
    method: 'put',
    path: '/admin/users/:id/limits',
    operationId: 'setUserLimits',
    tags: ['operations'],
    auth: 'bearer',
    summary: "Replace a user's limit overrides (null clears them)",
    description:
      `${EFFECT} The overrides replace any earlier ones and are laid over the tier key by key: ` +
      '`tokensPerHour`, `requestsPerHour`, `tokensPerMonth`, `costUsdPerMonth`, `requestsPerMonth` (null = unlimited) and `features`. An unknown key or a negative number is 400.',
    params: userIdParam,
    body: setLimitsSchema,
    responses: { 200: { description: "The user's plan and the limits now in effect", schema: userPlanResponse } },
    errors: [400, 403, 404],
    handler: async (input, ctx) => {
      // Rights first: a non-admin is refused whatever the body says.
      await requireAdmin(ctx, input.user);
      const { limits } = input.body;
      const user = await ctx.repos.users.changePlan(
        input.params.id,
        { limitOverrides: limits },
        { actorId: input.user.id, details: { via: 'api' } },
      );
      if (!user) throw notFound('User');
      return planView(user, ctx.config.tiers);
    },
  }),
];
