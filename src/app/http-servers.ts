import http from 'node:http';
import { AppError } from '../lib/errors';
import { metricsAllowed, type Metrics, type OperatorSecretCheck } from '../observability/metrics';

/**
 * /metrics, /healthz and /readyz (Redis and the database answer, and no shutdown has begun) for
 * processes without the api role, so workers can be scraped and probed (deploy/k8s).
 */
export async function serveMetrics(
  metrics: Metrics,
  host: string,
  port: number,
  token: string | undefined,
  ready: () => Promise<boolean>,
  secrets: OperatorSecretCheck,
): Promise<http.Server> {
  const server = createHttpServer(
    (req, res) =>
      void (async () => {
        if (req.url === '/metrics') {
          const ip = req.socket.remoteAddress ?? 'unknown';
          if (!(await metricsAllowed(req.headers.authorization, token, ip, secrets))) {
            res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Bearer realm="metrics"' });
            return void res.end(
              JSON.stringify({ error: { code: 'unauthorized', message: 'Metrics require the METRICS_TOKEN bearer token' } }),
            );
          }
          res.setHeader('Content-Type', metrics.registry.contentType);
          return void res.end(await metrics.registry.metrics());
        }
        if (req.url === '/healthz') return void res.setHeader('Content-Type', 'application/json').end('{"status":"ok"}');
        if (req.url === '/readyz') {
          const ok = await ready();
          res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' });
          return void res.end(JSON.stringify({ status: ok ? 'ready' : 'unavailable' }));
        }
        res.writeHead(404).end();
      })().catch((error: unknown) => {
        // An address locked out by wrong tokens answers 429 with Retry-After, as on the API.
        if (error instanceof AppError && !res.headersSent) {
          res.writeHead(error.status, { 'Content-Type': 'application/json', ...error.headers });
          return void res.end(JSON.stringify({ error: { code: error.code, message: error.message } }));
        }
        // A scrape or probe whose read failed (Redis, the database) answers 503, not an unhandled rejection.
        if (!res.headersSent) res.writeHead(503);
        res.end();
      }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * An idle keep-alive connection stays open 65 s, longer than the idle timeout of the proxies and
 * load balancers usually in front (60 s) and of clients' pools. Node's default of 5 s races
 * them: a request sent on a connection as the server closes it is reset.
 */
const HTTP_KEEP_ALIVE_MS = 65_000;

/**
 * The API's server. A request's headers and body must arrive within `requestTimeoutMs` (the 60 s
 * of proxies' idle timeouts by default; Node's own default is 300 s), else 408 and the connection
 * closes; headers alone keep Node's 60 s when that is shorter. Node checks the deadlines on an
 * interval (30 s by default), checked here a tenth as often as the deadline, so a trickled body
 * is cut close to it. The deadline covers receiving the request only: a stream or a socket, once its
 * request arrived, is not cut. (The metrics-only server, without a body to read, keeps Node's.)
 */
export function createHttpServer(listener: http.RequestListener, requestTimeoutMs?: number): http.Server {
  const server = requestTimeoutMs
    ? http.createServer(
        {
          requestTimeout: requestTimeoutMs,
          headersTimeout: Math.min(60_000, requestTimeoutMs),
          connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.round(requestTimeoutMs / 10))),
        },
        listener,
      )
    : http.createServer(listener);
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_MS;
  return server;
}

/** How often a closing server looks again for keep-alive connections that became idle. */
const IDLE_SWEEP_MS = 100;

/**
 * Stops accepting connections and waits for in-flight requests. Idle keep-alive connections close
 * at once, and so does each connection whose last request ends later (an event stream told to
 * reconnect, a long poll): a keep-alive client would otherwise hold the server for its idle timeout.
 */
export function closeHttp(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
