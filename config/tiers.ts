/** What a plan lets its users reach at all; a feature that is off answers 403 `tier_forbidden`. */
export interface TierFeatures {
  /** Self-hosted model providers (kind `ollama`, `lmstudio`, `vllm`) chosen per request. */
  localModels: boolean;
  /** Cloud agents (mailbox and chat connectors) run by the server. */
  cloudAgents: boolean;
  /** Saved flows: creating, executing, chatting with them. */
  flows: boolean;
}

/**
 * Model spend a plan allows per window (`null` = unlimited). The budget door reserves against
 * these before a model call is queued; `GET /usage/budget` shows them.
 */
export interface BudgetLimits {
  /** Input + output tokens of every model call and embedding in one UTC clock hour. */
  tokensPerHour: number | null;
  /** Model calls (embeddings excluded) in one UTC clock hour. */
  requestsPerHour: number | null;
  /** Input + output tokens in one UTC calendar month. */
  tokensPerMonth: number | null;
  /** Cost in USD (from the pricing table) in one UTC calendar month. */
  costUsdPerMonth: number | null;
  /** Model calls (embeddings excluded) in one UTC calendar month. */
  requestsPerMonth: number | null;
}

export const BUDGET_LIMIT_KEYS = ['tokensPerHour', 'requestsPerHour', 'tokensPerMonth', 'costUsdPerMonth', 'requestsPerMonth'] as const;
export const FEATURE_KEYS = ['localModels', 'cloudAgents', 'flows'] as const;

/** Every budget unlimited and every feature on: a plan says only what it restricts. */
export const UNLIMITED_BUDGET: BudgetLimits & { features: TierFeatures } = {
  tokensPerHour: null,
  requestsPerHour: null,
  tokensPerMonth: null,
  costUsdPerMonth: null,
  requestsPerMonth: null,
  features: { localModels: true, cloudAgents: true, flows: true },
};

/**
 * One user's overrides, set by an operator and laid over the tier's limits key by key: budgets
 * (null = unlimited for that user) and features. Absent keys keep the tier's value.
 */
export type UserLimitOverrides = Partial<BudgetLimits> & { features?: Partial<TierFeatures> };

/** Per-tier limits. `Infinity` means unlimited (`null` for the budgets). Overridable through `TIER_LIMITS` (JSON). */
export interface TierLimits extends BudgetLimits {
  /** Which features the plan includes (each default on). */
  features: TierFeatures;
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
  /**
   * Largest file a knowledge base (or a chat message) takes from the plan's users, in bytes; the
   * deployment's `KNOWLEDGE_MAX_FILE_BYTES` is the ceiling of every plan.
   */
  maxKnowledgeFileBytes: number;
  /** Documents one knowledge base may hold; the deployment's `KNOWLEDGE_MAX_DOCUMENTS` is the ceiling of every plan. */
  maxKnowledgeDocuments: number;
  /** Knowledge bases a user may own (a chat session's own base, made for its files, is not counted). */
  maxKnowledgeBases: number;
  /** The shortest time between two fires of a flow's schedule trigger (seconds); a cron that fires more often is refused. */
  minScheduleIntervalSeconds: number;
}

const MB = 1024 * 1024;

export const TIERS = ['free', 'pro', 'enterprise'] as const;
export type Tier = (typeof TIERS)[number];

export const DEFAULT_TIER_LIMITS: Record<Tier, TierLimits> = {
  free: {
    generationsPerMinute: 5,
    generationsPerHour: 50,
    concurrentGenerations: 1,
    maxBlocksPerGeneration: 200,
    maxEnabledAgents: 2,
    maxKnowledgeFileBytes: 10 * MB,
    maxKnowledgeDocuments: 200,
    maxKnowledgeBases: 20,
    minScheduleIntervalSeconds: 900,
    ...UNLIMITED_BUDGET,
  },
  pro: {
    generationsPerMinute: 30,
    generationsPerHour: 1_000,
    concurrentGenerations: 4,
    maxBlocksPerGeneration: 200,
    maxEnabledAgents: 10,
    maxKnowledgeFileBytes: 50 * MB,
    maxKnowledgeDocuments: 2_000,
    maxKnowledgeBases: 200,
    minScheduleIntervalSeconds: 300,
    ...UNLIMITED_BUDGET,
  },
  enterprise: {
    ...UNLIMITED_BUDGET,
    generationsPerMinute: 120,
    generationsPerHour: 10_000,
    concurrentGenerations: 16,
    maxBlocksPerGeneration: 200,
    maxEnabledAgents: Infinity,
    maxKnowledgeFileBytes: Infinity,
    maxKnowledgeDocuments: Infinity,
    maxKnowledgeBases: Infinity,
    minScheduleIntervalSeconds: 60,
  },
};

