import type { ProviderState } from '../ai/provider-probe';
import type { QueueConsumerState } from '../producers/worker-presence';
import { UNPRICED_WARNING, unpricedUnderCostLimit } from '../budget/pricing';
import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { clientIp, DASHBOARD_PATH, dashboardRouter } from './admin';
import { loggedPath } from './log-redaction';
import { packageVersion } from '../lib/package-version';
import type { ApiContext } from './context';
import { authenticate } from './middleware/authenticate';
import { errorHandler, notFoundHandler } from './middleware/error-handler';
import { metricsAllowed } from '../observability/metrics';
import { apiCors } from './middleware/cors';
import { httpMetrics } from './middleware/http-metrics';
import { httpTracing } from './middleware/tracing';
import { trustedPeer } from './connection-limits';
import { jsonBody } from './middleware/json-body';
import { rejectNulCharacters } from './middleware/reject-nul';
import { recordRequestOrigin } from './middleware/request-origin';
import { redactError } from '../lib/redact-error';
import { openApiRoutes } from './openapi/routes';
import { routesRouter } from './route';
import { apiRoutesOnApi } from './routes';
import { embedAccess, embedPublicRouter, embedTurnFor } from './routes/embed-public-routes';
import { hookRouter } from './routes/flow-trigger-routes';
import { embedScriptRouter } from './embed-script';
import { webConsoleRouter } from './web-console';
import { a2aEdge } from './a2a/a2a-edge';
import { agUiEdge } from './ag-ui/ag-ui-edge';
import { aiSdkEdge, aiSdkEmbedEdge } from './ai-sdk/ai-sdk-edge';
import { compatRouter, snakeCaseEdge } from './compat';
import { mcpRouter } from './mcp/mcp-server';
import { openAiRouter } from './openai/openai-edge';
import { OAUTH_PATH, oauthServer, protectedResourceMetadata } from './oauth-server';

