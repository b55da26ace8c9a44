import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { AppError, badRequest, notFound, parseOr400 } from '../lib/errors';
import type { ApiContext } from './context';
import { authenticate, currentUser, type AuthUser } from './middleware/authenticate';
import type { ApiHeader, ApiOperation, ApiResponse } from './openapi/registry';

/**
 * One description per route: method, path, params, query, body, headers, responses, errors,
 * summary, tags, auth AND the handler, declared once. The express wiring (`mountRoutes`), the
 * OpenAPI document (`openapi/document.ts` reads the same objects) and the client types
 * (`api-types.ts`) are derived from the declarations, so they cannot drift apart.
 *
 * ```ts
 * export const canvasRoutes = [
 *   defineRoute({
 *     method: 'patch', path: '/canvases/:id', operationId: 'updateCanvas', tags: ['canvases'], auth: 'bearer',
 *     summary: 'Rename a canvas (editor)',
 *     params: canvasIdParam,                 // `:id`, parsed eagerly: a malformed id is 404
 *     body: updateCanvasSchema,              // parsed on first read of `body`: 400 validation_failed
 *     responses: { 200: { description: 'The canvas', schema: canvasResponse } },
 *     errors: [403, 404],
 *     handler: async (input, ctx) => {
 *       const { user, params } = input;
 *       await canvasAccess(ctx.repos.canvases, user, params.id, 'editor'); // 403/404 first, as before...
 *       await ctx.repos.canvases.rename(params.id, input.body.title);      // ...then the body (400)
 *       return { canvas: await ctx.repos.canvases.findForMember(params.id, user.id) }; // 200 JSON
 *     },
 *   }),
 * ];
 * api.use(routesRouter(canvasRoutes, ctx));
 * ```
 *
 * The handler's input:
 * - `params`: every path parameter, parsed EAGERLY with its schema before the handler runs; one
 *   that fails answers 404 `not_found` ("`resource` not found"), like a missing resource.
 * - `query`, `body`, `headers`: parsed LAZILY, on first read (getters, parsed once). A handler
 *   therefore keeps the order it had: access checks (403/404) before it touches `body`, so a
 *   caller without access learns nothing from a 400. A failure is 400 `validation_failed`.
 *   Destructuring reads a getter: `({ user, params, body }) =>` parses the body before any check.
 *   Destructure `body`/`query`/`headers` only when the handler checks nothing first; otherwise
 *   read `input.body` after the checks.
 * - `user`: the caller (bearer routes; authenticated by `mountRoutes` unless already done).
 * - `req`, `res`: for what the declaration does not cover (cookies, `req.ip`, SSE).
 *
 * The handler's result: a value is sent as JSON with the route's single declared 2xx status (a
 * route with several 2xx statuses must answer through `res` itself). `undefined` means either
 * "no content" (the declared status is 204 and nothing was sent: 204 is sent) or "answered through
 * `res`" (streams, redirects, several statuses).
 *
 * Each route module declares the PORT its handlers may reach and declares its routes with
 * `const route = routesWith<CanvasPorts>()` rather than `defineRoute`: `ctx` is then typed as that
 * port (e.g. `{ repos: Pick<Repositories, 'canvases'> }`), so reaching another service fails the
 * typecheck. `defineRoute` (the full `ApiContext`) is for tests and one-offs.
 *
 * Handlers are module-level functions of `(input, ctx)`, so the declarations exist without an app
 * (the document and the client types need none). Per-app helpers come from `perContext(make)`.
 * Every route goes in the one list of `routes/index.ts`, which `createHttpApp` mounts and the
 * document describes.
 */

/** A path parameter: its schema, its description, and what a value failing the schema names in the 404. */
export interface ParamSpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  description?: string;
  /** `Canvas` → 404 "Canvas not found" when the value fails the schema. */
  resource?: string;
}

type Auth = 'bearer' | 'public';
type ParamsOf<P> = { [K in keyof P]: P[K] extends ParamSpec<infer S> ? z.output<S> : never };
type HeadersOf<H> = { [K in keyof H]: H[K] extends { schema: infer S extends z.ZodType } ? z.output<S> | undefined : string | undefined };

/** What a handler receives (see the module comment for when each part is parsed). */
export interface RouteInput<P, Q, B, H, A extends Auth> {
  req: Request;
  res: Response;
  user: A extends 'bearer' ? AuthUser : AuthUser | undefined;
  params: ParamsOf<P>;
  query: Q extends z.ZodType ? z.output<Q> : undefined;
  body: B extends z.ZodType ? z.output<B> : undefined;
  headers: HeadersOf<H>;
}

