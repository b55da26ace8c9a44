import type { NextFunction, Request, Response } from 'express';
import type { Metrics } from '../../observability/metrics';

/**
 * Records duration and count per route TEMPLATE (`/api/v1/canvases/:id`), never the raw path, so
 * ids do not explode label cardinality. Unmatched paths count as `unmatched`.
 */
export function httpMetrics(metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    // `on`, not `once`: a response emits 'finish' at most once, and `once` wraps the listener in a
    // closure of its own that an open event stream keeps for its whole life.
    res.on('finish', () => {
      // Declared routes record their template when matched (route.ts), errors included; other
      // express routes are read here; anything that matched no route is one bounded `unmatched`.
      const routePath = (req.route as { path?: string } | undefined)?.path;
      const route = (res.locals.routeTemplate as string | undefined) ?? (routePath ? `${req.baseUrl}${routePath}` : 'unmatched');
      const labels = { method: req.method, route, status: String(res.statusCode) };
      metrics.httpDuration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
      metrics.httpRequests.inc(labels);
    });
    next();
  };
}
