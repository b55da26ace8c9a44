import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError, notFound } from '../../lib/errors';
import type { ApiContext } from '../context';
import { apiCors } from '../middleware/cors';
import { authenticate } from '../middleware/authenticate';
import { jsonBody } from '../middleware/json-body';
import { rejectNulCharacters } from '../middleware/reject-nul';
import { recordRequestOrigin } from '../middleware/request-origin';
import { routeInput, successStatus, type AnyRoute } from '../route';
import { apiRoutes } from '../routes';
import { embedAccess } from '../routes/embed-public-routes';
import { COMPAT_PREFIXES, compatRoutes, type CompatRoute } from './compat-routes';
import { setOwn, snakeKey, toCamelKeys, toSnakeKeys, usesCamelCase, usesSnakeCase, withSnakeTwins } from './key-case';
import { DialectStreams } from './sse-dialect';

/**
 * The compatibility edge: paths and shapes of clients written for other APIs (the mapping table is
 * docs/compatibility.md), each run by the Switchboard route that serves it. Nothing here decides
 * anything a route decides: a request is rewritten, handed to the route's own handler (its access
 * checks, limits, validation and errors), and the answer's shape is mapped back.
 */

/** A request's keys in snake_case: its body's or its query's. */
const speaksSnake = (req: Request) => usesSnakeCase(req.body) || usesSnakeCase(req.query);
/** A request's keys in camelCase: its body's or its query's. */
const speaksCamel = (req: Request) => usesCamelCase(req.body) || usesCamelCase(req.query);

/** `directory_paths.0` for `directoryPaths.0`, and the same inside a message's quoted field names. */
function snakeError(error: unknown, renamed: Record<string, string> = {}): unknown {
  if (!(error instanceof AppError)) return error;
  const back = Object.fromEntries(Object.entries(renamed).map(([from, to]) => [to, from]));
  const field = (name: string) => snakeKey(back[name] ?? name);
  const path = (value: string) => value.split('.').map(field).join('.');
  const details = Array.isArray(error.details)
    ? (error.details as unknown[]).map((detail) =>
        detail && typeof detail === 'object' && typeof (detail as { path?: unknown }).path === 'string'
          ? {
              ...detail,
              path: path((detail as { path: string }).path),
              message: quotedSnake((detail as { message?: unknown }).message, field),
            }
          : detail,
      )
    : error.details;
  return new AppError(error.status, error.code, error.message, details, error.headers);
}

const quotedSnake = (message: unknown, field: (name: string) => string) =>
  typeof message === 'string' ? message.replace(/"([a-z][A-Za-z0-9]*)"/g, (_match, name: string) => `"${field(name)}"`) : message;

/** The request's query with camelCase keys (express 5 reads `req.query` through a getter: replaced on the request itself). */
function setQuery(req: Request, query: unknown): void {
  Object.defineProperty(req, 'query', { value: query, configurable: true, enumerable: true, writable: true });
}

/** Keys written twice in two cases (`device_id` and `deviceId`): refused rather than guessed. */
function refuseClashes(clashes: string[]): void {
  if (clashes.length === 0) return;
  throw new AppError(
    400,
    'validation_failed',
    'Invalid request body',
    clashes.map((path) => ({ path, message: 'The same field is sent in two spellings' })),
  );
}

/** The body with camelCase keys, renamed fields and defaults: what the native route parses. */
function nativeBody(body: unknown, route: CompatRoute): unknown {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const clashes: string[] = [];
  const camel = toCamelKeys(body, clashes) as Record<string, unknown>;
  refuseClashes(clashes);
  const out: Record<string, unknown> = { ...route.defaults };
  for (const [key, value] of Object.entries(camel)) setOwn(out, route.renames?.[key] ?? key, value);
  return out;
}

/** Every JSON answer of `res` with snake_case keys; an error's field paths too. */
function answerInSnakeCase(res: Response): void {
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    if (body && typeof body === 'object' && 'error' in body) {
      const error = (body as { error: { code: string; message: string; details?: unknown } }).error;
      const mapped = snakeError(new AppError(res.statusCode, error.code, error.message, error.details)) as AppError;
      // Detail lists name fields (mapped above); a details object (`{limit, resetsAt}`) is data in the answer's case.
      const details = Array.isArray(mapped.details) ? mapped.details : toSnakeKeys(mapped.details);
      return json({ error: { ...error, ...(details === undefined ? {} : { details }) } });
    }
    return json(toSnakeKeys(body));
  };
}

function nativeRoute(operationId: string): AnyRoute {
  const route = (apiRoutes as readonly AnyRoute[]).find((candidate) => candidate.operationId === operationId);
  if (!route) throw new Error(`compatibility edge: no route ${operationId}`);
  return route;
}

