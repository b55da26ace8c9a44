import http from 'node:http';
import { ConfigError, productionModelRequired, sharedDatabaseRequired, sharedRedisRequired, type Config } from '../../config';
import type { LlmEndpoint } from '../ai/llm';
import type { FlowTriggers } from '../triggers/flow-triggers';
import { LimitsResolver } from '../auth/limits';
import { UNPRICED_WARNING, unpricedUnderCostLimit } from '../budget/pricing';
import { packageVersion } from '../lib/package-version';
import { limitConnectionsPerIp, trustedPeer } from '../http/connection-limits';
import { createLogger, logFormat, type Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { Metrics } from '../observability/metrics';
import { startTracing } from '../observability/tracing';
import type { ProviderProbe } from '../ai/provider-probe';
import { closeHttp, createHttpServer, serveMetrics } from './http-servers';
import { LoginThrottle } from '../auth/login-throttle';
import { buildServices } from './services';
import { closeAll, type Closers } from './shutdown';
import { checkBeforeStart } from './start-checks';
import { openStores } from './stores';

export interface RunningSwitchboard {
  config: Config;
  /** Base URL of the HTTP server (api role only). */
  url?: string;
  /** What runs where, for the start banner. */
  summary: { roles: string[]; database: string; redis: string; llm: string; dashboard?: string };
  logger: Logger;
  /** The repositories over this process's database (tests and embedders read state through them). */
  repos: Repositories;
  /** Flow triggers: a scheduler built over them fires schedules as the scheduler role does (tests, embedders). */
  flowTriggers: FlowTriggers;
  /** What `/readyz` says of the model providers (api role only): a probe through it is what readiness reports next. */
  providers?: ProviderProbe;
  /** Graceful stop: refuse new work, drain, close everything; bounded by SHUTDOWN_TIMEOUT_MS. */
  stop(): Promise<void>;
}

/**
 * Starts the roles this process runs, in this order: the checks that need nothing started, the
 * stores (database, Redis), the services every role shares (src/app/services.ts), then the worker,
 * scheduler and api roles. No DI container: each part gets exactly what it uses. Every step adds
 * its own closers, so a start that fails half-way closes what it opened, and a stop runs them
 * newest first: stop taking work, finish it, then close what it used.
 */
export async function startSwitchboard(
  config: Config,
  options: {
    logger?: Logger;
    endpoint?: LlmEndpoint;
    metrics?: Metrics;
    /** Told each slow start-up step as it begins (the CLI prints them; a start can take seconds). */
    progress?: (step: string) => void;
  } = {},
): Promise<RunningSwitchboard> {
  const progress = options.progress ?? (() => undefined);
  const logger = options.logger ?? createLogger({ level: config.log.level, format: logFormat(config.env, config.log.format) });
  const metrics = options.metrics ?? new Metrics({ defaultMetrics: config.metrics.processMetrics });
  const closers: Closers = [];
  const roles = new Set(config.roles);
  for (const warning of config.warnings) logger.warn(warning);
  // A model without a price counts $0 against a cost limit: the operator is told at start (and in /readyz).
  const unpriced = unpricedUnderCostLimit(config);
  if (unpriced.length) logger.warn({ models: unpriced }, UNPRICED_WARNING);
  // The embedded redis-server is private to this process: only the one-process default may use it.
  // So does the embedded database, and production never serves the demo model unless told to.
  const required = [sharedRedisRequired(config), sharedDatabaseRequired(config), productionModelRequired(config, !!options.endpoint)];
  const missing = required.filter((issue): issue is string => issue !== null);
  if (missing.length) throw new ConfigError(missing);
  // The port is free and every Redis answers, before anything starts: each problem one line.
  await checkBeforeStart(config);
  try {
    // Spans are sent when OTEL_EXPORTER_OTLP_ENDPOINT is set; the SDK is not even loaded otherwise.
    // Its closer is the last step of a stop: it flushes the spans of everything closed before it.
    const stopTracing = await startTracing(process.env, logger, { roles: config.roles, version: packageVersion() });
    if (stopTracing) closers.push(['tracing', stopTracing]);
    const stores = await openStores(config, logger, progress, closers);
    const { repos, connections, database } = stores;
    metrics.resources.watchDatabase(database);

    // The express app is plugged in later (it needs the socket server), but its request listener
    // must exist BEFORE Socket.IO attaches: Socket.IO then routes /socket.io/ to itself only.
    let handleRequest: http.RequestListener = (_req, res) => void res.writeHead(503).end();
    const httpServer = roles.has('api') ? createHttpServer((req, res) => handleRequest(req, res), config.http.requestTimeoutMs) : undefined;
    if (httpServer)
      limitConnectionsPerIp(httpServer, { maxPerIp: config.http.maxConnectionsPerIp, trusted: trustedPeer(config.trustProxy), logger });
    const services = buildServices(config, stores, { logger, metrics, httpServer }, closers);
    const { queues, budget } = services;
    let llmSummary = 'not used by these roles';
    if (roles.has('worker')) {
      const { startWorkerRole } = await import('./worker-role');
      const worker = await startWorkerRole({
        ...services,
        config,
        repos,
        redis: connections,
        logger,
        metrics,
        endpoint: options.endpoint,
        runs: services.generationRuns,
        kernel: services.runKernel,
      });
      llmSummary = worker.summary;
      for (const closer of [...worker.closers].reverse()) closers.unshift(closer);
    }

    if (roles.has('scheduler')) {
      const [{ AgentScheduler }, { TriggerScheduler }] = await Promise.all([
        import('../agents/scheduler'),
        import('../triggers/trigger-scheduler'),
      ]);
      const scheduler = new AgentScheduler({
        repos,
        enqueue: queues.enqueue,
        logger,
        tick: config.agents.schedulerTick,
        limits: new LimitsResolver({ users: repos.users, tiers: config.tiers }),
        budget,
      });
      scheduler.start();
      closers.unshift(['scheduler', () => scheduler.stop()]);
      // Flow schedules tick with the agents' schedules: one fire per slot across every scheduler.
      const triggerScheduler = new TriggerScheduler({ repos, triggers: services.flowTriggers, logger, tick: config.agents.schedulerTick });
      triggerScheduler.start();
      closers.unshift(['flow trigger scheduler', () => triggerScheduler.stop()]);
    }

    const shuttingDown = { value: false };
    let url: string | undefined;
    let dashboard: string | undefined;
    let providers: ProviderProbe | undefined;
    if (httpServer) {
      const serve = (listener: http.RequestListener) => void (handleRequest = listener);
      const { startApiRole } = await import('./api-role');
      const api = await startApiRole(
        config,
        stores,
        services,
        { logger, metrics, httpServer, serve, shuttingDown, endpoint: options.endpoint },
        closers,
      );
      ({ url, dashboard, providers } = api);
    }
    if (!httpServer && config.http.metricsPort !== undefined) {
      const ready = async () => {
        if (shuttingDown.value) return false;
        const checks = [connections.ping(), database.ping()].map((check) =>
          Promise.race([check, new Promise((_, reject) => setTimeout(reject, 1_500).unref())]),
        );
        return (await Promise.allSettled(checks)).every((result) => result.status === 'fulfilled');
      };
      // Wrong METRICS_TOKEN guesses back off per address, as on the API.
      const secrets = new LoginThrottle(connections.cache.command, config.redis.keyPrefix, config.auth);
      const metricsServer = await serveMetrics(metrics, config.http.host, config.http.metricsPort, config.metrics.token, ready, secrets);
      closers.unshift(['metrics http', () => closeHttp(metricsServer)]);
    }
    closers.unshift(['readiness', () => void (shuttingDown.value = true)]);

    return {
      config,
      url,
      providers,
      logger,
      repos,
      flowTriggers: services.flowTriggers,
      summary: { roles: [...roles], database: database.description, redis: stores.redisDescription, llm: llmSummary, dashboard },
      stop: () => closeAll(closers, config.shutdown.timeoutMs, logger),
    };
  } catch (error) {
    await closeAll(closers, config.shutdown.timeoutMs, logger);
    throw error;
  }
}