/** The declaration of one route: the documented operation plus its handler. */
export interface RouteSpec<
  Id extends string,
  P extends Record<string, ParamSpec>,
  Q extends z.ZodObject | undefined,
  B extends z.ZodType | undefined,
  H extends Record<string, ApiHeader>,
  A extends Auth,
  R extends Partial<Record<number, ApiResponse>>,
  Out = unknown,
  Ctx = ApiContext,
> extends Omit<ApiOperation, 'operationId' | 'params' | 'query' | 'body' | 'headers' | 'auth' | 'responses'> {
  operationId: Id;
  auth: A;
  params?: P;
  query?: Q;
  body?: B;
  headers?: H;
  responses: R;
  /**
   * Returns the response body, or `undefined` once it answered through `res` (or for a 204).
   * `ctx` is the module's port (`routesWith<Ports>()`): only the services the route may reach.
   */
  handler: (input: RouteInput<P, Q, B, H, A>, ctx: Ctx) => Out;
}

/** A declared route, its types kept (for `api-types.ts`). */
export type Route<
  Id extends string = string,
  P extends Record<string, ParamSpec> = Record<string, ParamSpec>,
  Q extends z.ZodObject | undefined = z.ZodObject | undefined,
  B extends z.ZodType | undefined = z.ZodType | undefined,
  H extends Record<string, ApiHeader> = Record<string, ApiHeader>,
  A extends Auth = Auth,
  R extends Partial<Record<number, ApiResponse>> = Partial<Record<number, ApiResponse>>,
  Out = unknown,
  Ctx = ApiContext,
> = RouteSpec<Id, P, Q, B, H, A, R, Out, Ctx>;

/**
 * Any declared route, for lists and for mounting. Its context is the full `ApiContext`: a route
 * declared on a port fits only when `ApiContext` is assignable to that port (the handler's `ctx` is
 * contravariant), so mounting with the full context is checked, not cast.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = Route<string, any, any, any, any, any, any, any, ApiContext>;

/**
 * Declares one route. The generic parameters are inferred from the declaration, so the handler's
 * `params`, `query`, `body`, `headers` and `user` are typed from the very zod schemas that parse them.
 */
export function defineRoute<
  const Id extends string,
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no params/headers: the mapped types over it give {}
  P extends Record<string, ParamSpec> = {},
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no params/headers: the mapped types over it give {}
  H extends Record<string, ApiHeader> = {},
  const A extends Auth = 'bearer',
  const R extends Partial<Record<number, ApiResponse>> = Partial<Record<number, ApiResponse>>,
  Out = unknown,
>(spec: RouteSpec<Id, P, Q, B, H, A, R, Out>): Route<Id, P, Q, B, H, A, R, Out> {
  return spec;
}

/**
 * `defineRoute` for one module's PORT: the narrow part of `ApiContext` its handlers may reach.
 * `const route = routesWith<BlockPorts>()` declares every route of the
 * module; the handler's `ctx` is typed as `BlockPorts`, so reaching any other service fails
 * the typecheck (see `test/types/route-ports.ts`). Mounting still passes the full
 * `ApiContext`, which must be assignable to the port (`AnyRoute`).
 */
export const routesWith =
  <Ctx>() =>
  <
    const Id extends string,
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no params/headers: the mapped types over it give {}
    P extends Record<string, ParamSpec> = {},
    Q extends z.ZodObject | undefined = undefined,
    B extends z.ZodType | undefined = undefined,
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no params/headers: the mapped types over it give {}
    H extends Record<string, ApiHeader> = {},
    const A extends Auth = 'bearer',
    const R extends Partial<Record<number, ApiResponse>> = Partial<Record<number, ApiResponse>>,
    Out = unknown,
  >(
    spec: RouteSpec<Id, P, Q, B, H, A, R, Out, Ctx>,
  ): Route<Id, P, Q, B, H, A, R, Out, Ctx> =>
    spec;

/** The one 2xx status a returned value is sent with; `undefined` when the route declares several. */
export function successStatus(route: Pick<ApiOperation, 'responses'>): number | undefined {
  const statuses = Object.keys(route.responses)
    .map(Number)
    .filter((status) => status >= 200 && status < 300);
  return statuses.length === 1 ? statuses[0] : undefined;
}

/** The Content-Types the API's JSON parser reads (`application/json`, `application/*+json`). */
const JSON_CONTENT_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;
const isJsonContentType = (req: Request) => JSON_CONTENT_TYPE.test(req.headers['content-type'] ?? '');
const hasRequestBody = (req: Request) => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
const notJson = () =>
  new AppError(415, 'unsupported_media_type', 'The request body must be JSON sent with Content-Type: application/json', [
    { path: 'Content-Type', message: 'Expected application/json' },
  ]);

/** Builds the handler input: params now, the rest on first read (also for the compatibility edge, which runs routes on rewritten requests). */
/* eslint-disable @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-assignment -- `AnyRoute` erases each
   route's schemas to `any`; the route's own handler type is what checks the parsed values */