/** One compatible route's handler: rewrite, run the route's own handler, map the answer back. */
function compatHandler(compat: CompatRoute, route: AnyRoute, dialects: DialectStreams, edgeCtx: ApiContext): RequestHandler {
  const status = successStatus(route);
  return async (req: Request, res: Response) => {
    const snake = compat.reply === 'snake' || speaksSnake(req);
    try {
      if (req.body !== undefined) req.body = nativeBody(req.body, compat);
      const clashes: string[] = [];
      setQuery(req, toCamelKeys({ ...req.query }, clashes));
      refuseClashes(clashes);
      if (compat.stream) dialects.speak(res, compat.stream(req));
      // Routes that answer through `res` (a chat turn waited for) are mapped as those that return.
      if (snake) answerInSnakeCase(res);
      const result: unknown = await route.handler(routeInput(route, req, res), edgeCtx);
      if (result !== undefined) {
        res.status(status ?? 200).json(result);
      } else if (status === 204 && !res.headersSent) {
        res.status(204).end();
      }
    } catch (error) {
      throw snake ? snakeError(error, compat.renames) : error;
    }
  };
}

/** Keeps the matched path as the request's route label (HTTP metrics, traces). */
const recordRoute: RequestHandler = (req, res, next) => {
  res.locals.routeTemplate = `${req.baseUrl}${(req.route as { path: string }).path}`;
  next();
};

/**
 * The compatible routes on their own paths (mounted before the API): the API's CORS, JSON body
 * limit and NUL check on their prefixes, authentication as their native route's.
 * `prometheus` serves the Prometheus text of `/metrics`, with its own credentials.
 */
export function compatRouter(ctx: ApiContext, prometheus: RequestHandler): Router {
  const router = Router();
  const dialects = new DialectStreams(ctx.streams);
  // The routes' context, its stream door speaking each response's dialect (built once: per-context helpers of the routes are built once too).
  const edgeCtx = Object.create(ctx, { streams: { value: dialects.door() } }) as ApiContext;
  // Public embed paths first: the embed's own origin check and CORS, not the API's.
  for (const compat of compatRoutes.filter((candidate) => candidate.embed)) {
    const route = compat.own ?? nativeRoute(compat.native!);
    router.use(compat.path, ...embedAccess(ctx));
    router[compat.method](compat.path, recordRoute, compatHandler(compat, route, dialects, edgeCtx));
  }
  router.use(COMPAT_PREFIXES, apiCors(ctx.config.cors.origins));
  router.use(COMPAT_PREFIXES, jsonBody(ctx.config.http.bodyLimit));
  router.use(COMPAT_PREFIXES, rejectNulCharacters, recordRequestOrigin);
  // A path of the public API: the Prometheus text is served here only behind METRICS_TOKEN (the
  // bare /metrics is kept off the internet by the edge proxy, this path is not).
  router.get(
    '/api/agent-builder/metrics/prometheus',
    recordRoute,
    (_req, _res, next) => next(ctx.config.metrics.token ? undefined : notFound('Route')),
    prometheus,
  );
  const auth = authenticate(ctx.tokens);
  const authOnCanvas = authenticate(ctx.tokens, { canvasParam: 'id' });
  for (const compat of compatRoutes.filter((candidate) => !candidate.embed)) {
    const route = compat.own ?? nativeRoute(compat.native!);
    const guard = route.auth === 'public' ? [] : [compat.onCanvas ? authOnCanvas : auth];
    router[compat.method](compat.path, recordRoute, ...guard, compatHandler(compat, route, dialects, edgeCtx));
  }
  return router;
}

/** The reads of agents a snake_case client makes (below `/agents`): the catalog, the configs, the run logs. */
const SHARED_READS = /^\/(catalog|runs|local|cloud)(\/[^/]+)?\/?$/;

/** Every successful JSON answer of `res` in camelCase with the snake_case twin of each key beside it; errors as they are. */
function answerInBothCases(res: Response): void {
  const json = res.json.bind(res);
  res.json = (body: unknown) => json(body && typeof body === 'object' && 'error' in body ? body : withSnakeTwins(body));
}

/**
 * Paths the API shares with a snake_case client (`/agents/…`): a request written in snake_case
 * (body or query keys such as `device_id`, `data_types`) is read as its camelCase twin and answered
 * in snake_case, errors included; one written in camelCase passes untouched. A read of the
 * catalog, the agents or their runs that says neither (a bare `GET /agents/local`, `?page=1&limit=5`)
 * is answered in both spellings: each camelCase key with its snake_case twin beside it.
 */
export function snakeCaseEdge(): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!speaksSnake(req)) {
      if (req.method === 'GET' && SHARED_READS.test(req.path) && !speaksCamel(req)) answerInBothCases(res);
      return next();
    }
    const clashes: string[] = [];
    if (req.body !== undefined) req.body = toCamelKeys(req.body, clashes);
    setQuery(req, toCamelKeys({ ...req.query }, clashes));
    answerInSnakeCase(res);
    try {
      refuseClashes(clashes);
    } catch (error) {
      return next(snakeError(error));
    }
    next();
  };
}
