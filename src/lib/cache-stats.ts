/**
 * Hits and misses of the process's in-memory caches, counted in plain numbers where the lookup
 * happens (no metrics library in the lower layers); `/metrics` reads them at scrape time as
 * `switchboard_cache_requests_total{cache, result}`.
 */
export const CACHE_NAMES = ['access_tokens', 'model_prices', 'webhook_subscriptions'] as const;
export type CacheName = (typeof CACHE_NAMES)[number];

const counts: Record<CacheName, { hit: number; miss: number }> = {
  access_tokens: { hit: 0, miss: 0 },
  model_prices: { hit: 0, miss: 0 },
  webhook_subscriptions: { hit: 0, miss: 0 },
};

/** Counts one lookup of `cache`. */
export function countCacheLookup(cache: CacheName, hit: boolean): void {
  counts[cache][hit ? 'hit' : 'miss'] += 1;
}

/** The counts so far, per cache (a copy). */
export function cacheLookups(): Record<CacheName, { hit: number; miss: number }> {
  return Object.fromEntries(CACHE_NAMES.map((name) => [name, { ...counts[name] }])) as Record<CacheName, { hit: number; miss: number }>;
}
