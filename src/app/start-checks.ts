import net from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from '../../config';

/**
 * A start-up check that failed: its message is one line naming the setting and the fix, printed
 * without a stack (src/cli.ts lists it among the plain errors).
 */
export class StartCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartCheckError';
  }
}

/** How long a Redis server may take to answer the start's PING. */
const REDIS_CHECK_MS = 3_000;

/**
 * What must hold before anything starts (no embedded Redis, no migration, no listener): the HTTP
 * (or metrics) port is free, and every configured Redis answers PING. Each failure is one line
 * naming the setting to change; all of them are reported together.
 */
export async function checkBeforeStart(config: Config): Promise<void> {
  const problems = (
    await Promise.all([portProblem(config), ...redisTargets(config).map(({ setting, target }) => redisProblem(setting, target))])
  ).filter((problem): problem is string => problem !== null);
  if (problems.length) throw new StartCheckError(problems.join('\n'));
}

/** The port this process will listen on, by its setting: PORT for the api, METRICS_PORT otherwise. */
function portOf(config: Config): { setting: 'PORT' | 'METRICS_PORT'; port: number } | null {
  if (config.roles.includes('api')) return { setting: 'PORT', port: config.http.port };
  if (config.http.metricsPort !== undefined) return { setting: 'METRICS_PORT', port: config.http.metricsPort };
  return null;
}

/** Listens on the port for a moment: taken or forbidden is said now, not after Redis and migrations. */
async function portProblem(config: Config): Promise<string | null> {
  const wanted = portOf(config);
  if (!wanted || wanted.port === 0) return null;
  const { setting, port } = wanted;
  const host = config.http.host;
  const code = await new Promise<string | null>((resolve) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(null)));
  });
  return code === null ? null : portInUse(setting, host, port, code);
}

/** The one line for a port that cannot be listened on (also for a listen that fails later). */
export function portInUse(setting: string, host: string, port: number, code: string): string {
  if (code === 'EADDRINUSE')
    return `${setting}: ${host}:${port} is already in use by another program; stop it, or set ${setting} to a free port (${setting}=0 picks any)`;
  if (code === 'EACCES')
    return `${setting}: listening on ${host}:${port} is not permitted (ports below 1024 need privileges); set ${setting} to a port above 1023`;
  if (code === 'EADDRNOTAVAIL')
    return `HOST: ${host} is not an address of this machine; set HOST to one (127.0.0.1, or 0.0.0.0 for every interface)`;
  return `${setting}: cannot listen on ${host}:${port} (${code}); set ${setting} to a free port`;
}

/** Each distinct Redis of the deployment with the setting that names it. */
function redisTargets(config: Config): Array<{ setting: string; target: string | Array<{ host: string; port: number }> }> {
  const { redis } = config;
  if (redis.cluster) return [{ setting: 'REDIS_CLUSTER_NODES', target: redis.cluster }];
  const seen = new Map<string, string>();
  for (const concern of ['queues', 'realtime', 'cache'] as const) {
    const url = redis.urls[concern];
    if (url === undefined || seen.has(url)) continue;
    const own = { queues: 'REDIS_URL_QUEUES', realtime: 'REDIS_URL_REALTIME', cache: 'REDIS_URL_CACHE' }[concern];
    seen.set(url, url === redis.url ? 'REDIS_URL' : own);
  }
  return [...seen].map(([target, setting]) => ({ setting, target }));
}

/**
 * One connection, one PING, no retries, no reconnects: down is said once, with where and why. A
 * cluster is down only when none of its seeds answers (the cluster client needs one to find the rest).
 */
async function redisProblem(setting: string, target: string | Array<{ host: string; port: number }>): Promise<string | null> {
  if (typeof target === 'string') return serverProblem(setting, target);
  const problems = await Promise.all(target.map((seed) => serverProblem(setting, `redis://${seed.host}:${seed.port}`)));
  return problems.every((problem) => problem !== null) ? problems[0] : null;
}

async function serverProblem(setting: string, url: string): Promise<string | null> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: REDIS_CHECK_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
  let failure: Error | undefined;
  // Every error of this probe is the answer below, not an "Unhandled error event".
  client.on('error', (error: Error) => (failure ??= error));
  try {
    await client.connect();
    await withTimeout(client.ping(), REDIS_CHECK_MS);
    return null;
  } catch (error) {
    const reason = failure ?? (error as Error);
    const code = (reason as NodeJS.ErrnoException).code ?? reason.message.split(/\s/)[0];
    const where = redact(url);
    if (/NOAUTH|WRONGPASS|invalid password/i.test(reason.message))
      return `${setting}: Redis at ${where} refused the credentials (${code}); put the right user and password in the URL, redis://user:password@host:port`;
    return `${setting}: cannot reach Redis at ${where} (${code}); start Redis there, or set ${setting} to a running server`;
  } finally {
    client.disconnect();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), ms);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error as Error)),
    );
  });
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, '//***@');
