import { embedSchema } from '../../schemas/api';
import { requestEmbedding } from '../../producers/requests';
import { embeddingEstimate } from '../../ai/embeddings';
import { isApiKeySecret } from '../../auth/api-keys';
import { verifyAccessToken } from '../../auth/tokens';
import { isAdminRequest } from '../admin';
import { embedResponse, metricsJsonResponse, metricsSummaryResponse } from '../openapi/response-schemas';
import { isAdminCaller } from '../middleware/authenticate';
import { routesWith } from '../route';
import type { UsagePorts } from './shared';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';

/** The platform routes' port: queues, metrics, the admin check (admin directory, tokens), the usage repository (plus the usage limits). */
export type PlatformPorts = Pick<ApiContext, 'queues' | 'metrics' | 'admin' | 'tokens' | 'budget' | 'config'> & {
  repos: Pick<Repositories, 'usage'>;
} & UsagePorts;
const route = routesWith<PlatformPorts>();

/** One sample: labels and value; a histogram's samples also name their series (`…_bucket`, `…_sum`, `…_count`). */
function jsonValue(name: string, entry: { labels: object; value: number; metricName?: string }) {
  return {
    labels: entry.labels,
    value: entry.value,
    ...(entry.metricName && entry.metricName !== name ? { metricName: entry.metricName } : {}),
  };
}

/** Embeddings, usage and metrics (the OpenAPI document itself is declared in `index.ts`, beside the list it describes). */
export const platformRoutes = [
  /** `POST /storage/vectors/embed {text}` → `{vector, model, dimensions}`, computed by the `embeddings` queue. */
  route({
    method: 'post',
    path: '/storage/vectors/embed',
    operationId: 'embedText',
    tags: ['storage'],
    auth: 'bearer',
    summary: 'Embed a text through the `embeddings` queue',
    body: embedSchema,
    responses: { 200: { description: 'The vector', schema: embedResponse } },
    errors: [429, 503],
    handler: async ({ user, body }, ctx) => {
      await ctx.usage.take('embeddingsPerMinute', user);
      // The text's tokens are reserved before the job is queued: over the budget, nothing is queued (429).
      const budget = await ctx.budget.admit(user.id, embeddingEstimate(ctx.config.llm.pricing, ctx.config.llm.embeddingModel, [body.text]));
      return requestEmbedding(ctx.queues, { text: body.text, userId: user.id, tier: user.tier, budget });
    },
  }),

  /** Queue counts, tokens and cost by model, and the last 24 h of cost: a user's own, or everyone's for an admin. */
  route({
    method: 'get',
    path: '/metrics/summary',
    operationId: 'getMetricsSummary',
    tags: ['operations'],
    auth: 'bearer',
    summary: 'Queue counts, tokens and cost by model, cost of the last 24 h',
    description: "A user sees their own usage (`scope: user`); an admin sees everyone's (`scope: all`).",
    responses: { 200: { description: 'Queue counts and usage', schema: metricsSummaryResponse } },
    handler: async ({ user }, ctx) => {
      const admin = await isAdminCaller(ctx.admin.directory, user);
      const [usage, queues] = await Promise.all([
        ctx.repos.usage.summary(admin ? null : user.id, new Date(Date.now() - 24 * 3600 * 1000)),
        ctx.queues.allCounts(),
      ]);
      return {
        scope: admin ? 'all' : 'user',
        queues,
        usage: { byModel: usage.byModel, last24h: usage.recent },
      };
    },
  }),

  /**
   * `GET /metrics/json`: this process's `/metrics` in prom-client's JSON form, for admins
   * with the dashboard's credentials (HTTP Basic ADMIN_USER/ADMIN_PASSWORD, or an admin's Bearer
   * token): `auth: 'public'` because the API's Bearer authentication would refuse Basic credentials.
   */
  route({
    method: 'get',
    path: '/metrics/json',
    operationId: 'getMetricsJson',
    tags: ['operations'],
    auth: 'public',
    credentials: ['adminBasic', 'bearerAuth'],
    summary: "This process's Prometheus metrics in prom-client's JSON form (admins only)",
    description:
      "The dashboard's credentials: HTTP Basic `ADMIN_USER`/`ADMIN_PASSWORD`, or the Bearer token of an admin. 401 without credentials, 403 with " +
      "credentials that are not an admin's. Answers `[{name, help, type, values: [{labels, value}]}]` (histogram values carry `metricName`, " +
      'e.g. `…_bucket`, `…_sum`, `…_count`).',
    responses: { 200: { description: 'The metrics', schema: metricsJsonResponse } },
    errors: [401, 403],
    handler: async ({ req, res }, ctx) => {
      if (!(await isAdminRequest(req, ctx.admin, ctx.tokens))) {
        // 401 without credentials and for an access token that is expired, revoked or whose user is
        // gone, as on every other route; 403 for credentials that are not an admin's.
        // An admin's API key is someone, but never an admin.
        const header = req.headers.authorization ?? '';
        const bearer = header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
        const someone =
          bearer === undefined
            ? header !== ''
            : isApiKeySecret(bearer)
              ? (await ctx.tokens.apiKeys?.authenticate(bearer, req.ip ?? 'unknown')) != null
              : (await verifyAccessToken(ctx.tokens, bearer)) !== null;
        res.setHeader('WWW-Authenticate', 'Basic realm="Switchboard metrics", charset="UTF-8"');
        return void res
          .status(someone ? 403 : 401)
          .json({ error: { code: someone ? 'forbidden' : 'unauthorized', message: 'Admins only' } });
      }
      const metrics = await ctx.metrics.registry.getMetricsAsJSON();
      return metrics.map(({ name, help, type, values }) => ({ name, help, type, values: values.map((entry) => jsonValue(name, entry)) }));
    },
  }),
];
