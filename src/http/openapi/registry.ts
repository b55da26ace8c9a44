import type { z } from 'zod';

/** The HTTP methods an operation can use (lower case, as express and OpenAPI spell them). */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * Error statuses with a shared component response in the document (`#/components/responses/…`),
 * all in the API's error shape `{"error":{"code","message","details?"}}`.
 */
export const ERROR_RESPONSES = {
  400: {
    name: 'BadRequest',
    description:
      'Invalid input: `code` is `validation_failed` (with `details: [{path, message}]`), `invalid_json` or a route-specific code',
  },
  401: { name: 'Unauthorized', description: 'Missing, invalid or expired access token (`unauthorized`)' },
  403: { name: 'Forbidden', description: "Authenticated, but the caller's role does not allow this (`forbidden`)" },
  404: { name: 'NotFound', description: 'No such resource, or one the caller may not see (`not_found`: the same answer either way)' },
  409: { name: 'Conflict', description: 'The resource is in a state that does not allow this (route-specific `code`)' },
  413: { name: 'PayloadTooLarge', description: 'Request body larger than the limit (`payload_too_large`)' },
  415: {
    name: 'UnsupportedMediaType',
    description: 'A JSON body sent without `Content-Type: application/json` (`unsupported_media_type`)',
  },
  422: { name: 'Unprocessable', description: 'Well-formed but refused, e.g. `prompt_rejected` by the prompt guard' },
  429: { name: 'TooManyRequests', description: 'Over a rate or concurrency limit; retry after `Retry-After` seconds' },
  503: { name: 'Unavailable', description: 'A backing service is unavailable or this node is shutting down; retry shortly' },
} as const;
export type ErrorStatus = keyof typeof ERROR_RESPONSES;

/**
 * What every event stream (`text/event-stream`) may answer instead of opening: each goes through
 * the per-user stream cap and refuses new streams while its node shuts down.
 */
export const STREAM_ERRORS: Partial<Record<ErrorStatus, string>> = {
  429: 'The caller already holds `MAX_STREAMS_PER_USER` open streams (`too_many_streams`, `details: {limit}`; retry after `Retry-After` seconds or close one), or a rate limit of the route',
  503: 'This node is shutting down (`shutting_down`: retry, a load balancer sends it to another node), or a backing service is unavailable (`service_unavailable`)',
};

/** The plain WebSocket of devices, which no operation can describe (it answers an HTTP upgrade). */
export const DEVICE_WEBSOCKET_DESCRIPTION =
  'Devices may also speak a plain WebSocket (no Socket.IO): `GET /api/v1/ws/device?token=<access token>` with `Upgrade: websocket` answers ' +
  '`101 Switching Protocols`, or refuses the upgrade with an HTTP status and the error body: 401 `unauthorized` (missing, invalid or expired token), ' +
  '429 `too_many_sockets` (`MAX_SOCKETS_PER_USER`), 503 `unavailable` (the token could not be checked). Frames are JSON text messages ' +
  '(`{"type": ...}`), described in `docs/protocol.md`; an expired token or a revoked session closes the connection with code 4002. A plain GET without the upgrade is not this endpoint (401, or 404 with a token).';

/** A success response: a description only, or a description with a body schema (JSON unless `contentType` says otherwise). */
export type ApiResponse =
  | string
  | {
      description: string;
      /** Body schema, a zod schema documented in its `output` form. */
      schema?: z.ZodType;
      /** Default `application/json`; e.g. `text/event-stream` for SSE. */
      contentType?: string;
      /** Response headers worth knowing (name → description). */
      headers?: Record<string, string>;
    };

/** A request header the route reads. */
export interface ApiHeader {
  description: string;
  /** The exact zod schema the handler parses the header with, when it parses one. */
  schema?: z.ZodType;
  required?: boolean;
}

/**
 * The documented part of a route. Routes are declared with `defineRoute` (`../route.ts`), whose
 * declarations are these objects plus their handler: `mountRoutes` validates with the very schemas
 * the document is generated from, and `test/integration/openapi.test.ts` probes the live app with
 * requests built from the generated JSON Schema.
 */
export interface ApiOperation {
  method: HttpMethod;
  /** Express-style path relative to `/api/v1`, exactly as the router registers it: `/canvases/:id/blocks`. */
  path: string;
  /** Unique, camelCase; what generated clients name the call. */
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** `bearer`: needs `Authorization: Bearer <access token>` (a 401 is documented for it); `public`: no auth. */
  auth: 'bearer' | 'public';
  /** Path parameters by name; every `:name` in `path` must be listed. */
  params?: Record<string, { schema: z.ZodType; description?: string }>;
  /** The query schema (a zod object) `req.query` is parsed with. */
  query?: z.ZodObject;
  headers?: Record<string, ApiHeader>;
  /** The JSON body schema `req.body` is parsed with. A 400 is documented for it. */
  body?: z.ZodType;
  /**
   * The body is `multipart/form-data` files, read by the handler itself (no JSON body): documented
   * as a `file` field of binary parts, and generated clients take a list of files.
   */
  files?: { description: string };
  /** A missing body is accepted (parsed as `{}`). */
  bodyOptional?: boolean;
  /**
   * A body valid for the handler, for constraints JSON Schema cannot state (refinements): shown in
   * the document and sent by the drift test instead of one generated from the schema.
   */
  bodyExample?: unknown;
  /** Success responses by status. */
  responses: Partial<Record<number, ApiResponse>>;
  /**
   * For a `public` route that checks credentials itself (the API's Bearer authentication would
   * refuse others): the schemes it accepts, any one of them (`adminBasic`: the dashboard's
   * `ADMIN_USER`/`ADMIN_PASSWORD`; `bearerAuth`: an access token, here an admin's).
   */
  credentials?: Array<'adminBasic' | 'bearerAuth'>;
  /** Error statuses beyond the automatic ones (400 with a body/query/header schema, 401 with bearer auth). */
  errors?: ErrorStatus[];
}

/** `/canvases/:id` → `/canvases/{id}`. */
export const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** The `:name` parameters of an express path, in order. */
export const pathParamNames = (path: string) => [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1]);
