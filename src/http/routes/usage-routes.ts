import { z } from 'zod';
import { badRequest, forbidden } from '../../lib/errors';
import { isAdminCaller } from '../middleware/authenticate';
import { routesWith } from '../route';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';

/** The usage routes' port: only the usage repository and the admin directory. */
export type UsageRoutePorts = Pick<ApiContext, 'admin'> & { repos: Pick<Repositories, 'usage'> };
const route = routesWith<UsageRoutePorts>();

const DAY_MS = 86_400_000;
/** The longest range one request may ask: a year and a day (a leap year's span, both ends included). */
export const MAX_USAGE_DAYS = 367;

/** `GET /usage`: UTC days `from`..`to` (both included; default the last 30 days), `all=true` for admins. */
export const usageQuerySchema = z.strictObject({
  from: z.iso.date().optional().describe('First UTC day, `YYYY-MM-DD` (default: 29 days before `to`)'),
  to: z.iso.date().optional().describe('Last UTC day, included, `YYYY-MM-DD` (default: today)'),
  all: z.enum(['true', 'false']).optional().describe("`true`: every user's usage (admins only; 403 otherwise)"),
});

export const dailyUsageSchema = z.object({
  day: z.string().describe('UTC day, `YYYY-MM-DD`'),
  provider: z.string(),
  model: z.string(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  costUsd: z.number(),
});
export const usageResponseSchema = z.object({ days: z.array(dailyUsageSchema) });

/** Midnight UTC of `YYYY-MM-DD`; a 400 for a day the calendar lacks (2026-02-30). */
function utcDay(value: string, name: string): Date {
  const date = new Date(`${value}T00:00:00.000Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value)
    throw badRequest(`${name} is not a calendar day`, [{ path: name, message: 'not a calendar day' }]);
  return date;
}

/** Model tokens and cost by UTC day, provider and model, declared once (see `../route.ts`). */
export const usageRoutes = [
  route({
    method: 'get',
    path: '/usage',
    operationId: 'getUsage',
    tags: ['operations'],
    auth: 'bearer',
    summary: 'Model tokens and cost by UTC day, provider and model',
    description:
      "The caller's own model calls (chat, generations, embeddings, agents…) between `from` and `to` (UTC days, both included; " +
      `default the last 30 days; at most ${MAX_USAGE_DAYS} days), oldest day first. \`all=true\` sums every user's calls: admins only, 403 for anyone else. ` +
      '`from` after `to`, or a day the calendar lacks, is 400.',
    query: usageQuerySchema,
    responses: { 200: { description: 'One row per day, provider and model that had calls', schema: usageResponseSchema } },
    errors: [400, 403],
    handler: async ({ user, query }, ctx) => {
      const to = utcDay(query.to ?? new Date().toISOString().slice(0, 10), 'to');
      const from = query.from ? utcDay(query.from, 'from') : new Date(to.getTime() - 29 * DAY_MS);
      if (from > to) throw badRequest('from must not be after to', [{ path: 'from', message: 'after to' }]);
      if ((to.getTime() - from.getTime()) / DAY_MS + 1 > MAX_USAGE_DAYS)
        throw badRequest(`At most ${MAX_USAGE_DAYS} days per request`, [{ path: 'from', message: 'range too long' }]);
      const all = query.all === 'true';
      // Asked only by admins' consoles; anyone else asking is refused, not quietly narrowed.
      if (all && !(await isAdminCaller(ctx.admin.directory, user))) throw forbidden("Only admins may see every user's usage");
      return { days: await ctx.repos.usage.dailyTotals({ userId: all ? null : user.id, from, until: new Date(to.getTime() + DAY_MS) }) };
    },
  }),
];