/**
 * Per-minute limits on paid work, per user, by tier. Kept beside the generation
 * table above rather than in it; `TIER_LIMITS` overrides both (`{"free":{"chatPerMinute":10}}`).
 */
export interface UsageLimits {
  /** Assistant turns started: `POST /chat`, `/chat/stream` and the socket `chat_request` together (each a model call). */
  chatPerMinute: number;
  /** `POST /storage/vectors/embed` calls (each an embedding). */
  embeddingsPerMinute: number;
  /** Agent-setup journey turns: `start` and `message` together (each message a model call). */
  journeyPerMinute: number;
  /** Manual agent runs (`POST /agents/:id/run`: a device round trip or provider fetch, then model calls). */
  agentRunsPerMinute: number;
  /** Agentflow executions started (`POST /flows/:id/execute` and `/execute/stream`; each runs up to 50 model calls). */
  flowExecutionsPerMinute: number;
  /**
   * Webhook messages sent on request: `POST /webhooks/:id/test` and redeliveries together (each a
   * POST, retried, to a URL of the caller's choosing).
   */
  webhookSendsPerMinute: number;
  /**
   * Operations the assistant runs on the user's device (its tool calls: reading and changing tasks,
   * projects, checkpoints, notes) per hour; past it a call is not run and the model is told why.
   */
  deviceOperationsPerHour: number;
  /** Approval requests (a dangerous tool call waiting for the user) per hour; past it the turn ends 429 `rate_limited`. */
  approvalsPerHour: number;
  /** Coding turns started (a chat request naming an agent), per hour: each runs up to the agent's step limit of model calls. */
  codingTurnsPerHour: number;
  /** File operations and commands of the coding agents on a device, per hour (reads, searches, changes, commands). */
  codeFileOpsPerHour: number;
  /** Approval requests of the coding agents (changes and commands waiting for the user), per hour. */
  codeApprovalsPerHour: number;
}

// Generous for a person at a keyboard or a device syncing a folder of notes (embeddings come in
// bursts), small against a script: a chat or journey turn is a model call, a manual run a whole run.
// The hourly limits are off by default (a deployment's own plans set them; TIER_PRESET=seed does).
const NO_HOURLY = { deviceOperationsPerHour: Infinity, approvalsPerHour: Infinity };
// The coding agents' hourly limits start from the design's per-user figures (100 model turns,
// 1,000 file operations and 50 approval requests an hour) on the free tier.
export const DEFAULT_USAGE_LIMITS: Record<Tier, UsageLimits> = {
  free: {
    chatPerMinute: 30,
    embeddingsPerMinute: 300,
    journeyPerMinute: 30,
    agentRunsPerMinute: 10,
    flowExecutionsPerMinute: 20,
    webhookSendsPerMinute: 10,
    ...NO_HOURLY,
    codingTurnsPerHour: 100,
    codeFileOpsPerHour: 1_000,
    codeApprovalsPerHour: 50,
  },
  pro: {
    chatPerMinute: 120,
    embeddingsPerMinute: 1_200,
    journeyPerMinute: 120,
    agentRunsPerMinute: 30,
    flowExecutionsPerMinute: 60,
    webhookSendsPerMinute: 30,
    ...NO_HOURLY,
    codingTurnsPerHour: 1_000,
    codeFileOpsPerHour: 10_000,
    codeApprovalsPerHour: 500,
  },
  enterprise: {
    chatPerMinute: 600,
    embeddingsPerMinute: 6_000,
    journeyPerMinute: 600,
    agentRunsPerMinute: 120,
    flowExecutionsPerMinute: 300,
    webhookSendsPerMinute: 120,
    ...NO_HOURLY,
    codingTurnsPerHour: 10_000,
    codeFileOpsPerHour: 100_000,
    codeApprovalsPerHour: 5_000,
  },
};

