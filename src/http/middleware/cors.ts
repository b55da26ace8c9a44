import type { NextFunction, Request, Response } from 'express';

/** Every method the API declares, and the preflight itself. */
export const CORS_ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * The request headers a browser client sends: the bearer token, JSON bodies, idempotent generation
 * starts, resuming an event stream, and a caller-chosen request id for correlation.
 */
export const CORS_ALLOWED_HEADERS =
  'Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-API-Key, X-Request-Id, X-Vercel-AI-UI-Message-Stream';

/** The response headers a browser client reads: backoff, correlation, and the ids of started runs. */
export const CORS_EXPOSED_HEADERS =
  'Retry-After, X-Request-Id, X-Generation-Id, X-Chat-Session-Id, X-Execution-Id, Idempotent-Replayed, WWW-Authenticate, X-Vercel-AI-UI-Message-Stream';

/** How long a browser may reuse a preflight answer (seconds). */
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * CORS for the `/api/v1` API. A request whose `Origin` is exactly one of
 * `origins` gets `Access-Control-Allow-Origin` with that origin (never `*`: the API is called with a
 * bearer token, and the answer must be cacheable per origin, hence `Vary: Origin` on every answer);
 * its preflight `OPTIONS` is answered here with 204, before authentication. Any other origin gets
 * no CORS headers at all, so the browser withholds the answer; its preflight falls through to the
 * API (401 or 404, no CORS headers). No credentials mode: the API reads tokens, not cookies.
 */
export function apiCors(origins: readonly string[]) {
  const allowed = new Set(origins);
  return (req: Request, res: Response, next: NextFunction) => {
    res.append('Vary', 'Origin');
    const origin = req.headers.origin;
    if (origin === undefined || !allowed.has(origin)) return next();
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', CORS_ALLOWED_METHODS);
      res.setHeader('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS);
      res.setHeader('Access-Control-Max-Age', String(CORS_MAX_AGE_SECONDS));
      return void res.status(204).end();
    }
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
    next();
  };
}