export function routeInput(route: AnyRoute, req: Request, res: Response): RouteInput<unknown, unknown, unknown, unknown, Auth> {
  const params: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries((route.params ?? {}) as Record<string, ParamSpec>)) {
    const parsed = spec.schema.safeParse(req.params[name]);
    if (!parsed.success) throw notFound(spec.resource);
    params[name] = parsed.data;
  }
  const once = <T>(read: () => T) => {
    let done = false;
    let value: T;
    return () => {
      if (!done) {
        value = read();
        done = true;
      }
      return value;
    };
  };
  const query = once(() => (route.query ? parseOr400(route.query, req.query, 'query') : undefined));
  const body = once(() => {
    if (!route.body) return undefined;
    // The JSON parser leaves `req.body` unset for any other Content-Type: say so, rather than a
    // validation error about an empty path.
    if (req.body === undefined && !isJsonContentType(req) && (hasRequestBody(req) || !route.bodyOptional)) throw notJson();
    return parseOr400(route.body, route.bodyOptional ? (req.body ?? {}) : req.body);
  });
  const headers = once(() => {
    const out: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries((route.headers ?? {}) as Record<string, ApiHeader>)) {
      const raw = req.get(name);
      if (raw === undefined && spec.required) throw badRequest(`Missing ${name} header`, [{ path: name, message: 'Required' }]);
      out[name] = raw === undefined || !spec.schema ? raw : parseOr400(spec.schema, raw, `${name} header`);
    }
    return out;
  });
  return {
    req,
    res,
    user: route.auth === 'bearer' ? currentUser(req) : req.user,
    params,
    get query() {
      return query();
    },
    get body() {
      return body();
    },
    get headers() {
      return headers();
    },
  };
}
/* eslint-enable @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-assignment */

/**
 * Registers each route on `router` (in list order, which matters where paths overlap): bearer
 * routes authenticate first (skipped when an earlier `authenticate` already set `req.user`), then
 * the handler runs and its result is sent (see the module comment).
 */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], ctx: ApiContext): Router {
  const auth = authenticate(ctx.tokens);
  // A route on one canvas reads the caller's role there with the session check.
  const authOnCanvas = authenticate(ctx.tokens, { canvasParam: 'id' });
  const ensureUser: RequestHandler = (req: Request, res: Response, next: NextFunction) => (req.user ? next() : auth(req, res, next));
  const ensureUserOnCanvas: RequestHandler = (req: Request, res: Response, next: NextFunction) =>
    req.user ? next() : authOnCanvas(req, res, next);
  for (const route of routes) {
    const status = successStatus(route);
    const handle: RequestHandler = async (req, res) => {
      const result: unknown = await route.handler(routeInput(route, req, res), ctx);
      if (result !== undefined) {
        if (status === undefined || status === 204)
          throw new Error(`${route.operationId} returned a body but declares ${status ?? 'several 2xx statuses'}`);
        res.status(status).json(result);
      } else if (status === 204 && !res.headersSent) {
        res.status(204).end();
      }
    };
    const onCanvas = route.path.startsWith('/canvases/:id/') || route.path === '/canvases/:id';
    router[route.method](
      route.path,
      recordRoute,
      ...(route.auth === 'bearer' ? [onCanvas ? ensureUserOnCanvas : ensureUser, handle] : [handle]),
    );
  }
  return router;
}

/**
 * Keeps the matched route's full template (`/api/v1/canvases/:id`) while `req.baseUrl` still holds
 * the mount path: once an error leaves the router, express resets `baseUrl`, and the HTTP metrics
 * would label the failure with the bare `/canvases/:id`.
 */
const recordRoute: RequestHandler = (req, res, next) => {
  res.locals.routeTemplate = `${req.baseUrl}${(req.route as { path: string }).path}`;
  next();
};

/** A new router with `routes` mounted. */
export const routesRouter = (routes: readonly AnyRoute[], ctx: ApiContext): Router => mountRoutes(Router(), routes, ctx);

/**
 * A value built once per API context (a limiter, an event log reader) for module-level handlers:
 * `const throttle = perContext((ctx) => new LoginThrottle(...)); ... throttle(ctx).beforeRegister(...)`.
 * Typed on the port it needs (`perContext((ctx: Pick<ApiContext, 'redis'>) => ...)`), keyed by the
 * one context object every port is at run time, so modules share what they build.
 */
export function perContext<T, Ctx extends object = ApiContext>(make: (ctx: Ctx) => T): (ctx: Ctx) => T {
  const built = new WeakMap<Ctx, T>();
  return (ctx) => {
    if (!built.has(ctx)) built.set(ctx, make(ctx));
    return built.get(ctx)!;
  };
}