export const USAGE_LIMIT_KEYS = [
  'chatPerMinute',
  'embeddingsPerMinute',
  'journeyPerMinute',
  'agentRunsPerMinute',
  'flowExecutionsPerMinute',
  'webhookSendsPerMinute',
  'deviceOperationsPerHour',
  'approvalsPerHour',
  'codingTurnsPerHour',
  'codeFileOpsPerHour',
  'codeApprovalsPerHour',
] as const;

/** Merges the usage part of a `TIER_LIMITS` override over the defaults (other keys are ignored). */
export function mergeUsageLimits(
  override: Partial<Record<Tier, Partial<UsageLimits> & Record<string, unknown>>> | undefined,
): Record<Tier, UsageLimits> {
  const merged = { ...DEFAULT_USAGE_LIMITS };
  for (const tier of TIERS) {
    const picked = Object.fromEntries(
      Object.entries(override?.[tier] ?? {}).filter(([key]) => (USAGE_LIMIT_KEYS as readonly string[]).includes(key)),
    );
    merged[tier] = { ...DEFAULT_USAGE_LIMITS[tier], ...picked };
  }
  return merged;
}

/** A tier's part of `TIER_LIMITS`: any limit, and any of the features (the others keep their default). */
export type TierLimitsOverride = Partial<Omit<TierLimits, 'features'>> & { features?: Partial<TierFeatures> };

/**
 * Merges a partial override (`{"free": {"generationsPerMinute": 10, "features": {"localModels": false}}}`)
 * over the defaults; `features` merges key by key.
 */
export function mergeTierLimits(override: Partial<Record<Tier, TierLimitsOverride>> | undefined): Record<Tier, TierLimits> {
  const merged = { ...DEFAULT_TIER_LIMITS };
  for (const tier of TIERS) {
    // The usage limits of the same override live in their own table (mergeUsageLimits).
    const picked = Object.fromEntries(
      Object.entries(override?.[tier] ?? {}).filter(([key]) => !(USAGE_LIMIT_KEYS as readonly string[]).includes(key)),
    );
    const features = { ...DEFAULT_TIER_LIMITS[tier].features, ...override?.[tier]?.features };
    merged[tier] = { ...DEFAULT_TIER_LIMITS[tier], ...picked, features };
  }
  return merged;
}

/** A `TIER_LIMITS`-shaped override of every tier (budgets, features and usage limits together). */
export type TierOverride = Partial<Record<Tier, TierLimitsOverride & Partial<UsageLimits>>>;

/**
 * The plans `TIER_PRESET` names, as overrides of the defaults; `TIER_LIMITS` is laid over the
 * preset key by key (features key by key).
 *
 * `seed`, the plans of the product's design: free has 100 model requests a month and cloud models
 * only; pro has unlimited requests and local models; both have the design's hourly limits per user
 * (100 model calls, 1,000 file operations, which here are the assistant's operations on the user's
 * device, and 50 approval requests). Enterprise plans are agreed per customer: no limits.
 */
export const TIER_PRESETS: Record<'default' | 'seed', TierOverride> = {
  default: {},
  seed: {
    free: {
      requestsPerMonth: 100,
      requestsPerHour: 100,
      deviceOperationsPerHour: 1_000,
      approvalsPerHour: 50,
      features: { localModels: false },
    },
    pro: {
      requestsPerMonth: null,
      requestsPerHour: 100,
      deviceOperationsPerHour: 1_000,
      approvalsPerHour: 50,
      features: { localModels: true },
    },
  },
};
export type TierPreset = keyof typeof TIER_PRESETS;

/** `override` laid over `base` per tier, key by key (`features` key by key). */
export function layTierOverride(base: TierOverride, override: TierOverride): TierOverride {
  const merged: TierOverride = {};
  for (const tier of TIERS) {
    const under = base[tier];
    const over = override[tier];
    if (!under && !over) continue;
    merged[tier] = { ...under, ...over, features: { ...under?.features, ...over?.features } };
  }
  return merged;
}
