import { z } from 'zod';
import { badRequest, forbidden, unauthorized } from '../../lib/errors';
import { isAdminCaller } from '../middleware/authenticate';
import { routesWith } from '../route';
import { TIERS } from '../../../config';
import { budgetWindows, windowLimits } from '../../auth/limits';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';
import type { Repositories } from '../../models';

/** The usage routes' port: the usage repository, the admin directory and the limits resolver. */
export type UsageRoutePorts = Pick<ApiContext, 'admin' | 'limits' | 'budget'> & { repos: Pick<Repositories, 'usage'> };
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

export const budgetWindowSchema = z.object({
  window: z.enum(['hour', 'month']).describe('The current UTC clock hour, or the current UTC calendar month'),
  limitTokens: z.number().nullable().describe('Tokens (input + output) the window allows; null = unlimited'),
  usedTokens: z.number(),
  reservedTokens: z.number().describe('Tokens reserved by model calls queued or running and not yet settled'),
  limitRequests: z
    .number()
    .nullable()
    .describe('Model calls the window allows (embeddings excluded; the hour window: requestsPerHour); null = unlimited'),
  usedRequests: z.number(),
  limitCostUsd: z.number().nullable().describe('USD the window allows; null = unlimited'),
  usedCostUsd: z.number(),
  resetsAt: z.string().describe('When the window ends and its usage starts from zero (ISO 8601)'),
});
export const budgetResponseSchema = z.object({ tier: z.enum(TIERS), windows: z.array(budgetWindowSchema) });

export const engagementResponseSchema = z.object({
  from: z.string().describe('First UTC day counted, `YYYY-MM-DD`'),
  to: z.string().describe('Last UTC day counted, included'),
  satisfaction: z.object({
    up: z.number().int().describe('Answers rated thumbs up in the range (by when they were rated)'),
    down: z.number().int(),
    rate: z.number().nullable().describe('up / (up + down); null when no answer was rated'),
  }),
  messages: z.object({
    messages: z.number().int().describe('User and assistant messages sent in the range (tool results excluded)'),
    sessions: z.number().int().describe('Sessions those messages were in'),
    perSession: z.number().nullable().describe('messages / sessions; null without sessions'),
  }),
  dailyActiveUsers: z
    .array(z.object({ day: z.string(), users: z.number().int() }))
    .describe('Per UTC day with any, the users who sent at least one message that day, oldest first'),
  averageDailyActiveUsers: z.number().describe('The daily active users summed over the range, divided by its number of days'),
});

/** Midnight UTC of `YYYY-MM-DD`; a 400 for a day the calendar lacks (2026-02-30). */
function utcDay(value: string, name: string): Date {
  const date = new Date(`${value}T00:00:00.000Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value)
    throw badRequest(`${name} is not a calendar day`, [{ path: name, message: 'not a calendar day' }]);
  return date;
}

/** The range of `query` (UTC days, `until` the midnight after `to`) and whether it asks for everyone; 400 and 403 as documented. */
async function usageRange(query: z.output<typeof usageQuerySchema>, user: AuthUser, ctx: UsageRoutePorts) {
  const to = utcDay(query.to ?? new Date().toISOString().slice(0, 10), 'to');
  const from = query.from ? utcDay(query.from, 'from') : new Date(to.getTime() - 29 * DAY_MS);
  if (from > to) throw badRequest('from must not be after to', [{ path: 'from', message: 'after to' }]);
  const days = (to.getTime() - from.getTime()) / DAY_MS + 1;
  if (days > MAX_USAGE_DAYS) throw badRequest(`At most ${MAX_USAGE_DAYS} days per request`, [{ path: 'from', message: 'range too long' }]);
  const all = query.all === 'true';
  // Asked only by admins' consoles; anyone else asking is refused, not quietly narrowed.
  if (all && !(await isAdminCaller(ctx.admin.directory, user))) throw forbidden("Only admins may see every user's usage");
  return { from, to, until: new Date(to.getTime() + DAY_MS), days, userId: all ? null : user.id };
}

const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : null);

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
      const range = await usageRange(query, user, ctx);
      return { days: await ctx.repos.usage.dailyTotals(range) };
    },
  }),
  route({
    method: 'get',
    path: '/usage/engagement',
    operationId: 'getUsageEngagement',
    tags: ['operations'],
    auth: 'bearer',
    summary: 'Satisfaction rate from answer ratings, messages per session and daily active users',
    description:
      'Between `from` and `to` (UTC days, both included; default the last 30 days; at most ' +
      `${MAX_USAGE_DAYS} days): the answers rated up and down (by when they were rated) and the satisfaction rate up / (up + down); ` +
      'the user and assistant messages sent and the sessions they were in (messages per session); the users who sent a message on each ' +
      "day (daily active users) and their average over the range. The caller's own sessions; `all=true` everyone's (admins only, 403 " +
      "otherwise). Sessions a chatflow's public widget started count in the ratings only.",
    query: usageQuerySchema,
    responses: { 200: { description: 'The figures of the range', schema: engagementResponseSchema } },
    errors: [400, 403],
    handler: async ({ user, query }, ctx) => {
      const range = await usageRange(query, user, ctx);
      const figures = await ctx.repos.usage.engagement(range);
      const { up, down } = figures.ratings;
      return {
        from: range.from.toISOString().slice(0, 10),
        to: range.to.toISOString().slice(0, 10),
        satisfaction: { up, down, rate: ratio(up, up + down) },
        messages: { messages: figures.messages, sessions: figures.sessions, perSession: ratio(figures.messages, figures.sessions) },
        dailyActiveUsers: figures.activeUsers,
        averageDailyActiveUsers: figures.activeUsers.reduce((sum, day) => sum + day.users, 0) / range.days,
      };
    },
  }),
  route({
    method: 'get',
    path: '/usage/budget',
    operationId: 'getUsageBudget',
    tags: ['operations'],
    auth: 'bearer',
    summary: "The caller's budget: limits and usage of the current hour and month",
    description:
      "The caller's tier and, for the current UTC hour and UTC month, the limits in effect (tier and the caller's overrides; " +
      '`null` = unlimited), what recorded model calls used, what is reserved, and when the window resets.',
    responses: { 200: { description: 'The budget windows', schema: budgetResponseSchema } },
    handler: async ({ user }, ctx) => {
      const plan = await ctx.limits.forUser(user.id);
      if (!plan) throw unauthorized();
      const now = new Date();
      const windows = budgetWindows(now);
      const [spent, counted] = await Promise.all([
        ctx.repos.usage.spentSince(
          user.id,
          windows.map((window) => window.start),
        ),
        ctx.budget.counts(user.id, now),
      ]);
      return {
        tier: plan.tier,
        windows: windows.map((window, index) => ({
          window: window.window,
          ...windowLimits(plan.limits, window.window),
          // What the budget door enforces with once it counts the window (it includes calls charged
          // in full after their process died), else the recorded usage.
          usedTokens: Math.max(spent[index].tokens, counted[window.window].used?.tokens ?? 0),
          reservedTokens: counted[window.window].reserved.tokens,
          usedRequests: Math.max(spent[index].requests, counted[window.window].used?.requests ?? 0),
          usedCostUsd: Math.max(spent[index].costUsd, (counted[window.window].used?.microUsd ?? 0) / 1_000_000),
          resetsAt: window.resetsAt.toISOString(),
        })),
      };
    },
  }),
];
