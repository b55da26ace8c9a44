import { Router } from 'express';
import { isAdminRequest } from '../admin';
import { and, eq, gte, sql } from 'drizzle-orm';
import { QUEUE_NAMES } from '../../../config';
import { llmUsage } from '../../models/schema';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/**
 * `GET /metrics/summary`: queue counts, tokens and cost by model, and the last 24 h of cost. A user
 * sees their own usage; an admin sees everyone's.
 */
export function metricsRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get('/metrics/summary', async (req, res) => {
    const user = currentUser(req);
    const admin = await ctx.admin.directory.isAdmin(user.id);
    const scope = admin ? sql`true` : eq(llmUsage.userId, user.id);
    const since = new Date(Date.now() - 24 * 3600 * 1000);
    const [byModel, last24h, queues] = await Promise.all([
      ctx.repos.db
        .select({
          provider: llmUsage.provider,
          model: llmUsage.model,
          calls: sql<number>`count(*)::int`,
          inputTokens: sql<number>`coalesce(sum(${llmUsage.inputTokens}), 0)::int`,
          outputTokens: sql<number>`coalesce(sum(${llmUsage.outputTokens}), 0)::int`,
          costUsd: sql<number>`coalesce(sum(${llmUsage.costUsd}), 0)::float8`,
        })
        .from(llmUsage)
        .where(scope)
        .groupBy(llmUsage.provider, llmUsage.model),
      ctx.repos.db
        .select({ costUsd: sql<number>`coalesce(sum(${llmUsage.costUsd}), 0)::float8`, calls: sql<number>`count(*)::int` })
        .from(llmUsage)
        .where(and(scope, gte(llmUsage.createdAt, since))),
      Promise.all(QUEUE_NAMES.map(async (name) => [name, await ctx.queues.get(name).getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed')] as const)),
    ]);
    res.json({
      scope: admin ? 'all' : 'user',
      queues: Object.fromEntries(queues),
      usage: { byModel, last24h: last24h[0] ?? { costUsd: 0, calls: 0 } },
    });
  });

  return router;
}

/**
 * `GET /metrics/json` (SPEC §13): this process's `/metrics` in prom-client's JSON form
 * (`[{name, help, type, values: [{labels, value}]}]`), for admins with the dashboard's credentials
 * (HTTP Basic ADMIN_USER/ADMIN_PASSWORD, or an admin's Bearer token). Mounted before the API's
 * Bearer authentication, which would refuse Basic credentials.
 */
export function metricsJsonRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get('/metrics/json', async (req, res) => {
    if (!(await isAdminRequest(req, ctx.admin, ctx.tokens))) {
      const hadCredentials = Boolean(req.headers.authorization);
      res.setHeader('WWW-Authenticate', 'Basic realm="Switchboard metrics", charset="UTF-8"');
      return void res.status(hadCredentials ? 403 : 401).json({ error: { code: hadCredentials ? 'forbidden' : 'unauthorized', message: 'Admins only' } });
    }
    const metrics = await ctx.metrics.registry.getMetricsAsJSON();
    res.json(metrics.map(({ name, help, type, values }) => ({ name, help, type, values: values.map((entry) => jsonValue(name, entry)) })));
  });
  return router;
}

/** One sample: labels and value; a histogram's samples also name their series (`…_bucket`, `…_sum`, `…_count`). */
function jsonValue(name: string, entry: { labels: object; value: number; metricName?: string }) {
  return { labels: entry.labels, value: entry.value, ...(entry.metricName && entry.metricName !== name ? { metricName: entry.metricName } : {}) };
}
