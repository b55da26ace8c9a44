import type { NextFunction, Request, Response } from 'express';
import { startSpan, tracingOn } from '../../observability/tracing';
import { loggedPath } from '../log-redaction';

/** Probes and scrapes, every few seconds from every pod: as the request log does, they are left out. */
const UNTRACED = new Set(['/healthz', '/readyz', '/health', '/metrics', '/metrics/queues']);

/**
 * One server span per request when tracing is on, named by the route TEMPLATE once the router
 * matched (`POST /api/v1/canvases/:id/ai/generate-stream`). A request from a proxy `trusted` names
 * (`TRUST_PROXY`) continues its W3C `traceparent` and `tracestate`; any other caller's request starts
 * a new trace, sampled by our sampler, linked to the caller's `traceparent`, without its
 * `tracestate`: a stranger cannot pick our trace ids, hide its requests (and the jobs they queue)
 * from sampling or put its text in our exports. The path is recorded as the request log shows it:
 * no query, no credential segment. Off, a request pays one check.
 */
export function httpTracing(trusted: (address: string) => boolean = () => false) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!tracingOn() || UNTRACED.has(req.url)) return next();
    const attributes = { 'http.request.method': req.method, 'url.path': loggedPath(req.originalUrl) };
    const peer = req.socket.remoteAddress;
    const span = startSpan(req.method, 'server', attributes, req.headers, peer && trusted(peer) ? 'trusted' : 'stranger');
    if (!span) return next();
    // A request's body arrives in listeners of `req` (the JSON parser's): they stay in this trace.
    // The response's listeners only end spans, so `res` is left unpatched.
    span.bind(req);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const routePath = (req.route as { path?: string } | undefined)?.path;
      const route = (res.locals.routeTemplate as string | undefined) ?? (routePath ? `${req.baseUrl}${routePath}` : undefined);
      if (route) span.rename(`${req.method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
      span.end(res.statusCode >= 500 ? { code: `http_${res.statusCode}` } : undefined);
    };
    res.once('finish', end);
    // A client that went away before the answer finished (an SSE stream it closed) ends the span too.
    res.once('close', end);
    span.run(next);
  };
}
