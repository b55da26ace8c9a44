import type { RedisClient } from './redis';
import type { Tier, UsageLimits } from '../../config';
import { RateLimiter } from './rate-limiter';

/** The tier limits (per minute, or per hour for the `…PerHour` ones) on work that costs a model call, an embedding or a device round trip. */
export type UsageKind = keyof UsageLimits;

const ACTION: Record<UsageKind, string> = {
  chatPerMinute: 'chat',
  embeddingsPerMinute: 'embedding',
  journeyPerMinute: 'journey',
  agentRunsPerMinute: 'agent run',
  flowExecutionsPerMinute: 'flow execution',
  webhookSendsPerMinute: 'webhook send',
  deviceOperationsPerHour: 'device operation',
  approvalsPerHour: 'approval request',
  codingTurnsPerHour: 'coding turn',
  codeFileOpsPerHour: 'code file operation',
  codeApprovalsPerHour: 'code approval',
};

const HOUR_MS = 3_600_000;
/** The window of each kind: a minute, or an hour for the `…PerHour` limits. */
const WINDOW_MS: Record<UsageKind, number> = {
  chatPerMinute: 60_000,
  embeddingsPerMinute: 60_000,
  journeyPerMinute: 60_000,
  agentRunsPerMinute: 60_000,
  flowExecutionsPerMinute: 60_000,
  webhookSendsPerMinute: 60_000,
  deviceOperationsPerHour: HOUR_MS,
  approvalsPerHour: HOUR_MS,
  codingTurnsPerHour: HOUR_MS,
  codeFileOpsPerHour: HOUR_MS,
  codeApprovalsPerHour: HOUR_MS,
};

/**
 * Per-user, per-tier limits (config/tiers.ts): one Redis window per user and kind, shared
 * by every node and every surface of the same work (HTTP and sockets count together).
 */
export class UsageLimiter {
  private readonly windows: RateLimiter;

  constructor(
    redis: RedisClient,
    keyPrefix: string,
    private readonly tiers: Record<Tier, UsageLimits>,
  ) {
    this.windows = new RateLimiter(redis, keyPrefix);
  }

  /** Counts one unit of `kind` for the user, or throws 429 `rate_limited` with Retry-After. */
  async take(kind: UsageKind, user: { id: string; tier?: Tier }): Promise<void> {
    const limit = (this.tiers[user.tier ?? 'free'] ?? this.tiers.free)[kind];
    if (!Number.isFinite(limit)) return;
    await this.windows.take(ACTION[kind], user.id, limit, WINDOW_MS[kind]);
  }
}
