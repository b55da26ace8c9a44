import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CACHE_NAMES, cacheLookups } from '../lib/cache-stats';

/** Seconds buckets for database statements and tool calls: from half a millisecond to a minute. */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What `watchDatabase` reads: a PostgreSQL server's pool and where its statements' times go (PGlite has neither). */
export interface WatchedDatabase {
  pool?: () => { total: number; idle: number; waiting: number; max: number };
  timing?: { observe?: (seconds: number, failed: boolean) => void };
}

/**
 * What the process spends its resources on: tool executions, database statements and pool, and
 * the in-memory caches. Recorded in memory (a histogram observation, a counter read at scrape
 * time), never with a network call.
 */
export class ResourceMetrics {
  /** Every built-in tool call of an assistant turn (data and coding tools), from its start to its result. */
  readonly toolSeconds: Histogram<'tool' | 'outcome'>;
  readonly dbQuerySeconds: Histogram<'outcome'>;
  readonly dbPoolConnections: Gauge<'state'>;
  readonly dbPoolMax: Gauge;
  readonly dbPoolUsage: Gauge;
  readonly cacheRequests: Counter<'cache' | 'result'>;
  private pool?: WatchedDatabase['pool'];

  constructor(registry: Registry) {
    const registers = [registry];
    this.toolSeconds = new Histogram({
      name: 'switchboard_tool_execution_seconds',
      help: "Assistant tool executions (the device's data and project tools) by tool and outcome (ok|error)",
      labelNames: ['tool', 'outcome'] as const,
      buckets: FAST_BUCKETS,
      registers,
    });
    this.dbQuerySeconds = new Histogram({
      name: 'switchboard_db_query_seconds',
      help: 'PostgreSQL statements of this process (through its pool, transactions included) by outcome (ok|error)',
      labelNames: ['outcome'] as const,
      buckets: FAST_BUCKETS,
      registers,
    });
    this.dbPoolConnections = new Gauge({
      name: 'switchboard_db_pool_connections',
      help: "The PostgreSQL pool's connections by state (in_use|idle) and the requests waiting for one (waiting), read at scrape time",
      labelNames: ['state'] as const,
      registers,
      collect: () => {
        const pool = this.pool?.();
        if (!pool) return;
        this.dbPoolConnections.set({ state: 'in_use' }, pool.total - pool.idle);
        this.dbPoolConnections.set({ state: 'idle' }, pool.idle);
        this.dbPoolConnections.set({ state: 'waiting' }, pool.waiting);
      },
    });
    this.dbPoolMax = new Gauge({
      name: 'switchboard_db_pool_max_connections',
      help: "The PostgreSQL pool's size in this process",
      registers,
      collect: () => {
        const pool = this.pool?.();
        if (pool) this.dbPoolMax.set(pool.max);
      },
    });
    this.dbPoolUsage = new Gauge({
      name: 'switchboard_db_pool_usage_ratio',
      help: "Share of the PostgreSQL pool's connections in use (0-1), read at scrape time",
      registers,
      collect: () => {
        const pool = this.pool?.();
        if (pool) this.dbPoolUsage.set(pool.max > 0 ? (pool.total - pool.idle) / pool.max : 0);
      },
    });
    this.cacheRequests = new Counter({
      name: 'switchboard_cache_requests_total',
      help: 'Lookups of the in-memory caches by cache (access_tokens: verified access tokens; model_prices: the price catalog; webhook_subscriptions: the webhook endpoints and push configs of each user) and result (hit|miss)',
      labelNames: ['cache', 'result'] as const,
      registers,
      collect: () => {
        const counts = cacheLookups();
        this.cacheRequests.reset();
        for (const cache of CACHE_NAMES) {
          this.cacheRequests.inc({ cache, result: 'hit' }, counts[cache].hit);
          this.cacheRequests.inc({ cache, result: 'miss' }, counts[cache].miss);
        }
      },
    });
  }

  /** Times the database's statements and reads its pool at scrape time (a PostgreSQL server; PGlite reports nothing). */
  watchDatabase(database: WatchedDatabase): void {
    this.pool = database.pool;
    if (database.timing)
      database.timing.observe = (seconds, failed) => this.dbQuerySeconds.observe({ outcome: failed ? 'error' : 'ok' }, seconds);
  }
}
