/** Per-tier limits. `Infinity` means unlimited. Overridable through `TIER_LIMITS` (JSON). */
export interface TierLimits {
  /** Generations a user may start per minute. */
  generationsPerMinute: number;
  /** Generations a user may start per hour. */
  generationsPerHour: number;
  /** Generations of one user that may be queued or running at once. */
  concurrentGenerations: number;
  /** Blocks kept from one generation; past that the agent stops and the result is truncated. */
  maxBlocksPerGeneration: number;
  /** Enabled background agents (local + cloud together). */
  maxEnabledAgents: number;
}

export const TIERS = ['free', 'pro', 'enterprise'] as const;
export type Tier = (typeof TIERS)[number];

export const DEFAULT_TIER_LIMITS: Record<Tier, TierLimits> = {
  free: { generationsPerMinute: 5, generationsPerHour: 50, concurrentGenerations: 1, maxBlocksPerGeneration: 200, maxEnabledAgents: 2 },
  pro: { generationsPerMinute: 30, generationsPerHour: 1_000, concurrentGenerations: 4, maxBlocksPerGeneration: 200, maxEnabledAgents: 10 },
  enterprise: {
    generationsPerMinute: 120,
    generationsPerHour: 10_000,
    concurrentGenerations: 16,
    maxBlocksPerGeneration: 200,
    maxEnabledAgents: Infinity,
  },
};

/** Merges a partial override (`{"free": {"generationsPerMinute": 10}}`) over the defaults. */
export function mergeTierLimits(override: Partial<Record<Tier, Partial<TierLimits>>> | undefined): Record<Tier, TierLimits> {
  const merged = { ...DEFAULT_TIER_LIMITS };
  for (const tier of TIERS) merged[tier] = { ...DEFAULT_TIER_LIMITS[tier], ...(override?.[tier] ?? {}) };
  return merged;
}