/** The express app: health, the `/api/v1` JSON API, and uniform errors. */
export function createHttpApp(ctx: ApiContext): Express {
  const app = express();
  app.disable('x-powered-by');
  // req.ip is the client behind TRUST_PROXY's proxies, else the socket's address: login and
  // registration limits are per client IP.
  app.set('trust proxy', ctx.config.trustProxy);
  app.use(helmet());
  app.use(httpMetrics(ctx.metrics));
  app.use(httpTracing(trustedPeer(ctx.config.trustProxy)));
  app.use(
    pinoHttp({
      logger: ctx.logger.child({ component: 'http' }),
      genReqId: (req, res) => {
        const id = (req.headers['x-request-id'] as string | undefined)?.slice(0, 100) ?? randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      autoLogging: {
        ignore: (req) =>
          req.url === '/healthz' ||
          req.url === '/readyz' ||
          req.url === '/health' ||
          req.url === '/metrics' ||
          req.url === '/metrics/queues',
      },
      // Method, path and status only: headers carry tokens and cookies, queries may carry ids, embed paths carry tokens.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, path: loggedPath(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        err: (error: unknown) => redactError(error),
      },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Model providers are reported, never counted against readiness: `?deep=1` probes them.
  const deep = (req: express.Request) => req.query.deep === '1';
  app.get('/readyz', async (req, res) => {
    const readiness = await readinessOf(ctx, deep(req));
    res.status(readiness.ready ? 200 : 503).json(readiness.body);
  });
  // The same readiness as /readyz, plus what is running: the package version and this process's roles.
  const version = packageVersion();
  app.get('/health', async (req, res) => {
    const readiness = await readinessOf(ctx, deep(req));
    res.status(readiness.ready ? 200 : 503).json({
      status: readiness.body.status,
      version,
      roles: ctx.config.roles,
      ...('checks' in readiness.body
        ? { checks: readiness.body.checks, providers: readiness.body.providers, queues: readiness.body.queues }
        : {}),
    });
  });

  // The METRICS_TOKEN bearer token (when one is set) guards the metrics in every form.
  const metricsRefused = async (req: express.Request, res: express.Response): Promise<boolean> => {
    if (await metricsAllowed(req.headers.authorization, ctx.config.metrics.token, clientIp(req), ctx.admin.throttle)) return false;
    res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
    res.status(401).json({ error: { code: 'unauthorized', message: 'Metrics require the METRICS_TOKEN bearer token' } });
    return true;
  };
  // Prometheus text; the compatibility edge serves it at a second path, with the same credentials.
  const prometheus: express.RequestHandler = async (req, res) => {
    if (await metricsRefused(req, res)) return;
    res.setHeader('Content-Type', ctx.metrics.registry.contentType);
    res.send(await ctx.metrics.registry.metrics());
  };
  app.get('/metrics', prometheus);
  // Every queue's jobs by state as JSON, for an autoscaler that reads a value at a JSON path (KEDA's
  // metrics-api scaler): `waiting` counts the jobs a fairly shared queue keeps in BullMQ's
  // prioritized set, which a scaler reading the wait list never sees. Requests that arrive while a
  // read is under way share it, so a flood costs Redis one read at a time.
  let queueRead: Promise<unknown> | undefined;
  app.get('/metrics/queues', async (req, res) => {
    if (await metricsRefused(req, res)) return;
    queueRead ??= ctx.queues.allCounts().finally(() => (queueRead = undefined));
    res.json({ queues: await queueRead });
  });
  app.use(DASHBOARD_PATH, dashboardRouter(ctx.queues, ctx.admin, ctx.tokens));
  // Public: the /docs reference (the document itself is a declared route).
  app.use(openApiRoutes());

  const api = express.Router();
  // First, so every answer to a listed origin (a 401, a refused body) is readable by its page.
  api.use(apiCors(ctx.config.cors.origins));
  // An assistant chat message may carry files as base64 data: URLs: its routes read bodies up to
  // the file cap (as base64) and a megabyte more; every other route reads the usual limit.
  api.post(['/chat', '/chat/stream'], jsonBody(Math.ceil((ctx.config.knowledge.maxFileBytes * 4) / 3) + 1024 * 1024));
  api.use(jsonBody(ctx.config.http.bodyLimit));
  api.use(rejectNulCharacters);
  // Audit rows written from here on carry the request's client address and user agent.
  api.use(recordRequestOrigin);
  // A snake_case request on a path shared with a snake_case client is read and answered in snake_case.
  api.use('/agents', snakeCaseEdge());
  // A chat request that asks for the AI SDK's UI message stream, and its resume (docs/ai-sdk.md).
  api.use(aiSdkEdge(ctx));
  // A chat run by an AG-UI client (`HttpAgent`): its RunAgentInput in, AG-UI events out (docs/agent-protocols.md).
  api.use(agUiEdge(ctx));
  // Every route, declared once (src/http/routes/index.ts); bearer routes authenticate themselves.
  api.use(routesRouter(apiRoutesOnApi, ctx));
  // Anything else under /api/v1 without a valid token is 401, as before the routes were declared.
  api.use(authenticate(ctx.tokens));
  // Paths of clients written for other APIs, run by the routes that serve them (docs/compatibility.md).
  app.use(compatRouter(ctx, prometheus));
  // Public, no JWT, its own CORS and body parsing: a chatflow's embed chat.
  // An embed chat that asks for the AI SDK's UI message stream, after the embed's own access check.
  app.use(
    '/api/v1',
    aiSdkEmbedEdge(ctx, embedAccess(ctx), (req, body) => embedTurnFor(ctx, req, body)),
  );
  // Public, signed per Standard Webhooks: a flow trigger's inbound webhook, its exact bytes verified before anything reads them.
  app.use('/api/v1', hookRouter(ctx));
  app.use('/api/v1', embedPublicRouter(ctx));
  app.use('/api/v1', api);
  // The Model Context Protocol: the caller's agentflows as tools, authenticated by an OAuth access
  // token of this deployment's authorization server (`/oauth`) or an API key.
  const oauth = oauthServer(ctx);
  app.use(OAUTH_PATH, oauth.router);
  // RFC 9728: where a client learns which authorization server issues tokens for `/mcp`.
  const resourceMetadata: express.RequestHandler = (_req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.json(protectedResourceMetadata(ctx.config.oauth.publicUrl));
  };
  app.get('/.well-known/oauth-protected-resource/mcp', resourceMetadata);
  app.get('/.well-known/oauth-protected-resource', resourceMetadata);
  app.use('/mcp', mcpRouter(ctx, version, oauth.verify));
  // OpenAI's API for chat clients: the assistant and the caller's chatflows as models (docs/openai-compatible.md).
  app.use('/v1', openAiRouter(ctx));
  // The Agent2Agent protocol: the assistant and the caller's chatflows as agents (docs/agent-protocols.md).
  app.use(a2aEdge(ctx));
  // The embed widget's script, at the site root.
  app.use(embedScriptRouter());

  app.use(webConsoleRouter());

  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}

/** The readiness checks (Redis, database), each bounded; not ready while shutting down. */
async function readinessOf(
  ctx: ApiContext,
  deep: boolean,
): Promise<{
  ready: boolean;
  body: {
    status: string;
    checks?: Record<string, 'ok' | 'unavailable'>;
    providers?: Record<string, ProviderState>;
    warnings?: Array<{ code: string; message: string; models: string[] }>;
    queues?: Record<string, QueueConsumerState>;
  };
}> {
  if (ctx.shuttingDown.value) return { ready: false, body: { status: 'shutting_down' } };
  // Not a readiness failure: the process serves, but a cost limit cannot bind on these models.
  const unpriced = unpricedUnderCostLimit(ctx.config);
  const warnings = unpriced.length ? [{ code: 'unpriced_models', message: UNPRICED_WARNING, models: unpriced }] : undefined;
  const providers = ctx.providers.states(deep);
  // Reported like the providers: a queue without a worker is a deployment to fix, not an unready API node.
  // eslint-disable-next-line no-restricted-syntax -- Redis unread: `checks.redis` below reports it, the queues are left out
  const queues = ctx.workers.states().catch(() => undefined);
  const checks = await Promise.all(
    Object.entries(ctx.readiness).map(async ([name, check]) => {
      try {
        await withTimeout(check(), 1_500);
        return [name, 'ok'] as const;
      } catch {
        return [name, 'unavailable'] as const;
      }
    }),
  );
  const ready = checks.every(([, state]) => state === 'ok');
  const consumers = await queues;
  return {
    ready,
    body: {
      status: ready ? 'ready' : 'unavailable',
      checks: Object.fromEntries(checks),
      providers: await providers,
      ...(warnings ? { warnings } : {}),
      ...(consumers ? { queues: consumers } : {}),
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}
