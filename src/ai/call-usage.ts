import type { Logger } from '../lib/logger';
import type { ModelTurn, ModelTurnRequest, ModelUsage, UsageLine } from './model-turn';

/** Where usage lines are written (the usage repository). */
export interface UsageLedger {
  record(entry: UsageLine): Promise<void>;
}

/** What model calls count in the metrics (Metrics). */
export interface ModelCallMetrics {
  countModelCall(
    labels: { provider: string; model: string; tier: string },
    tokens: { inputTokens: number; outputTokens: number },
    costUsd: number,
  ): void;
  observeModelCall(labels: { provider: string; model: string; purpose: string }, seconds: number, ttftSeconds?: number): void;
}

/**
 * A call's usage for the request's account: its usage line written (`llm_usage`, through the
 * ledger) and its tokens and cost counted in the metrics. A request without an account records
 * nothing. Every attempt that cost something is recorded, each with its own model.
 */
export class CallUsage {
  constructor(
    private readonly deps: {
      ledger?: UsageLedger;
      metrics?: Pick<ModelCallMetrics, 'countModelCall'>;
      /** Where a usage line that could not be written is reported. */
      logger?: Pick<Logger, 'warn'>;
    },
  ) {}

  /**
   * The answering attempt's usage line when the request's `account.leaveLine` leaves it to the
   * caller (who writes it with the run's end): counted here, not written. Undefined otherwise.
   */
  leftToCaller(request: ModelTurnRequest, turn: Pick<ModelTurn, 'toolCalls' | 'usage'>): UsageLine | undefined {
    const { account } = request;
    if (!account?.leaveLine?.(turn)) return undefined;
    this.count(request, turn.usage);
    return usageLine(request, account, turn.usage);
  }

  /** Writes the call's usage line and counts it. */
  async record(request: ModelTurnRequest, usage: ModelUsage): Promise<void> {
    const { account } = request;
    if (!account) return;
    await this.deps.ledger?.record(usageLine(request, account, usage));
    this.count(request, usage);
  }

  /**
   * Records the usage of a call whose own failure or cancellation is what the caller handles: a
   * usage line that could not be written is logged, not thrown over it.
   */
  recordBeside(request: ModelTurnRequest, usage: ModelUsage): Promise<void> {
    return this.record(request, usage).catch((failure: unknown) => this.notRecorded(failure, usage));
  }

  /** Counts the call's tokens and cost in the metrics (its usage line is written apart). */
  private count(request: ModelTurnRequest, usage: ModelUsage): void {
    if (!request.account) return;
    this.deps.metrics?.countModelCall({ provider: usage.provider, model: usage.model, tier: request.account.tier }, usage, usage.costUsd);
  }

  /** A call's usage line could not be written: the call's outcome stands, the lost line is logged. */
  private notRecorded(error: unknown, usage: ModelUsage): void {
    this.deps.logger?.warn({ err: error, provider: usage.provider, model: usage.model }, 'usage of a model call not recorded');
  }
}

/** The usage line of one call of `account`'s user. */
function usageLine(
  request: Pick<ModelTurnRequest, 'purpose'>,
  account: { userId: string; sessionId?: string },
  usage: ModelUsage,
): UsageLine {
  const { provider, model, inputTokens, outputTokens, costUsd, estimated } = usage;
  return {
    userId: account.userId,
    sessionId: account.sessionId,
    purpose: request.purpose,
    provider,
    model,
    inputTokens,
    outputTokens,
    costUsd,
    estimated,
  };
}
